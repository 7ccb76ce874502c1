/**
 * P2 — a warm rebuild after changing one module ÷ the cold build before it, examples/hello
 * (69 modules: 60 generated ones plus the app), bookworm x86_64, both end to end through the API
 * (POST /v1/builds → manifest visible). Per run: the worker's mix cache is emptied, commit A builds
 * cold; commit B (A plus one new function in lib/hello/gen/m030.ex) builds with the deps/ and
 * _build caches A saved (the cache keys cover mix.lock and the compile-time config, not lib/).
 *
 *   npx tsx bench/rebuild.ts [--runs 5]
 *
 * Needs the local services (`npx xamal farm services up`). Prints markdown table rows.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { commitFiles, helloRepo } from '../testkit/example-repo.ts';
import { cells, prepare, ratio, say, secs, startBenchFarm, TUPLES } from './farm.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
const MODULE = 'lib/hello/gen/m030.ex';

await prepare(['bookworm']);
const tmp = await mkdtemp(join(tmpdir(), 'xamal-bench-p2-'));
const farm = await startBenchFarm(join(tmp, 'farm'), 1);
const cold: number[] = [];
const warm: number[] = [];
const ratios: number[] = [];
try {
  const repoDir = join(tmp, 'repo');
  const { url } = await helloRepo(repoDir);
  const original = await readFile(join(repoDir, MODULE), 'utf8');
  for (let i = 0; i < runs; i++) {
    await farm.clearCache();
    const a = await commitFiles(repoDir, `bench cold ${i}`, { BENCH_RUN: `${i}\n`, [MODULE]: original });
    const c = await farm.build('hello', { url, commit: a }, [TUPLES.bookworm]);
    const changed = original.replace(/\nend\s*$/, `\n\n  @doc "Changed by bench/rebuild.ts."\n  def bench_run, do: ${i}\nend\n`);
    const b = await commitFiles(repoDir, `bench warm ${i}`, { [MODULE]: changed });
    const w = await farm.build('hello', { url, commit: b }, [TUPLES.bookworm]);
    const timings = async (commit: string) => JSON.stringify(((await farm.call('GET', `/v1/artifacts/hello/${commit}/${TUPLES.bookworm}`)).body as { timings: unknown }).timings);
    cold.push(c);
    warm.push(w);
    ratios.push(w / c);
    say(`run ${i + 1}: cold ${Math.round(c)} ms ${await timings(a)}, warm ${Math.round(w)} ms ${await timings(b)}, ratio ${(w / c).toFixed(3)}`);
  }
} finally {
  await farm.close();
  await rm(tmp, { recursive: true, force: true });
}
console.log(`| cold build (empty caches) | ${cells(cold, secs)} |`);
console.log(`| warm rebuild, one module changed | ${cells(warm, secs)} |`);
console.log(`| **ratio** warm ÷ cold (per run) | ${cells(ratios, ratio)} |`);
process.exit(0);
