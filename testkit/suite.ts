/**
 * The whole test suite as vitest processes side by side: `unit` and the typecheck at once, then two
 * integration lanes, `hosts` and `farm` + `faults`, once the services, images and test-host roots
 * are prepared for them (each process's global setup then finds them ready and starts nothing). In one
 * process vitest runs the files of projects that allow one file at a time strictly one after another,
 * across projects (one group), so the hosts project (BEAM boots, health-check waits) gets a process of
 * its own beside the farm's builds. A third lane (faults beside farm) was slower on this 2-core
 * machine: 15 min 28 s against 14 min 15 s, the crash test 380 s against 211 s (BENCHMARKS.md). The unit tests and the
 * typecheck run at a lower CPU priority (`nice`): they finish long before the integration lanes,
 * which are the suite's critical path on this 2-core machine. Each process writes its JSON report;
 * this merges them into .state/test-results.json for .ci/run's summary line and stops the services it
 * started.
 *
 *   npx tsx testkit/suite.ts
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { failureLines, type VitestReport } from './test-report.ts';
import { builderConfig } from '../builder/config.ts';
import { createInterface } from 'node:readline';
import { PROJECT_ROOT, servicesConfig, servicesDown } from '../localservices/index.ts';
import { ensureTestPackages, prepareIntegrationRun } from './global-setup.ts';
import { prepareTestToolchains } from './toolchains.ts';

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
  /** A file the lane reads and writes that is kept across clones: copied in from `cached` before, back after a clean exit. */
  carry?: { file: string; cached: string };
}

const vitest = (name: string, projects: string[], integration: boolean, nice?: number, files: string[] = []): Lane => ({
  name,
  ...(nice !== undefined ? { nice } : {}),
  argv: ['vitest', 'run', ...projects.flatMap((p) => ['--project', p]), ...files, '--reporter=default', '--reporter=json', `--outputFile.json=${report(name)}`],
  integration,
  vitest: true,
});

/** tsc's incremental state: in the checkout (its paths are relative to it), carried over clones by Lane.carry. */
const TSC_STATE = join(PROJECT_ROOT, '.state', 'tsc.tsbuildinfo');

/**
 * Fault tests that mostly wait (a Redis or dockerd restart, a worker draining after SIGTERM) run in
 * the hosts lane (first: vitest orders projects by name), whose own files end minutes before the
 * farm's builds do; the rest of `faults` stays with `farm`. Measured: alone at the end of the farm
 * lane they left a core idle for ~80 s.
 */
const FAULTS_BESIDE_HOSTS = ['reliability-redis', 'reliability-dockerd', 'farm-shutdown'].map((f) => `test/integration/faults/${f}.int.test.ts`);

/** nice(1) increments of the lanes that are not on the critical path (unit tests keep enough for their timeouts). */
const LOWER_PRIORITY = 5;
const LOWEST_PRIORITY = 10;

/**
 * Unit tests and the typecheck need only the Debian packages: they start at once after (on a fresh machine they
 * run while the images are made). The two integration projects start once the services are up.
 */
const LANES: Lane[] = [
  vitest('unit', ['unit'], false, LOWER_PRIORITY),
  {
    name: 'types',
    // Incremental: tsc re-checks only what changed since the state it recorded, which it verifies by content hash
    // (a stale or foreign state costs time, never a missed error). ~20 s of CPU → ~8 s on a clone of the same tree.
    argv: ['tsc', '--noEmit', '--incremental', '--tsBuildInfoFile', TSC_STATE],
    integration: false,
    vitest: false,
    nice: LOWEST_PRIORITY,
    carry: { file: TSC_STATE, cached: join(builderConfig().cacheDir, 'tsc', 'tsbuildinfo.json') },
  },
  vitest('hosts', ['hosts', 'faults'], true, undefined, ['test/integration/hosts/', ...FAULTS_BESIDE_HOSTS]),
  vitest('farm', ['farm', 'faults'], true, undefined, FAULTS_BESIDE_HOSTS.flatMap((f) => ['--exclude', f])),
];

function report(lane: string): string {
  return join(PROJECT_ROOT, '.state', `test-results-${lane}.json`);
}
const suiteStart = Date.now();
/** Setup lines with the seconds since the suite started (a fresh machine's timeline). */
const say = (line: string) => process.stderr.write(`[services +${Math.round((Date.now() - suiteStart) / 1000)} s] ${line}\n`);

