import { spawnSync } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toolDiagnosis } from '../../../builder/checks.ts';
import { dockerEngine } from '../../../builder/docker.ts';
import { hostArch } from '../../../builder/images/context.ts';
import { artifactKey, artifactManifestKey, parseTargetOrThrow } from '../../../core/index.ts';
import { ManifestSchema } from '../../../core/contracts/manifest.ts';
import { childEnv, PROJECT_ROOT } from '../../../localservices/config.ts';
import { builtInImage, evalRelease, unpackStoredRelease } from '../../../testkit/builder/worker-base.ts';
import { upTestNetns, type TestNetns } from '../../../testkit/egress/netns.ts';
import { startTestFarm, type TestFarm } from '../../../testkit/farm.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';
import { commitFiles } from '../../../testkit/example-repo.ts';
import { serveShopHashRepo, shopAssetsInputs, shopBuildEnv, shopRepo, SHOP_ESBUILD_VERSION, writeNpmRegistryStandin } from '../../../testkit/shop-example.ts';

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
  'check = Shop.Release.self_check()',
  // The app started on a free loopback port: three requests over one keep-alive connection.
  'http = Shop.Release.http_check(["/up", "/static/" <> check.bundle, "/nope"])',
  'IO.puts("XAMAL-SHOP " <> Shop.Json.encode!(Map.merge(check, %{first: first, again: again, http: http})))',
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
    'builds for %s: the NIF compiled and loaded, esbuild fetched and checked, the bundle digested into the release, migrations applied once, the server answering over keep-alive',
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
      const out = await evalRelease(docker, await builtInImage(docker, manifest.image), rel, 'shop', SELF_CHECK);
      const line = out.stdout.split('\n').find((l) => l.startsWith('XAMAL-SHOP '));
      expect(line, out.stdout + out.stderr).toBeDefined();
      const check = JSON.parse(line!.slice('XAMAL-SHOP '.length)) as Record<string, unknown>;
      expect(check).toMatchObject({ nif_loaded: true, fnv1a64_abc: 'e71fa2190541574b', first: [1, 2, 3, 4, 5], again: [], http: { statuses: [200, 200, 404], connections: 1 } });
      expect(check.bundle).toMatch(/^assets\/app-[0-9a-f]{16}\.js$/);
      expect(check.bundle_bytes).toBeGreaterThan(200);
      expect(check.modules).toBeGreaterThanOrEqual(150);
    },
  );

  /** The release's bundle as its server serves it: name, status, bytes' sha256, and what changed in each commit. */
  const ASSETS_CHECK = [
    'System.put_env("SHOP_DATA_DIR", "/tmp/shop-data")',
    'Shop.Release.migrate()',
    'check = Shop.Release.self_check()',
    'http = Shop.Release.http_check(["/static/" <> check.bundle])',
    'body = File.read!(Path.join(Shop.Http.Static.root(), check.bundle))',
    '{:module, _} = Code.ensure_loaded(Shop.Catalog.Sort)',
    'IO.puts("XAMAL-ASSETS " <> Shop.Json.encode!(%{bundle: check.bundle, statuses: http.statuses, sha: Base.encode16(:crypto.hash(:sha256, body), case: :lower), js_changed: String.contains?(body, "xamal-assets-changed"), lib_changed: function_exported?(Shop.Catalog.Sort, :xamal_assets_test, 0)}))',
  ].join('; ');

  it(
    'with the assets inputs its deploy.yml declares: a lib-only change skips the assets step (priv/static restored, the module compiled offline by the compile step), an assets change runs it again; the served bundle is right each time',
    { timeout: 1_200_000 },
    async () => {
      const assets = await shopAssetsInputs();
      const repoDir = join(tmp, 'repos', 'shop');
      const [search, appJs] = ['lib/shop/catalog/search.ex', 'assets/js/app.js'];
      const original = await readFile(join(repoDir, search), 'utf8');
      const js = await readFile(join(repoDir, appJs), 'utf8');
      const a = await commitFiles(repoDir, 'assets: first', { 'NOTES.md': 'the assets cache test\n' });
      const b = await commitFiles(repoDir, 'assets: lib only', { [search]: original.replace(/\nend\s*$/, '\n\n  @doc "Added by the assets cache test."\n  def xamal_assets_test, do: :lib_only\nend\n') });
      const c = await commitFiles(repoDir, 'assets: app.js', { [appJs]: `${js}\nconsole.log("xamal-assets-changed");\n` });
      const docker = dockerEngine(services().dockerSocket);
      const results: { log: string; check: Record<string, unknown> }[] = [];
      for (const commit of [a, b, c]) {
        const { tuple } = await farm.build('shop', { url: repo.url, commit }, 'bookworm', { env, assets });
        const id = (await farm.client.list({ app: 'shop' })).builds.find((x) => x.tuple === tuple && x.commit === commit)!.id;
        const ref = { app: 'shop', version: commit, target: parseTargetOrThrow(tuple) };
        const manifest = ManifestSchema.parse(JSON.parse((await farm.store.get(artifactManifestKey(ref)))!.toString('utf8')));
        const rel = await unpackStoredRelease(farm.store, artifactKey(ref), join(tmp, `release-assets-${commit.slice(0, 8)}`));
        const out = await evalRelease(docker, await builtInImage(docker, manifest.image), rel, 'shop', ASSETS_CHECK);
        const line = out.stdout.split('\n').find((l) => l.startsWith('XAMAL-ASSETS '));
        expect(line, out.stdout + out.stderr).toBeDefined();
        results.push({ log: await farm.client.logs(id), check: JSON.parse(line!.slice('XAMAL-ASSETS '.length)) as Record<string, unknown> });
      }
      const [first, libOnly, assetsChanged] = results as [(typeof results)[0], (typeof results)[0], (typeof results)[0]];
      const keyOf = (log: string) => /==> assets: runs \(no output kept under its key (assets-[0-9a-f]{32}) yet\)/.exec(log)?.[1];
      const key = keyOf(first.log);
      expect(key, first.log).toBeDefined();
      expect(first.log).toMatch(/==> shop\.esbuild: esbuild /);

      // The lib-only change: no assets container, priv/static restored under the same key, the changed module compiled in the compile step.
      expect(libOnly.log).toContain(`==> assets: skipped (its inputs, command, image, mix.lock, config, MIX_ENV and environment are an earlier build's: cache ${key}); priv/static restored from it, the app compiled by the compile step`);
      expect(libOnly.log).not.toContain('==> assets: mix assets.deploy');
      expect(libOnly.log).not.toContain('shop.esbuild');
      const compiled = libOnly.log.slice(libOnly.log.indexOf('==> compile: mix release'));
      expect(compiled).toMatch(/Compiling \d+ files? \(\.ex\)/);
      expect(libOnly.check).toMatchObject({ bundle: first.check.bundle, sha: first.check.sha, statuses: [200], js_changed: false, lib_changed: true });
      expect(first.check).toMatchObject({ statuses: [200], js_changed: false, lib_changed: false });

      // The assets change: a new key, the step runs, and the new bundle is served under its new digested name.
      const newKey = keyOf(assetsChanged.log);
      expect(newKey, assetsChanged.log).toBeDefined();
      expect(newKey).not.toBe(key);
      expect(assetsChanged.log).toMatch(/==> shop\.esbuild: esbuild /);
      expect(assetsChanged.check).toMatchObject({ statuses: [200], js_changed: true, lib_changed: true });
      expect(assetsChanged.check.bundle).toMatch(/^assets\/app-[0-9a-f]{16}\.js$/);
      expect(assetsChanged.check.bundle).not.toBe(first.check.bundle);
    },
  );

  // The farm's side (a builder without cc, the step's output diagnosed) is proven for the deps-app in
  // mix-tools.int.test.ts; here: shop_hash's own compiler says which tool is missing, in words that
  // diagnosis turns into the farm's message.
  it('without a C compiler, shop_hash\'s compiler stops naming itself and cc, and the farm\'s diagnosis says so', { timeout: 120_000 }, async () => {
    const dir = join(tmp, 'no-cc', 'shop_hash');
    await cp(join(PROJECT_ROOT, 'examples', 'shop_hash'), dir, { recursive: true, filter: (f) => !/\/_build(\/|$)/.test(f) });
    const bin = join(tmp, 'no-cc', 'bin');
    await mkdir(bin);
    const which = (t: string) => spawnSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8', env: childEnv({}) }).stdout.trim();
    for (const t of ['sh', 'mix', 'elixir', 'erl', 'erlc', 'make', 'dirname', 'basename', 'readlink', 'sed', 'uname', 'cat', 'rm', 'mkdir', 'env', 'cut', 'tr', 'head', 'grep', 'expr', 'ln']) {
      const path = which(t);
      if (path) await symlink(path, join(bin, t));
    }
    expect(which('cc')).not.toBe('');
    const r = spawnSync('mix', ['compile'], { cwd: dir, encoding: 'utf8', env: { PATH: bin, HOME: tmp, MIX_HOME: join(tmp, 'no-cc', 'mix-home'), LANG: 'C.UTF-8' }, timeout: 100_000 });
    const out = r.stdout + r.stderr;
    expect(r.status, out).toBe(1);
    expect(out).toContain('could not compile dependency :shop_hash: could not find an executable "cc" (a C compiler) in PATH');
    expect(toolDiagnosis(out, [])).toBe(
      "dependency shop_hash needs cc (a C compiler), which the builder image does not have; build in an image with build tools (the farm's Debian builders have gcc and make)",
    );
  });
});
