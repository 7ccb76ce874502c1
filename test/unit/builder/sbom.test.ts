import { describe, expect, it } from 'vitest';
import { parseMixLock } from '../../../builder/mix-lock.ts';
import { releaseContentsOf } from '../../../builder/release-contents.ts';
import { gitSource, releaseSbom, type SbomInput } from '../../../builder/sbom.ts';
import { FIXTURE_LOCK, FIXTURE_RELEASE_PATHS } from '../../../testkit/builder/sbom-fixtures.ts';
import { cycloneDxProblems } from '../../../testkit/sbom.ts';

const folders = [...new Set(FIXTURE_RELEASE_PATHS.filter((p) => p.startsWith('lib/') || p.startsWith('erts-')).map((p) => p.split('/').slice(0, p.startsWith('lib/') ? 2 : 1).join('/')))];

const input = (over: Partial<SbomInput> = {}): SbomInput => ({
  app: 'shop',
  release: 'shop',
  releaseVersion: '1.0.0',
  version: 'c0ffee0000000000000000000000000000000000',
  tuple: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0',
  mixEnv: 'prod',
  otp: '25.2.3',
  elixir: '1.14.0',
  tarball: { fileName: 'shop-c0ffee-linux.tar.gz', sha256: 'f'.repeat(64) },
  contents: releaseContentsOf(folders),
  lock: parseMixLock(FIXTURE_LOCK),
  timestamp: new Date('2026-12-05T10:00:00.000Z'),
  serialNumber: 'urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79',
  tool: { name: 'xamal', version: '0.1.0' },
  ...over,
});

interface Doc {
  metadata: { timestamp: string; tools: { components: { name: string; version: string }[] }; component: Record<string, unknown> };
  components: Comp[];
  dependencies: { ref: string; dependsOn?: string[] }[];
}
interface Comp {
  type: string;
  name: string;
  version?: string;
  group?: string;
  purl?: string;
  scope?: string;
  'bom-ref': string;
  hashes?: { alg: string; content: string }[];
  externalReferences?: { url: string; type: string }[];
  properties?: { name: string; value: string }[];
  components?: Comp[];
}

const sbom = (over: Partial<SbomInput> = {}) => {
  const text = releaseSbom(input(over));
  return { text, doc: JSON.parse(text) as Doc };
};
const named = (doc: Doc, name: string) => doc.components.find((c) => c.name === name)!;
const prop = (c: Comp, name: string) => c.properties?.find((p) => p.name === name)?.value;
const dependsOn = (doc: Doc, ref: string) => doc.dependencies.find((d) => d.ref === ref)?.dependsOn ?? [];

