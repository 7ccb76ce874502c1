/**
 * P1 — an end-to-end build through the API (POST /v1/builds → the manifest visible at
 * GET /v1/artifacts/…) ÷ the raw builds it wraps: the deps, assets and compile containers the
 * worker's plan (builder/plan.ts) gives that job — `mix deps.get`, `mix assets.deploy`, `mix release
 * <app> --overwrite` in the same image digest with the same specs — run with the engine's own
 * `docker run` on a fresh checkout of the same commit (bench/raw-build.ts).
 *
 * `--app shop` (default): examples/shop (154 modules; its git dependency examples/shop_hash with a C
 * NIF built by make; `mix assets.deploy` fetching esbuild from an npm registry stand-in), both served
 * from a namespace of the bench's own (bench/shop.ts): the farm's deps and assets steps reach it
 * through its egress proxy, the raw ones through the same proxy program and filter on the host's
 * network. `--app hello`: examples/hello (no dependencies, no assets; deps and compile only).
 * Cold caches on both sides (no deps/, no _build, empty mix home), bookworm x86_64, a new commit per
 * run so the store never answers. The sides alternate which goes first; each pair of runs holds the
 * engine lock (/tmp/xamal-int.lock) with the services and the farm up only inside it (bench/shop.ts
 * `withPairFarm`), so other users' tests run between pairs.
 *
 * The API's shop builds send the assets inputs its config/deploy.yml declares, as `xamal build` does
 * (a cold cache: the step runs, and its output is kept); `--undeclared`: without them.
 *
 *   npx tsx bench/build-e2e.ts [--runs 5] [--app shop|hello] [--lock-held] [--undeclared]
 *
 * Prints markdown table rows.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { commitFiles, helloRepo } from '../testkit/example-repo.ts';
import { cells, ratio, say, secs, TUPLES } from './farm.ts';
import { rawBuild, type RawStep } from './raw-build.ts';
import { engineLockHeldByCaller, rawProxy, shopSources, withPairFarm } from './shop.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, app: { type: 'string', default: 'shop' }, 'lock-held': { type: 'boolean', default: false }, undeclared: { type: 'boolean', default: false } } });
const runs = Number(values.runs);
engineLockHeldByCaller(values['lock-held']);
const app = values.app;
if (app !== 'shop' && app !== 'hello') throw new Error(`--app: expected shop or hello, got ${app}`);
const shop = app === 'shop';
const steps: RawStep[] = shop ? ['deps', 'assets', 'compile'] : ['deps', 'compile'];

const tmp = await mkdtemp(join(tmpdir(), 'xamal-bench-p1-'));
const sources = shop ? await shopSources(tmp) : undefined;
const src = sources ?? { ...(await helloRepo(join(tmp, 'repo'))), repoDir: join(tmp, 'repo'), env: undefined, allow: undefined, assets: undefined };
const proxy = sources ? await rawProxy(join(tmp, 'proxy'), sources.allow) : undefined;

const api: number[] = [];
const raw: number[] = [];
const ratios: number[] = [];
try {
  for (let i = 0; i < runs; i++) {
    const commit = await commitFiles(src.repoDir, `bench run ${i}`, { BENCH_RUN: `${i}\n` });
    const job = { app, url: src.url, commit, tuple: TUPLES.bookworm, ...(src.env ? { env: src.env } : {}), assets: shop, dir: join(tmp, `raw-${i}`) };
    const { a, r, manifest } = await withPairFarm(join(tmp, 'farm'), src.allow, async (farm) => {
      const apiBuild = () => farm.build(app, { url: src.url, commit }, [TUPLES.bookworm], 1_200_000, { env: src.env, assets: values.undeclared ? undefined : src.assets });
      const rawOne = () => rawBuild({ ...job, dockerSocket: farm.dockerSocket }, steps, proxy?.url);
      await farm.clearCache();
      let a: number;
      let r: Awaited<ReturnType<typeof rawOne>>;
      if (i % 2 === 0) {
        a = await apiBuild();
        r = await rawOne();
      } else {
        r = await rawOne();
        a = await apiBuild();
      }
      const manifest = (await farm.call('GET', `/v1/artifacts/${app}/${commit}/${TUPLES.bookworm}`)).body as { timings: Record<string, number> };
      return { a, r, manifest };
    });
    api.push(a);
    raw.push(r.ms);
    ratios.push(a / r.ms);
    say(`run ${i + 1}: API ${Math.round(a)} ms, raw ${Math.round(r.ms)} ms ${JSON.stringify(r.steps)}, ratio ${(a / r.ms).toFixed(3)}; worker steps ${JSON.stringify(manifest.timings)}`);
  }
} finally {
  proxy?.close();
  await sources?.close();
  await rm(tmp, { recursive: true, force: true });
}
console.log(`| end-to-end through the API (POST → manifest visible) | ${cells(api, secs)} |`);
console.log(`| raw \`docker run\` ${steps.map((s) => ({ deps: 'deps.get', assets: 'assets.deploy', compile: 'mix release' })[s]).join(' + ')}, same image digest and specs | ${cells(raw, secs)} |`);
console.log(`| **ratio** (per run) | ${cells(ratios, ratio)} |`);
process.exit(0);
