/**
 * P8 — a matrix of 3 targets (examples/hello for bullseye, bookworm and trixie x86_64) on one worker
 * with concurrency 2: makespan of the matrix (one POST /v1/builds with three targets → all three
 * manifests visible) ÷ (sum of the three single builds ÷ 2). Everything end to end through the API,
 * cold caches (the worker's mix cache emptied before the singles and before the matrix), a new
 * commit each time so the store never answers.
 *
 *   npx tsx bench/matrix.ts [--runs 5]
 *
 * Needs the local services (`npx xamal farm services up`). Prints markdown table rows.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { commitFiles, helloRepo } from '../testkit/example-repo.ts';
import { cells, prepare, ratio, say, secs, startBenchFarm, TUPLES } from './farm.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
const SUITES = ['bullseye', 'bookworm', 'trixie'] as const;

await prepare(SUITES);
const tmp = await mkdtemp(join(tmpdir(), 'xamal-bench-p8-'));
const farm = await startBenchFarm(join(tmp, 'farm'), 2);
const sums: number[] = [];
const spans: number[] = [];
const ratios: number[] = [];
const singles: Record<string, number[]> = Object.fromEntries(SUITES.map((s) => [s, []]));
try {
  const repoDir = join(tmp, 'repo');
  const { url } = await helloRepo(repoDir);
  for (let i = 0; i < runs; i++) {
    await farm.clearCache();
    const one = await commitFiles(repoDir, `bench singles ${i}`, { BENCH_RUN: `singles ${i}\n` });
    let sum = 0;
    for (const s of SUITES) {
      const t = await farm.build('hello', { url, commit: one }, [TUPLES[s]]);
      singles[s]!.push(t);
      sum += t;
    }
    await farm.clearCache();
    const all = await commitFiles(repoDir, `bench matrix ${i}`, { BENCH_RUN: `matrix ${i}\n` });
    const span = await farm.build('hello', { url, commit: all }, SUITES.map((s) => TUPLES[s]));
    sums.push(sum);
    spans.push(span);
    ratios.push(span / (sum / 2));
    say(`run ${i + 1}: singles ${SUITES.map((s) => `${s} ${Math.round(singles[s]!.at(-1)!)}`).join(', ')} ms (sum ${Math.round(sum)}), matrix makespan ${Math.round(span)} ms, ratio ${(span / (sum / 2)).toFixed(3)}`);
  }
} finally {
  await farm.close();
  await rm(tmp, { recursive: true, force: true });
}
for (const s of SUITES) console.log(`| single build, ${s} | ${cells(singles[s]!, secs)} |`);
console.log(`| sum of the three single builds | ${cells(sums, secs)} |`);
console.log(`| matrix of 3, one worker, concurrency 2: makespan | ${cells(spans, secs)} |`);
console.log(`| **ratio** makespan ÷ (sum ÷ 2) (per run) | ${cells(ratios, ratio)} |`);
process.exit(0);
