/**
 * P2 — a warm rebuild after changing one file ÷ the cold build before it, both end to end through the
 * API (POST /v1/builds → manifest visible), bookworm x86_64. Per run: the worker's mix cache is
 * emptied, commit A builds cold; commit B (A plus one new function in one module) builds with the
 * caches A left (deps/ and _build; the keys cover mix.lock and the compile-time config, not lib/).
 *
 * `--app shop` (default): examples/shop (154 modules, its git dependency with a C NIF, `mix
 * assets.deploy` fetching esbuild; served as in bench/shop.ts), B changing lib/shop/catalog/search.ex
 * (Shop.Catalog.Sort gains a function). examples/shop commits no mix.lock, and a project whose deps
 * step writes one is never skipped (the lock is not cached), so — as a team would — the bench commits
 * the lock its first deps step wrote: `mix deps.get` run once, untimed, in the plan's deps container
 * (bench/raw-build.ts); the dependency's commit is stable (testkit/example-repo.ts fixes authors and
 * dates). `--app hello`: examples/hello (69 modules), B changing lib/hello/gen/m030.ex.
 * Each pair of builds holds the engine lock (/tmp/xamal-int.lock) with the services and the farm up
 * only inside it (bench/shop.ts `withPairFarm`), so other users' tests run between pairs.
 *
 * `--logs`: also prints both builds' stored logs (the profile: which steps ran, what Mix compiled).
 * The shop's builds send the assets inputs its config/deploy.yml declares (`builder.assets`, as
 * `xamal build` does): B changes no input, so its assets step is skipped and A's priv/static
 * restored. `--undeclared`: without them (the step always runs, as before the declaration).
 *
 *   npx tsx bench/rebuild.ts [--runs 5] [--app shop|hello] [--lock-held] [--logs] [--undeclared]
 *
 * Prints markdown table rows.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { commitFiles, helloRepo } from '../testkit/example-repo.ts';
import { cells, ratio, say, secs, TUPLES, type BenchFarm } from './farm.ts';
import { rawCheckout, rawSteps } from './raw-build.ts';
import { engineLockHeldByCaller, rawProxy, shopSources, withPairFarm, type ShopSources } from './shop.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, app: { type: 'string', default: 'shop' }, 'lock-held': { type: 'boolean', default: false }, undeclared: { type: 'boolean', default: false }, logs: { type: 'boolean', default: false } } });
const runs = Number(values.runs);
engineLockHeldByCaller(values['lock-held']);
const app = values.app;
if (app !== 'shop' && app !== 'hello') throw new Error(`--app: expected shop or hello, got ${app}`);
const MODULE = app === 'shop' ? 'lib/shop/catalog/search.ex' : 'lib/hello/gen/m030.ex';

/** The mix.lock examples/shop's deps step writes for this commit (run once in the plan's deps container). */
async function shopLock(s: ShopSources, dockerSocket: string, dir: string): Promise<string> {
  const proxy = await rawProxy(join(dir, 'proxy'), s.allow);
  try {
    const plan = await rawCheckout({ dockerSocket, app: 'shop', url: s.url, commit: s.commit, tuple: TUPLES.bookworm, env: s.env, assets: true, dir });
    await rawSteps(dockerSocket, plan, ['deps'], proxy.url);
    return await readFile(join(plan.dirs.src, 'mix.lock'), 'utf8');
  } finally {
    proxy.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const tmp = await mkdtemp(join(tmpdir(), 'xamal-bench-p2-'));
const sources = app === 'shop' ? await shopSources(tmp) : undefined;
const src = sources ?? { ...(await helloRepo(join(tmp, 'repo'))), repoDir: join(tmp, 'repo'), env: undefined, allow: undefined, assets: undefined };
const cold: number[] = [];
const warm: number[] = [];
const ratios: number[] = [];
try {
  if (sources) {
    const lock = await withPairFarm(join(tmp, 'farm'), src.allow, (farm) => shopLock(sources, farm.dockerSocket, join(tmp, 'lock')));
    say(`mix.lock the deps step wrote, committed: ${lock.trim()}`);
    await writeFile(join(src.repoDir, 'mix.lock'), lock);
  }
  const original = await readFile(join(src.repoDir, MODULE), 'utf8');
  const buildLog = async (farm: BenchFarm, commit: string) => {
    const { logKey } = (await farm.call('GET', `/v1/artifacts/${app}/${commit}/${TUPLES.bookworm}`)).body as { logKey: string };
    return (await farm.store.get(logKey))?.toString('utf8') ?? '(no log)';
  };
  const timings = async (farm: BenchFarm, commit: string) => JSON.stringify(((await farm.call('GET', `/v1/artifacts/${app}/${commit}/${TUPLES.bookworm}`)).body as { timings: unknown }).timings);
  for (let i = 0; i < runs; i++) {
    const a = await commitFiles(src.repoDir, `bench cold ${i}`, { BENCH_RUN: `${i}\n`, [MODULE]: original });
    const changed = original.replace(/\nend\s*$/, `\n\n  @doc "Changed by bench/rebuild.ts."\n  def bench_run, do: ${i}\nend\n`);
    const b = await commitFiles(src.repoDir, `bench warm ${i}`, { [MODULE]: changed });
    const { c, w, steps } = await withPairFarm(join(tmp, 'farm'), src.allow, async (farm) => {
      const build = (commit: string) => farm.build(app, { url: src.url, commit }, [TUPLES.bookworm], 1_200_000, { env: src.env, assets: values.undeclared ? undefined : src.assets });
      await farm.clearCache();
      const c = await build(a);
      const w = await build(b);
      if (values.logs) for (const commit of [a, b]) say(`--- log of ${commit === a ? 'cold' : 'warm'} build ${commit.slice(0, 8)}:\n${await buildLog(farm, commit)}`);
      return { c, w, steps: { a: await timings(farm, a), b: await timings(farm, b) } };
    });
    cold.push(c);
    warm.push(w);
    ratios.push(w / c);
    say(`run ${i + 1}: cold ${Math.round(c)} ms ${steps.a}, warm ${Math.round(w)} ms ${steps.b}, ratio ${(w / c).toFixed(3)}`);
  }
} finally {
  await sources?.close();
  await rm(tmp, { recursive: true, force: true });
}
console.log(`| cold build (empty caches) | ${cells(cold, secs)} |`);
console.log(`| warm rebuild, one file changed | ${cells(warm, secs)} |`);
console.log(`| **ratio** warm ÷ cold (per run) | ${cells(ratios, ratio)} |`);
process.exit(0);
