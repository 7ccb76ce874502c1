import { Enums, Models, Serialize, Spec } from '@cyclonedx/cyclonedx-library';
import { PackageURL } from 'packageurl-js';
import type { LockedDep, LockedGitDep, LockedHexDep } from './mix-lock.ts';
import type { ReleaseApp, ReleaseContents } from './release-contents.ts';

/**
 * The release's SBOM: CycloneDX JSON, spec 1.6, made with CycloneDX's own library (models,
 * normalizer, serializer) and purls with packageurl-js. It lists what the farm read, never what a
 * build said about itself: mix.lock's packages (Hex: package, version, outer checksum, repository;
 * git: URL without credentials, commit), the applications under the tarball's `lib/`, and ERTS and the
 * OTP and Elixir applications the release ships, each under its OTP or Elixir release. Lock entries
 * the release does not ship (dev and test dependencies) are listed with scope `excluded`.
 */

export interface SbomInput {
  app: string;
  release: string;
  releaseVersion: string;
  /** The version the artifact is filed under (the commit). */
  version: string;
  tuple: string;
  mixEnv: string;
  /** The OTP and Elixir releases the builder image has (the tuple's). */
  otp: string;
  elixir: string;
  tarball: { fileName: string; sha256: string };
  contents: ReleaseContents;
  /** mix.lock's entries; undefined when the project has no lock. */
  lock: LockedDep[] | undefined;
  timestamp: Date;
  /** `urn:uuid:…`. */
  serialNumber: string;
  tool: { name: string; version: string };
}

/**
 * OTP's applications (lib/ of every OTP release since 24): in a release, an application of this name
 * that mix.lock does not pin is OTP's.
 */
const OTP_APPS = new Set([
  'asn1', 'common_test', 'compiler', 'crypto', 'debugger', 'dialyzer', 'diameter', 'edoc', 'eldap', 'erl_docgen', 'erl_interface',
  'erts', 'et', 'eunit', 'ftp', 'hipe', 'inets', 'jinterface', 'kernel', 'megaco', 'mnesia', 'observer', 'odbc', 'os_mon', 'otp_mibs',
  'parsetools', 'public_key', 'reltool', 'runtime_tools', 'sasl', 'snmp', 'ssh', 'ssl', 'stdlib', 'syntax_tools', 'tftp', 'tools', 'wx', 'xmerl',
]);
/** Elixir's applications (lib/ of Elixir's repository). */
const ELIXIR_APPS = new Set(['eex', 'elixir', 'ex_unit', 'iex', 'logger', 'mix']);

/** Property names of xamal's own (CycloneDX properties are free-form, namespaced by the producer). */
const P = {
  app: 'xamal:app',
  version: 'xamal:version',
  tuple: 'xamal:tuple',
  mixEnv: 'xamal:mix_env',
  scm: 'xamal:mix:scm',
  lockApp: 'xamal:mix:app',
  buildTools: 'xamal:mix:build_tools',
  appVersion: 'xamal:release:app_version',
  hexRepo: 'xamal:hex:repo',
  innerChecksum: 'xamal:hex:inner_checksum',
  gitRef: 'xamal:git:',
  gitSubdir: 'xamal:git:subdir',
  source: 'xamal:source',
  otpRelease: 'xamal:otp:release',
} as const;

const { ComponentType: Type, ComponentScope: Scope, ExternalReferenceType: Ref } = Enums;
const SHA256 = Enums.HashAlgorithm['SHA-256'];

const purl = (type: string, namespace: string | undefined, name: string, version: string, qualifiers?: Record<string, string>) =>
  new PackageURL(type, namespace, name, version, qualifiers, undefined).toString();

function withProperties(c: Models.Component, props: Record<string, string | undefined>): Models.Component {
  for (const [k, v] of Object.entries(props)) if (v !== undefined) c.properties.add(new Models.Property(k, v));
  return c;
}

