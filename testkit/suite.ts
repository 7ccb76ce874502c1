/**
 * The whole test suite as vitest processes side by side: `unit` and the typecheck at once, `hosts`
 * and `farm` once the services, images and test-host roots are prepared for both (each process's
 * global setup then finds them ready and starts nothing). In one process vitest runs the files of
 * projects that allow one file at a time strictly one after another, across projects (one group), so
 * on this 2-core machine the hosts project (BEAM boots, waits on health checks) would otherwise wait
 * for the farm project's builds. Each process writes its JSON report; this merges them into .state/test-results.json for
 * .ci/run's summary line and stops the services it started.
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
  /** `npx` arguments of each run, one after the other (a run that fails does not stop the next). */
  runs: string[][];
  /** Needs the services, images and test-host roots (started after they are prepared). */
  integration: boolean;
  /** Each run writes a vitest JSON report (counted in the summary). */
  vitest: boolean;
}

/** One vitest run of `projects`, its JSON report named by `lane` and the run's index. */
const vitestRun = (lane: string, index: number, projects: string[], filters: string[] = []): string[] => [
  'vitest', 'run', ...projects.flatMap((p) => ['--project', p]), ...filters, '--reporter=default', '--reporter=json', `--outputFile.json=${report(lane, index)}`,
];

/**
 * Farm files that run in the hosts lane once the hosts project is done: the hosts project finishes
 * ~230 s before the farm project (measured, BENCHMARKS.md "Test suite wall time"), so these move
 * that share of the farm's work onto the core the hosts lane frees. Files of one project share no
 * state, and several farm processes may build at once (as several workers do), so they need no order.
 */
const FARM_IN_HOSTS_LANE = ['test/integration/farm/reliability-build.int.test.ts', 'test/integration/farm/egress.int.test.ts'];

/**
 * Unit tests and the typecheck need only the Debian packages: they start at once after (on a fresh machine they
 * run while the images are made). The two integration lanes start once the services are up.
 */
const LANES: Lane[] = [
  { name: 'unit', runs: [vitestRun('unit', 0, ['unit'])], integration: false, vitest: true },
  { name: 'types', runs: [['tsc', '--noEmit']], integration: false, vitest: false },
  { name: 'hosts', runs: [vitestRun('hosts', 0, ['hosts']), vitestRun('hosts', 1, ['farm'], FARM_IN_HOSTS_LANE)], integration: true, vitest: true },
  { name: 'farm', runs: [vitestRun('farm', 0, ['farm'], FARM_IN_HOSTS_LANE.flatMap((f) => ['--exclude', f]))], integration: true, vitest: true },
];

function report(lane: string, index: number): string {
  return join(PROJECT_ROOT, '.state', `test-results-${lane}-${index}.json`);
}
const say = (line: string) => process.stderr.write(`[services] ${line}\n`);

/** Runs one `npx <argv>`, each output line prefixed with the lane; resolves with its exit code. */
function runOne(lane: Lane, argv: string[]): Promise<number> {
  const child = spawn('npx', argv, { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const [stream, out] of [[child.stdout, process.stdout], [child.stderr, process.stderr]] as const) {
    createInterface({ input: stream }).on('line', (line) => out.write(`[${lane.name}] ${line}\n`));
  }
  return new Promise((resolve) => child.on('close', (code) => resolve(code ?? 1)));
}

/** Runs a lane's runs one after the other; resolves with the first non-zero exit code, else 0. */
async function runLane(lane: Lane): Promise<number> {
  let worst = 0;
  for (const argv of lane.runs) {
    const code = await runOne(lane, argv);
    if (worst === 0) worst = code;
  }
  return worst;
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
    for (const index of lane.runs.keys()) {
      const r = await readFile(report(lane.name, index), 'utf8').then((t) => JSON.parse(t) as Partial<Counts>, () => undefined);
      lanes[`${lane.name}-${index}`] = r ?? 'missing';
      if (!r) total.numFailedTestSuites += 1;
      for (const f of FIELDS) total[f] += r?.[f] ?? 0;
    }
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