/** Runs one lane (`npx <argv>`), each output line prefixed with the lane; resolves with its exit code. */
async function runLane(lane: Lane): Promise<number> {
  if (lane.carry) await copyFile(lane.carry.cached, lane.carry.file).catch(() => undefined);
  const code = await spawnLane(lane);
  if (lane.carry && code === 0) {
    const { file, cached } = lane.carry;
    // Only a cache: a copy that fails costs the next clone time, not this run its result.
    await mkdir(dirname(cached), { recursive: true })
      .then(() => copyFile(file, `${cached}.tmp`))
      .then(() => rename(`${cached}.tmp`, cached))
      .catch((err: unknown) => say(`${lane.name}: could not keep ${file} in ${cached}: ${err instanceof Error ? err.message : String(err)}`));
  }
  return code;
}

function spawnLane(lane: Lane): Promise<number> {
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

/** The lanes' reports added up (a missing report, or a lane other than vitest that failed, counts as one failed suite), and one line per failure. */
async function mergeReports(codes: (number | undefined)[]): Promise<Counts & { success: boolean; lanes: Record<string, Partial<Counts> | 'missing'>; failures: string[] }> {
  const total = Object.fromEntries(FIELDS.map((f) => [f, 0])) as unknown as Counts;
  const lanes: Record<string, Partial<Counts> | 'missing'> = {};
  const failures: string[] = [];
  for (const [i, lane] of LANES.entries()) {
    if (!lane.vitest) {
      if (codes[i] !== 0) {
        total.numFailedTestSuites += 1;
        failures.push(`${lane.name}: exit ${codes[i] ?? 'not run'}`);
      }
      continue;
    }
    const r = await readFile(report(lane.name), 'utf8').then((t) => JSON.parse(t) as VitestReport, () => undefined);
    lanes[lane.name] = r ? Object.fromEntries(FIELDS.map((f) => [f, r[f]])) : 'missing';
    if (!r) {
      total.numFailedTestSuites += 1;
      failures.push(`${lane.name}: no report (exit ${codes[i] ?? 'not run'})`);
    }
    for (const f of FIELDS) total[f] += r?.[f] ?? 0;
    failures.push(...failureLines(lane.name, r, PROJECT_ROOT));
    if (r && codes[i] !== 0 && !r.numFailedTests && !r.numFailedTestSuites) failures.push(`${lane.name}: exit ${codes[i] ?? 'not run'} with no failed test in its report (an error outside the tests: see the lane's log)`);
  }
  return { ...total, success: total.numFailedTests === 0 && total.numFailedTestSuites === 0, lanes, failures };
}


const t0 = Date.now();
const codes: (number | undefined)[] = LANES.map(() => undefined);
const run = (i: number) => runLane(LANES[i]!).then((code) => (codes[i] = code));
// The Debian packages first (seconds; none when installed): unit tests compare against real tools
// (readelf, the host's ERTS), which would otherwise be missing while a fresh machine's unit lane runs.
await ensureTestPackages(say);
const early = LANES.flatMap((l, i) => (l.integration ? [] : [run(i)]));
let started: Awaited<ReturnType<typeof prepareIntegrationRun>>['started'] = [];
let toolchains: Promise<void> = Promise.resolve();
try {
  // The from-source builder is prepared beside the images and the tests; those that need it wait for it.
  ({ started, beside: toolchains } = await prepareIntegrationRun(say, () => prepareTestToolchains(say)));
  await Promise.all([...early, ...LANES.flatMap((l, i) => (l.integration ? [run(i)] : []))]);
  await toolchains.catch((err: unknown) => say(`from-source builder: ${err instanceof Error ? err.message : String(err)}`));
} finally {
  await Promise.allSettled(early);
  const merged = await mergeReports(codes);
  await writeFile(join(PROJECT_ROOT, '.state', 'test-results.json'), JSON.stringify(merged, null, 2));
  if (started.length) await servicesDown(servicesConfig(), started, say);
  process.stderr.write(`suite: ${Math.round((Date.now() - t0) / 1000)} s (${LANES.map((l, i) => `${l.name} exit ${codes[i] ?? 'not run'}`).join(', ')})\n`);
  for (const line of merged.failures) process.stderr.write(`failed: ${line}\n`);
}
process.exitCode = codes.every((c) => c === 0) ? 0 : 1;
