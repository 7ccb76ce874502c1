import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerEngine } from '../../../builder/docker.ts';
import { hostArch } from '../../../builder/images/context.ts';
import { artifactKey, artifactManifestKey, parseTargetOrThrow } from '../../../core/index.ts';
import { ManifestSchema } from '../../../core/contracts/manifest.ts';
import { evalRelease, unpackStoredRelease } from '../../../testkit/builder/worker-base.ts';
import { upTestNetns, type TestNetns } from '../../../testkit/egress/netns.ts';
import { startTestFarm, type TestFarm } from '../../../testkit/farm.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';
import { serveShopHashRepo, shopBuildEnv, shopRepo, SHOP_ESBUILD_VERSION, writeNpmRegistryStandin } from '../../../testkit/shop-example.ts';

/**
 * Issue 20 item 9: examples/shop — about 150 modules, its own HTTP server, a git dependency with a C
 * NIF built by make from a Mix compiler of its own, and `mix assets.deploy` fetching esbuild from
 * the npm registry — built through the farm's API for Debian 12 and Debian 13. The dependency's
 * repository and the registry stand-in (esbuild's tarball from npm's cache, with its integrity) are
 * served from an address of a test namespace that the deps and assets steps reach only through the
 * farm's egress proxy, which allows that address alone.
 */

const TOKEN = 'e'.repeat(40);
const SELF_CHECK = [
  'System.put_env("SHOP_DATA_DIR", "/tmp/shop-data")',
  'first = Shop.Release.migrate()',
  'again = Shop.Release.migrate()',
  'IO.puts("XAMAL-SHOP " <> Shop.Json.encode!(Map.merge(Shop.Release.self_check(), %{first: first, again: again})))',
].join('; ');

describe('examples/shop built by the farm (issue 20 item 9)', () => {
  const arch = hostArch();
  let tmp: string;
  let netns: TestNetns;
  let farm: TestFarm;
  let env: Record<string, string>;
  let repo: { url: string; commit: string };

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-shop-'));
    // The release is evaluated as the build user (uid 1000) from a directory under this one.
    await chmod(tmp, 0o755);
    const www = join(tmp, 'www');
    await mkdir(www, { recursive: true });
    netns = await upTestNetns('shop', www);
    const base = `http://${netns.allowed}`;
    await writeNpmRegistryStandin(www, base, arch);
    const hashCommit = await serveShopHashRepo(join(tmp, 'repos'), www);
    env = shopBuildEnv(base, hashCommit);
    repo = await shopRepo(join(tmp, 'repos', 'shop'));
    farm = await startTestFarm({
      services: services(),
      prefix: testPrefix('shop'),
      host: '127.0.0.1',
      token: TOKEN,
      workDir: tmp,
      // This run's own build cache: every run proves a cold build (deps fetched, NIF compiled, esbuild downloaded).
      cacheDir: join(tmp, 'cache'),
      depsAllow: [{ host: netns.allowed, port: 80 }],
    });
  }, 600_000);

  afterAll(async () => {
    await farm?.close();
    await netns?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it.each(['bookworm', 'trixie'] as const)(
    'builds for %s: the NIF compiled and loaded, esbuild fetched and checked, the bundle digested into the release, migrations applied once',
    { timeout: 1_200_000 },
    async (suite) => {
      const started = Date.now();
      const { tuple } = await farm.build('shop', repo, suite, { env });
      const seconds = Math.round((Date.now() - started) / 1000);
      console.log(`shop-example: ${suite} build ${seconds}s`);

      const target = parseTargetOrThrow(tuple);
      const log = await farm.client.logs((await farm.client.list({ app: 'shop' })).builds.find((b) => b.tuple === tuple)!.id);
      expect(log).toMatch(/==> shop_hash: make PRIV=/);
      expect(log).toMatch(new RegExp(`==> shop\\.esbuild: @esbuild/linux-(x64|arm64)@${SHOP_ESBUILD_VERSION.replace(/\./g, '\\.')} from http://${netns.allowed.replace(/\./g, '\\.')}/`));
      expect(log).toMatch(/==> shop\.esbuild: sha512-\S+ verified/);

      const ref = { app: 'shop', version: repo.commit, target };
      const manifest = ManifestSchema.parse(JSON.parse((await farm.store.get(artifactManifestKey(ref)))!.toString('utf8')));
      const rel = await unpackStoredRelease(farm.store, artifactKey(ref), join(tmp, `release-${suite}`));
      const docker = dockerEngine(services().dockerSocket);
      const out = await evalRelease(docker, manifest.image.ref, rel, 'shop', SELF_CHECK);
      const line = out.stdout.split('\n').find((l) => l.startsWith('XAMAL-SHOP '));
      expect(line, out.stdout + out.stderr).toBeDefined();
      const check = JSON.parse(line!.slice('XAMAL-SHOP '.length)) as Record<string, unknown>;
      expect(check).toMatchObject({ nif_loaded: true, fnv1a64_abc: 'e71fa2190541574b', first: [1, 2, 3, 4, 5], again: [] });
      expect(check.bundle).toMatch(/^assets\/app-[0-9a-f]{16}\.js$/);
      expect(check.bundle_bytes).toBeGreaterThan(200);
      expect(check.modules).toBeGreaterThanOrEqual(150);
    },
  );
});
