/**
 * The whole test suite as two vitest processes side by side — `unit` + `farm`, and `hosts` — after
 * the services, images and test-host roots are prepared once for both (each process's global setup
 * then finds them ready and starts nothing). vitest itself runs the files of projects that allow one
 * file at a time strictly one after another, across projects (one group), so on this 2-core machine
 * the hosts project (BEAM boots, waits on health checks) would otherwise wait for the farm project's
 * builds. Each process writes its JSON report; this merges them into .state/test-results.json for
 * .ci/run's summary line and stops the services it started.
 *
 *   npx tsx testkit/suite.ts
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PROJECT_ROOT, servicesConfig, servicesDown } from '../localservices/index.ts';
import { prepareIntegrationRun } from './global-setup.ts';

const LANES = [
  { name: 'hosts', projects: ['hosts'] },
  { name: 'farm', projects: ['unit', 'farm'] },
] as const;
type Lane = { name: string; argv: string[] };
const vitestLane = (l: (typeof LANES)[number]): Lane => ({
  name: l.name,
  argv: ['vitest', 'run', ...l.projects.flatMap((p) => ['--project', p]), '--reporter=default', '--reporter=json', `--outputFile.json=${report(l.name)}`],
});
/** The typecheck runs beside the tests (one core for ~25 s while the lanes start); its failure fails the run. */
const TYPES: Lane = { name: 'types', argv: ['tsc', '--noEmit'] };

const say = (line: string) => process.stderr.write(`[services] ${line}\n`);
const report = (lane: string) => join(PROJECT_ROOT, '.state', `test-results-${lane}.json`);

/** Runs one lane (`npx <argv>`), each output line prefixed with the lane; resolves with its exit code. */
function runLane(lane: Lane): Promise<number> {
  const child = spawn('npx', lane.argv, { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
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

/** The lanes' reports added up (a lane without a report, or a failed typecheck, counts as one failed suite). */
async function mergeReports(typesOk: boolean): Promise<Counts & { success: boolean; lanes: Record<string, Partial<Counts> | 'missing'> }> {
  const total = Object.fromEntries(FIELDS.map((f) => [f, 0])) as unknown as Counts;
  const lanes: Record<string, Partial<Counts> | 'missing'> = {};
  for (const lane of LANES) {
    const r = await readFile(report(lane.name), 'utf8').then((t) => JSON.parse(t) as Partial<Counts>, () => undefined);
    lanes[lane.name] = r ?? 'missing';
    if (!r) total.numFailedTestSuites += 1;
    for (const f of FIELDS) total[f] += r?.[f] ?? 0;
  }
  if (!typesOk) total.numFailedTestSuites += 1;
  return { ...total, success: total.numFailedTests === 0 && total.numFailedTestSuites === 0, lanes };
}

const t0 = Date.now();
const types = runLane(TYPES);
const { started } = await prepareIntegrationRun(say);
let codes: number[] = [];
try {
  codes = await Promise.all([...LANES.map((l) => runLane(vitestLane(l))), types]);
} finally {
  const merged = await mergeReports(codes.at(-1) === 0);
  await writeFile(join(PROJECT_ROOT, '.state', 'test-results.json'), JSON.stringify(merged, null, 2));
  if (started.length) await servicesDown(servicesConfig(), started, say);
  process.stderr.write(`suite: ${Math.round((Date.now() - t0) / 1000)} s (lanes ${[...LANES, TYPES].map((l, i) => `${l.name} exit ${codes[i] ?? '?'}`).join(', ')})\n`);
}
process.exitCode = codes.every((c) => c === 0) ? 0 : 1;
