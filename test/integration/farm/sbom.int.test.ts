import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostArch } from '../../../builder/images/context.ts';
import { artifactKey, artifactManifestKey, artifactSbomKey, parseTargetOrThrow } from '../../../core/index.ts';
import { ManifestSchema } from '../../../core/contracts/manifest.ts';
import { unpackStoredRelease } from '../../../testkit/builder/worker-base.ts';
import { upTestNetns, type TestNetns } from '../../../testkit/egress/netns.ts';
import { startTestFarm, type TestFarm } from '../../../testkit/farm.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';
import { cycloneDxProblems } from '../../../testkit/sbom.ts';
import { serveShopHashRepo, shopBuildEnv, shopRepo, writeNpmRegistryStandin } from '../../../testkit/shop-example.ts';

/**
 * Issue 23 item 3 against the real farm: examples/shop (its git dependency shop_hash, a C NIF,
 * fetched through the egress proxy from a test namespace, as in shop-example.int.test.ts) built once
 * for Debian 12; the SBOM stored beside its manifest validates with CycloneDX's library and lists
 * the git dependency at the commit the lock pins, the app, ERTS and OTP's kernel and stdlib at the
 * versions the tarball ships.
 */

const TOKEN = 's'.repeat(40);

interface Comp {
  type: string;
  name: string;
  version?: string;
  purl?: string;
  scope?: string;
  'bom-ref': string;
  properties?: { name: string; value: string }[];
  components?: Comp[];
}

describe("the SBOM of examples/shop's release (issue 23)", () => {
  const arch = hostArch();
  let tmp: string;
  let netns: TestNetns;
  let farm: TestFarm;
  let env: Record<string, string>;
  let repo: { url: string; commit: string };
  let hashCommit: string;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-sbom-'));
    await chmod(tmp, 0o755);
    const www = join(tmp, 'www');
    await mkdir(www, { recursive: true });
    netns = await upTestNetns('sbom', www);
    const base = `http://${netns.allowed}`;
    await writeNpmRegistryStandin(www, base, arch);
    hashCommit = await serveShopHashRepo(join(tmp, 'repos'), www);
    env = shopBuildEnv(base, hashCommit);
    repo = await shopRepo(join(tmp, 'repos', 'shop'));
    farm = await startTestFarm({
      services: services(),
      prefix: testPrefix('sbom'),
      host: '127.0.0.1',
      token: TOKEN,
      workDir: tmp,
      cacheDir: join(tmp, 'cache'),
      depsAllow: [{ host: netns.allowed, port: 80 }],
    });
  }, 600_000);

  afterAll(async () => {
    await farm?.close();
    await netns?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('is stored beside the manifest, pinned by its sha256, validates, and lists the git dependency, the app, ERTS, kernel and stdlib with their versions', { timeout: 1_200_000 }, async () => {
    const started = Date.now();
    const { tuple } = await farm.build('shop', repo, 'bookworm', { env });
    console.log(`sbom: shop bookworm build ${Math.round((Date.now() - started) / 1000)}s`);
    const target = parseTargetOrThrow(tuple);
    const ref = { app: 'shop', version: repo.commit, target };
    const manifest = ManifestSchema.parse(JSON.parse((await farm.store.get(artifactManifestKey(ref)))!.toString('utf8')));
    const bytes = (await farm.store.get(artifactSbomKey(ref)))!;
    expect(bytes).toBeDefined();
    expect(manifest.attestations?.sbom).toEqual({ key: artifactSbomKey(ref), sha256: createHash('sha256').update(bytes).digest('hex') });

    const text = bytes.toString('utf8');
    expect(await cycloneDxProblems(text)).toBeNull();
    const doc = JSON.parse(text) as { specVersion: string; metadata: { component: Comp; tools: { components: Comp[] } }; components: Comp[]; dependencies: { ref: string; dependsOn?: string[] }[] };
    expect(doc.specVersion).toBe('1.6');
    expect(doc.metadata.component).toMatchObject({ type: 'application', name: 'shop', version: manifest.releaseVersion, hashes: [{ alg: 'SHA-256', content: manifest.tarball.sha256 }] });
    expect(doc.metadata.tools.components).toEqual([{ type: 'application', name: 'xamal', version: expect.stringMatching(/^\d+\.\d+\.\d+/) }]);

    // What the tarball ships, read from the unpacked release itself.
    const rel = await unpackStoredRelease(farm.store, artifactKey(ref), join(tmp, 'release'));
    const shipped = (await readdir(rel)).filter((n) => n.startsWith('erts-')).concat(await readdir(join(rel, 'lib')));
    const versionOf = (name: string) => shipped.find((n) => n.startsWith(`${name}-`))!.slice(name.length + 1);

    const byName = (name: string) => doc.components.find((c) => c.name === name);
    const hash = byName('shop_hash')!;
    expect(hash).toMatchObject({ type: 'library', version: hashCommit, scope: 'required', 'bom-ref': 'mix:shop_hash' });
    expect(hash.purl).toBe(`pkg:generic/shop_hash@${hashCommit}?vcs_url=${encodeURIComponent(`git+http://${netns.allowed}/shop_hash.git@${hashCommit}`)}`);
    expect(hash.properties).toEqual(expect.arrayContaining([{ name: 'xamal:mix:scm', value: 'git' }, { name: 'xamal:release:app_version', value: versionOf('shop_hash') }]));
    expect(byName('shop')).toMatchObject({ type: 'application', version: versionOf('shop') });

    const otp = byName('otp')!;
    expect(otp).toMatchObject({ type: 'framework', version: target.otp });
    const inOtp = (name: string) => otp.components!.find((c) => c.name === name);
    expect(inOtp('erts')).toMatchObject({ type: 'platform', version: versionOf('erts'), purl: `pkg:generic/erlang-otp/erts@${versionOf('erts')}` });
    for (const app of ['kernel', 'stdlib', 'crypto']) expect(inOtp(app), app).toMatchObject({ type: 'library', version: versionOf(app), purl: `pkg:generic/erlang-otp/${app}@${versionOf(app)}` });
    expect(byName('elixir')!.components!.map((c) => c.name)).toEqual(expect.arrayContaining(['elixir', 'logger', 'eex']));

    // Every application the tarball ships is listed exactly once.
    const listed = [...doc.components, ...doc.components.flatMap((c) => c.components ?? [])].filter((c) => c.type !== 'framework');
    const names = listed.map((c) => (c['bom-ref'].startsWith('mix:') ? c['bom-ref'].slice(4) : c.name)).sort();
    expect(names).toEqual(shipped.map((n) => n.slice(0, n.indexOf('-'))).sort());
    expect(doc.dependencies.find((d) => d.ref === 'release')!.dependsOn).toEqual(expect.arrayContaining(['mix:shop_hash', 'otp', 'elixir', `app:shop@${versionOf('shop')}`]));
  });
});
