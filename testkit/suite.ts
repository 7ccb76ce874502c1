/**
 * The whole test suite as vitest processes side by side: `unit` and the typecheck at once, then the
 * integration projects `hosts`, `farm` and `faults` once the services, images and test-host roots
 * are prepared for them (each process's global setup then finds them ready and starts nothing). In one
 * process vitest runs the files of projects that allow one file at a time strictly one after another,
 * across projects (one group), so each integration project gets a process of its own: BEAM boots,
 * health-check waits and fault timeouts of one overlap the builds of another. The unit tests and the
 * typecheck run at a lower CPU priority (`nice`): they finish long before the integration lanes,
 * which are the suite's critical path on this 2-core machine. Each process writes its JSON report;
 * this merges them into .state/test-results.json for .ci/run's summary line and stops the services it
 * started.
 *
 *   npx tsx testkit/suite.ts
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PROJECT_ROOT, servicesConfig, servicesDown } from '../localservices/index.ts';
import { ensureTestPackages, prepareIntegrationRun } from './global-setup.ts';

interface Lane {
  name: string;
  /** `npx` arguments. */
  argv: string[];
  /** Runs at this niceness (nice(1)); undefined: the suite's own. */
  nice?: number;
  /** Needs the services, images and test-host roots (started after they are prepared). */
  integration: boolean;
  /** Writes a vitest JSON report (counted in the summary). */
  vitest: boolean;
}

const vitest = (name: string, projects: string[], integration: boolean, nice?: number): Lane => ({
  name,
  ...(nice !== undefined ? { nice } : {}),
  argv: ['vitest', 'run', ...projects.flatMap((p) => ['--project', p]), '--reporter=default', '--reporter=json', `--outputFile.json=${report(name)}`],
  integration,
  vitest: true,
});

/** nice(1) increments of the lanes that are not on the critical path (unit tests keep enough for their timeouts). */
const LOWER_PRIORITY = 5;
const LOWEST_PRIORITY = 10;

/**
 * Unit tests and the typecheck need only the Debian packages: they start at once after (on a fresh machine they
 * run while the images are made). The two integration projects start once the services are up.
 */
const LANES: Lane[] = [
  vitest('unit', ['unit'], false, LOWER_PRIORITY),
  { name: 'types', argv: ['tsc', '--noEmit'], integration: false, vitest: false, nice: LOWEST_PRIORITY },
  vitest('hosts', ['hosts'], true),
  vitest('farm', ['farm'], true),
  vitest('faults', ['faults'], true),
];

function report(lane: string): string {
  return join(PROJECT_ROOT, '.state', `test-results-${lane}.json`);
}
const say = (line: string) => process.stderr.write(`[services] ${line}\n`);

/** Runs one lane (`npx <argv>`), each output line prefixed with the lane; resolves with its exit code. */
function runLane(lane: Lane): Promise<number> {
  const [cmd, args] = lane.nice === undefined ? ['npx', lane.argv] : ['nice', ['-n', String(lane.nice), 'npx', ...lane.argv]];
  const child = spawn(cmd, args, { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const [stream, out] of [[child.stdout, process.stdout], [child.stderr, process.stderr]] as const) {
    createInterface({ input: stream }).on('line', (line) => out.write(`[${lane.name}] ${line}\n`));
  }
  return new Promise((resolve) => child.on('close', (code) => resolve(code ?? 1)));
}

interface Counts {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTotalTests: number;
  numFailedTestSuites: number;
  numPassedTestSuites: number;
  numTotalTestSuites: number;
}
const FIELDS: (keyof Counts)[] = ['numPassedTests', 'numFailedTests', 'numPendingTests', 'numTotalTests', 'numFailedTestSuites', 'numPassedTestSuites', 'numTotalTestSuites'];

/** The lanes' reports added up (a missing report, or a lane other than vitest that failed, counts as one failed suite). */
async function mergeReports(codes: (number | undefined)[]): Promise<Counts & { success: boolean; lanes: Record<string, Partial<Counts> | 'missing'> }> {
  const total = Object.fromEntries(FIELDS.map((f) => [f, 0])) as unknown as Counts;
  const lanes: Record<string, Partial<Counts> | 'missing'> = {};
  for (const [i, lane] of LANES.entries()) {
    if (!lane.vitest) {
      if (codes[i] !== 0) total.numFailedTestSuites += 1;
      continue;
    }
    const r = await readFile(report(lane.name), 'utf8').then((t) => JSON.parse(t) as Partial<Counts>, () => undefined);
    lanes[lane.name] = r ?? 'missing';
    if (!r) total.numFailedTestSuites += 1;
    for (const f of FIELDS) total[f] += r?.[f] ?? 0;
  }
  return { ...total, success: total.numFailedTests === 0 && total.numFailedTestSuites === 0, lanes };
}

const t0 = Date.now();
const codes: (number | undefined)[] = LANES.map(() => undefined);
const run = (i: number) => runLane(LANES[i]!).then((code) => (codes[i] = code));
// The Debian packages first (seconds; none when installed): unit tests compare against real tools
// (readelf, the host's ERTS), which would otherwise be missing while a fresh machine's unit lane runs.
await ensureTestPackages(say);
const early = LANES.flatMap((l, i) => (l.integration ? [] : [run(i)]));
let started: Awaited<ReturnType<typeof prepareIntegrationRun>>['started'] = [];
try {
  ({ started } = await prepareIntegrationRun(say));
  await Promise.all([...early, ...LANES.flatMap((l, i) => (l.integration ? [run(i)] : []))]);
} finally {
  await Promise.allSettled(early);
  const merged = await mergeReports(codes);
  await writeFile(join(PROJECT_ROOT, '.state', 'test-results.json'), JSON.stringify(merged, null, 2));
  if (started.length) await servicesDown(servicesConfig(), started, say);
  process.stderr.write(`suite: ${Math.round((Date.now() - t0) / 1000)} s (${LANES.map((l, i) => `${l.name} exit ${codes[i] ?? 'not run'}`).join(', ')})\n`);
}
process.exitCode = codes.every((c) => c === 0) ? 0 : 1;