describe("a release's SBOM (CycloneDX 1.6)", () => {
  it("validates against CycloneDX's 1.6 schema with the library's strict JSON validator", async () => {
    const { text, doc } = sbom();
    expect(await cycloneDxProblems(text)).toBeNull();
    expect(doc).toMatchObject({ bomFormat: 'CycloneDX', specVersion: '1.6', serialNumber: 'urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79' });
  });

  it('fails that validation once the document is broken (so the check above can fail)', async () => {
    const { doc } = sbom();
    const badHash = structuredClone(doc);
    named(badHash, 'jason').hashes![0]!.content = 'not-a-sha';
    expect(await cycloneDxProblems(JSON.stringify(badHash))).toEqual(expect.arrayContaining([expect.stringMatching(/hashes\/0\/content: must match pattern/)]));
    const noType = structuredClone(doc) as unknown as { metadata: { component: { type?: string } } };
    delete noType.metadata.component.type;
    expect(await cycloneDxProblems(JSON.stringify(noType))).not.toBeNull();
  });

  it('describes the release: its name and version as an application, the tarball\'s sha256, when and by which xamal', () => {
    const { doc } = sbom();
    expect(doc.metadata.timestamp).toBe('2026-12-05T10:00:00.000Z');
    expect(doc.metadata.tools.components).toEqual([{ type: 'application', name: 'xamal', version: '0.1.0' }]);
    expect(doc.metadata.component).toMatchObject({ type: 'application', name: 'shop', version: '1.0.0', 'bom-ref': 'release', hashes: [{ alg: 'SHA-256', content: 'f'.repeat(64) }] });
    expect((doc.metadata.component as unknown as Comp).properties).toEqual(
      expect.arrayContaining([{ name: 'xamal:version', value: 'c0ffee0000000000000000000000000000000000' }, { name: 'xamal:tuple', value: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0' }]),
    );
  });

  it('lists each Hex package with its purl, version, outer checksum as SHA-256, repository and tarball URL', () => {
    const { doc } = sbom();
    expect(named(doc, 'jason')).toMatchObject({
      type: 'library',
      version: '1.4.4',
      purl: 'pkg:hex/jason@1.4.4',
      scope: 'required',
      hashes: [{ alg: 'SHA-256', content: 'c5eb0cab91f094599f94d55bc63409236a8ec69a21a67814529e8d5f6cc90b3b' }],
      externalReferences: expect.arrayContaining([{ type: 'distribution', url: 'https://repo.hex.pm/tarballs/jason-1.4.4.tar' }]),
    });
    expect(prop(named(doc, 'jason'), 'xamal:hex:repo')).toBe('hexpm');
    // An organization's package: its namespace in the purl, its own tarball URL.
    expect(named(doc, 'acme_billing')).toMatchObject({ purl: 'pkg:hex/acme/acme_billing@2.1.0', externalReferences: [{ type: 'distribution', url: 'https://repo.hex.pm/repos/acme/tarballs/acme_billing-2.1.0.tar' }] });
    // A package whose app name differs: named by its package, the app kept as a property.
    expect(named(doc, 'plug')).toMatchObject({ purl: 'pkg:hex/plug@1.16.1', 'bom-ref': 'mix:my_plug' });
    expect(prop(named(doc, 'plug'), 'xamal:mix:app')).toBe('my_plug');
    // An entry from before Hex's outer checksum: no hash claimed, the inner checksum as a property.
    expect(named(doc, 'legacy').hashes).toBeUndefined();
    expect(prop(named(doc, 'legacy'), 'xamal:hex:inner_checksum')).toBe('3'.repeat(64));
  });

  it('lists git dependencies by commit: pkg:github for GitHub, else pkg:generic with vcs_url, never with credentials', () => {
    const { doc, text } = sbom();
    expect(named(doc, 'phoenix_html')).toMatchObject({
      version: '0123456789abcdef0123456789abcdef01234567',
      purl: 'pkg:github/phoenix-framework/phoenix_html@0123456789abcdef0123456789abcdef01234567',
      externalReferences: [{ type: 'vcs', url: 'ssh://github.com/Phoenix-Framework/phoenix_html.git' }],
    });
    expect(prop(named(doc, 'phoenix_html'), 'xamal:git:branch')).toBe('main');
    const hash = named(doc, 'shop_hash');
    expect(hash.purl).toBe('pkg:generic/shop_hash@89abcdef0123456789abcdef0123456789abcdef?vcs_url=git%2Bhttps%3A%2F%2Fgit.example.org%2Ftools%2Fshop_hash.git%4089abcdef0123456789abcdef0123456789abcdef');
    expect(prop(hash, 'xamal:release:app_version')).toBe('0.2.0');
    expect(prop(hash, 'xamal:git:subdir')).toBe('c_src');
    expect(text).not.toContain('s3cret');
    expect(text).not.toContain('user:');
  });

  it('marks locked packages the release does not ship (dev and test dependencies) as excluded', () => {
    expect(named(sbom().doc, 'decimal').scope).toBe('excluded');
  });

  it('lists ERTS and the OTP applications shipped under OTP\'s release, and Elixir\'s under Elixir\'s', () => {
    const { doc } = sbom();
    const otp = named(doc, 'otp');
    expect(otp).toMatchObject({ type: 'framework', group: 'erlang', version: '25.2.3', purl: 'pkg:github/erlang/otp@OTP-25.2.3' });
    expect(otp.components!.map((c) => [c.type, c.name, c.version, c.purl])).toEqual(
      expect.arrayContaining([
        ['platform', 'erts', '13.1.5', 'pkg:generic/erlang-otp/erts@13.1.5'],
        ['library', 'kernel', '8.5.3', 'pkg:generic/erlang-otp/kernel@8.5.3'],
        ['library', 'stdlib', '4.2', 'pkg:generic/erlang-otp/stdlib@4.2'],
        ['library', 'crypto', '5.1.4', 'pkg:generic/erlang-otp/crypto@5.1.4'],
      ]),
    );
    expect(otp.components).toHaveLength(5);
    expect(prop(otp.components!.find((c) => c.name === 'kernel')!, 'xamal:otp:release')).toBe('25.2.3');
    const elixir = named(doc, 'elixir');
    expect(elixir).toMatchObject({ type: 'framework', version: '1.14.0', purl: 'pkg:github/elixir-lang/elixir@v1.14.0' });
    expect(elixir.components!.map((c) => c.name).sort()).toEqual(['eex', 'elixir', 'logger']);
  });

  it("lists the project's own applications (the app, umbrella children, path dependencies) as built from its source", () => {
    const { doc } = sbom();
    expect(named(doc, 'shop')).toMatchObject({ type: 'application', version: '1.0.0', 'bom-ref': 'app:shop@1.0.0' });
    expect(named(doc, 'shop_web')).toMatchObject({ type: 'library', version: '1.0.0' });
    expect(prop(named(doc, 'shop_web'), 'xamal:source')).toBe('project');
  });

  it("draws mix.lock's dependency edges, and the release's on its apps, OTP, Elixir and the packages nothing else pulls in", () => {
    const { doc } = sbom();
    expect(dependsOn(doc, 'mix:my_plug')).toEqual(['mix:telemetry']);
    expect(dependsOn(doc, 'mix:jason')).toEqual(['mix:decimal']);
    const root = dependsOn(doc, 'release');
    expect(root).toEqual(expect.arrayContaining(['app:shop@1.0.0', 'app:shop_web@1.0.0', 'otp', 'elixir', 'mix:jason', 'mix:my_plug', 'mix:shop_hash', 'mix:phoenix_html']));
    // Pulled in by my_plug; not shipped.
    expect(root).not.toContain('mix:telemetry');
    expect(root).not.toContain('mix:decimal');
  });

  it('without a mix.lock, lists the release\'s applications only, and still validates', async () => {
    const contents = releaseContentsOf(['erts-13.1.5', 'lib/kernel-8.5.3', 'lib/stdlib-4.2', 'lib/elixir-1.14.0', 'lib/hello-0.1.0']);
    const { doc, text } = sbom({ lock: undefined, contents, app: 'hello', release: 'hello', releaseVersion: '0.1.0' });
    expect(await cycloneDxProblems(text)).toBeNull();
    expect(doc.components.map((c) => c.name).sort()).toEqual(['elixir', 'hello', 'otp']);
    expect(named(doc, 'otp').components!.map((c) => `${c.name}@${c.version}`).sort()).toEqual(['erts@13.1.5', 'kernel@8.5.3', 'stdlib@4.2']);
  });

  it('gives the same bytes for the same input', () => {
    expect(sbom().text).toBe(sbom().text);
  });
});

describe('where a git dependency comes from', () => {
  it.each([
    ['https://github.com/elixir-lang/gettext.git', 'https://github.com/elixir-lang/gettext.git', { owner: 'elixir-lang', repo: 'gettext' }],
    ['https://x-access-token:ghp_abc@github.com/acme/private', 'https://github.com/acme/private', { owner: 'acme', repo: 'private' }],
    ['git@github.com:acme/tool.git', 'ssh://github.com/acme/tool.git', { owner: 'acme', repo: 'tool' }],
    ['https://gitlab.com/group/sub/proj.git?private_token=x#frag', 'https://gitlab.com/group/sub/proj.git', undefined],
    ['http://10.0.0.7/shop_hash.git', 'http://10.0.0.7/shop_hash.git', undefined],
  ])('%s is %s', (url, clean, github) => {
    expect(gitSource(url)).toEqual({ url: clean, ...(github ? { github } : {}) });
  });

  it('is not said for what is no URL git fetches from', () => {
    expect(gitSource('not a url')).toBeUndefined();
    expect(gitSource('ftp://example.org/repo.git')).toBeUndefined();
  });
});