/** A Hex package: purl and tarball URL when its repository is hex.pm (public or an organization's). */
function hexComponent(d: LockedHexDep): Models.Component {
  const [repo, org] = d.repo.split(':') as [string, string | undefined];
  const onHexPm = repo === 'hexpm';
  const c = new Models.Component(Type.Library, d.package, { version: d.version, bomRef: `mix:${d.app}`, ...(onHexPm ? { purl: purl('hex', org?.toLowerCase(), d.package.toLowerCase(), d.version) } : {}) });
  if (d.outerChecksum) c.hashes.set(SHA256, d.outerChecksum);
  if (onHexPm) {
    const base = org ? `https://repo.hex.pm/repos/${org}` : 'https://repo.hex.pm';
    c.externalReferences.add(new Models.ExternalReference(`${base}/tarballs/${d.package}-${d.version}.tar`, Ref.Distribution));
    if (!org) c.externalReferences.add(new Models.ExternalReference(`https://hex.pm/packages/${d.package}/${d.version}`, Ref.Website));
  }
  return withProperties(c, {
    [P.scm]: 'hex',
    [P.hexRepo]: d.repo,
    [P.innerChecksum]: d.innerChecksum,
    [P.buildTools]: d.managers.join(','),
    [P.lockApp]: d.app === d.package ? undefined : d.app,
  });
}

/**
 * Where a git dependency comes from, without credentials, query or fragment: a URL (scp-like
 * `git@host:path` becomes `ssh://host/path`), and the owner and repository when it is GitHub's.
 */
export function gitSource(url: string): { url: string; github?: { owner: string; repo: string } } | undefined {
  const scp = /^(?:[\w.-]+@)?([\w.-]+):(?!\/\/)([^\s]+)$/.exec(url);
  let parsed: URL;
  try {
    parsed = new URL(scp ? `ssh://${scp[1]}/${scp[2]!.replace(/^\/+/, '')}` : url);
  } catch {
    return undefined;
  }
  if (!['https:', 'http:', 'ssh:', 'git:', 'file:', 'git+ssh:'].includes(parsed.protocol)) return undefined;
  parsed.username = '';
  parsed.password = '';
  parsed.search = '';
  parsed.hash = '';
  const gh = parsed.hostname.toLowerCase() === 'github.com' ? /^\/([\w.-]+)\/([\w.-]+?)(?:\.git)?\/?$/.exec(parsed.pathname) : null;
  return { url: parsed.toString(), ...(gh ? { github: { owner: gh[1]!, repo: gh[2]! } } : {}) };
}

/** A git dependency: the commit as its version; pkg:github for GitHub, else pkg:generic with vcs_url. */
function gitComponent(d: LockedGitDep): Models.Component {
  const source = gitSource(d.url);
  const id = source?.github
    ? purl('github', source.github.owner.toLowerCase(), source.github.repo.toLowerCase(), d.commit)
    : purl('generic', undefined, d.app, d.commit, source ? { vcs_url: `git+${source.url}@${d.commit}` } : undefined);
  const c = new Models.Component(Type.Library, d.app, { version: d.commit, bomRef: `mix:${d.app}`, purl: id });
  if (source) c.externalReferences.add(new Models.ExternalReference(source.url, Ref.VCS, { comment: `commit ${d.commit}` }));
  return withProperties(c, { [P.scm]: 'git', ...(d.ref ? { [`${P.gitRef}${d.ref.kind}`]: d.ref.value } : {}), [P.gitSubdir]: d.subdir });
}

/** OTP's or Elixir's release as a component holding the applications of it the release ships. */
function toolchainComponent(kind: 'otp' | 'elixir', version: string): Models.Component {
  const tag = version.replace(/~/g, '-');
  return kind === 'otp'
    ? new Models.Component(Type.Framework, 'otp', { group: 'erlang', version, bomRef: 'otp', purl: purl('github', 'erlang', 'otp', `OTP-${tag}`) })
    : new Models.Component(Type.Framework, 'elixir', { group: 'elixir-lang', version, bomRef: 'elixir', purl: purl('github', 'elixir-lang', 'elixir', `v${tag}`) });
}

/** One application of OTP or Elixir, as shipped (its own version; its release's on the parent and as a property). */
function toolchainApp(kind: 'otp' | 'elixir', a: ReleaseApp, type: Enums.ComponentType, release: string): Models.Component {
  const namespace = kind === 'otp' ? 'erlang-otp' : 'elixir-lang';
  const c = new Models.Component(type, a.name, { version: a.version, bomRef: `${kind}:${a.name}@${a.version}`, purl: purl('generic', namespace, a.name, a.version) });
  return withProperties(c, kind === 'otp' ? { [P.otpRelease]: release } : {});
}

/** The project's own applications (the app, umbrella children, path dependencies): built from its source. */
function projectApp(a: ReleaseApp, input: SbomInput): Models.Component {
  const type = a.name === input.app ? Type.Application : Type.Library;
  return withProperties(new Models.Component(type, a.name, { version: a.version, bomRef: `app:${a.name}@${a.version}` }), { [P.source]: 'project' });
}

/** The release itself (metadata.component): its name and version, the tarball's sha256, where xamal filed it. */
function releaseComponent(input: SbomInput): Models.Component {
  const c = new Models.Component(Type.Application, input.release, { version: input.releaseVersion, bomRef: 'release' });
  c.hashes.set(SHA256, input.tarball.sha256);
  return withProperties(c, { [P.app]: input.app, [P.version]: input.version, [P.tuple]: input.tuple, [P.mixEnv]: input.mixEnv, 'xamal:tarball': input.tarball.fileName });
}

/** mix.lock's entries as components, scoped by whether the release ships them, with the lock's dependency edges. */
function lockComponents(lock: LockedDep[], shipped: Map<string, ReleaseApp[]>): Map<string, Models.Component> {
  const byApp = new Map<string, Models.Component>();
  for (const d of lock) {
    const c = d.scm === 'hex' ? hexComponent(d) : gitComponent(d);
    const apps = shipped.get(d.app);
    c.scope = apps ? Scope.Required : Scope.Excluded;
    if (apps) withProperties(c, { [P.appVersion]: apps.map((a) => a.version).join(',') });
    byApp.set(d.app, c);
  }
  for (const d of lock) {
    if (d.scm !== 'hex') continue;
    for (const dep of d.deps) {
      const target = byApp.get(dep.app);
      if (target) byApp.get(d.app)!.dependencies.add(target.bomRef);
    }
  }
  return byApp;
}

/** Pure: the Bom model of a release. */
export function releaseBom(input: SbomInput): Models.Bom {
  const bom = new Models.Bom({ serialNumber: input.serialNumber });
  const root = releaseComponent(input);
  bom.metadata = new Models.Metadata({ timestamp: input.timestamp, component: root });
  bom.metadata.tools.components.add(new Models.Component(Type.Application, input.tool.name, { version: input.tool.version }));
  const shipped = new Map<string, ReleaseApp[]>();
  for (const a of input.contents.apps) shipped.set(a.name, [...(shipped.get(a.name) ?? []), a]);
  const locked = lockComponents(input.lock ?? [], shipped);
  const otp = toolchainComponent('otp', input.otp);
  const elixir = toolchainComponent('elixir', input.elixir);
  for (const v of input.contents.erts) otp.components.add(toolchainApp('otp', { name: 'erts', version: v }, Type.Platform, input.otp));
  for (const a of input.contents.apps) {
    if (locked.has(a.name)) continue;
    if (OTP_APPS.has(a.name)) otp.components.add(toolchainApp('otp', a, Type.Library, input.otp));
    else if (ELIXIR_APPS.has(a.name)) elixir.components.add(toolchainApp('elixir', a, Type.Library, input.elixir));
    else {
      const c = projectApp(a, input);
      bom.components.add(c);
      root.dependencies.add(c.bomRef);
    }
  }
  for (const c of locked.values()) bom.components.add(c);
  // The release ships OTP and Elixir, and the locked packages no other locked package pulls in.
  const pulled = new Set([...locked.values()].flatMap((c) => [...c.dependencies]));
  for (const c of locked.values()) if (c.scope === Scope.Required && !pulled.has(c.bomRef)) root.dependencies.add(c.bomRef);
  for (const t of [otp, elixir]) {
    if (t.components.size === 0) continue;
    bom.components.add(t);
    root.dependencies.add(t.bomRef);
  }
  return bom;
}

/** Pure: the release's SBOM as CycloneDX 1.6 JSON text (lists sorted, so equal inputs give equal bytes). */
export function releaseSbom(input: SbomInput): string {
  const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6));
  return `${serializer.serialize(releaseBom(input), { sortLists: true, space: 2 })}\n`;
}
