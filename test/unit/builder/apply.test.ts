import { createHash, createPublicKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBuild, type BuildDeps } from '../../../builder/apply.ts';
import type { ContainerSpec, DockerEngine, RunOptions } from '../../../builder/docker.ts';
import { DEFAULT_LIMITS } from '../../../builder/plan.ts';
import { BuildJobSchema, type BuildPhase } from '../../../core/contracts/build-job.ts';
import { isXamalError, LocalExecutor, type Arch } from '../../../core/index.ts';
import type { LockFile } from '../../../images/lock.ts';
import { localStore } from '../../../store/local.ts';
import { FAKE_DIGEST, fakeDocker, hostPath, writeRelease } from '../../../testkit/builder/fake-docker.ts';
import { ONE_PACKAGE_LOCK } from '../../../testkit/builder/sbom-fixtures.ts';
import { commitFiles, git } from '../../../testkit/example-repo.ts';
import { memorySigner } from '../../../testkit/signing.ts';
import { IN_TOTO_PAYLOAD_TYPE, MANIFEST_PAYLOAD_TYPE, ProvenanceStatementSchema } from '../../../core/contracts/attestation.ts';
import { verifyEnvelope } from '../../../core/signing.ts';

/**
 * runBuild end to end without an engine: a fake DockerEngine whose containers write what `mix
 * deps.get`, `mix release` and the smoke test would, a store on disk, real cp/tar/chown.
 */
const X86 = 'linux-x86_64-gnu2.36-debian12-otp27.3.4-elixir1.18.3';
const DIGEST = FAKE_DIGEST;
/** Two commits of the test source (fixed dates: the same IDs in every run), set in beforeEach. */
let C1 = '';
let C2 = '';
const LOCK: LockFile = {
  version: 1,
  images: [{ ref: 'xamal/builder:t', digest: DIGEST, platforms: [{ arch: 'x86_64', digest: DIGEST }], resolvedAt: '2025-01-01T00:00:00.000Z', source: 'registry', flavour: 'builder', tuple: X86 }],
};

describe('runBuild carries the plan out', () => {
  const signer = memorySigner();
  let dir: string;
  const archives = new Map<string, { key: string; sha256: string }>();
  const store = () => localStore(join(dir, 'store'));
  const job = (commit: string, over: object = {}) => BuildJobSchema.parse({ app: 'hello', source: { kind: 'archive', ...archives.get(commit)!, commit }, target: X86, ...over });

  function deps(docker: DockerEngine, hostArch: Arch = 'x86_64'): BuildDeps {
    return { docker, exec: new LocalExecutor(), store: store(), locks: async () => [LOCK], cacheDir: join(dir, 'cache'), workRoot: join(dir, 'work'), limits: DEFAULT_LIMITS, depsNetwork: 'none', hostArch, signer };
  }

  async function build(d: BuildDeps, commit: string, over: object = {}) {
    const phases: BuildPhase[] = [];
    const lines: string[] = [];
    try {
      const out = await runBuild(d, job(commit, over), { phase: (p) => void phases.push(p), log: (l) => void lines.push(l) });
      return { out, phases, lines, err: undefined };
    } catch (err) {
      return { out: undefined, phases, lines, err: err as Error };
    }
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-apply-'));
    const src = join(dir, 'source');
    await mkdir(join(src, 'config'), { recursive: true });
    await writeFile(join(src, 'mix.exs'), 'defmodule Hello.MixProject do end');
    await writeFile(join(src, 'mix.lock'), ONE_PACKAGE_LOCK);
    await writeFile(join(src, 'config', 'config.exs'), 'import Config');
    git(src, 'init', '-q', '-b', 'main');
    C1 = await commitFiles(src, 'one', {});
    C2 = await commitFiles(src, 'two', { 'NOTES.md': 'two\n' });
    // As a client makes them: `git archive` records the commit in the tarball's header.
    for (const commit of [C1, C2]) {
      const bytes = execFileSync('git', ['-C', src, 'archive', '--format=tar.gz', commit]);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      archives.set(commit, { key: `sources/${sha256}.tar.gz`, sha256 });
      await store().put(`sources/${sha256}.tar.gz`, bytes);
    }
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('a first build: phases in order, each step logged, caches and deps marker saved, manifest last, work directory gone', async () => {
    const { docker, runs } = fakeDocker({});
    const { out, phases, lines, err } = await build(deps(docker), C1);
    expect(err).toBeUndefined();
    expect(phases).toEqual(['source', 'deps', 'compile', 'release', 'scan', 'upload', 'done']);
    expect(runs).toEqual(['deps', 'compile', 'smoke']);
    const m = out!.manifest;
    expect(lines.slice(0, 5)).toEqual([
      '==> deps: mix deps.get (network none)',
      'fetched jason',
      `==> compile: mix release hello --overwrite --path /build/out/hello (network none)`,
      'Release created',
      '==> smoke: /build/out/hello/bin/hello eval IO.puts("xamal-smoke-ok") (network none)',
    ]);
    // The smoke test's answer, then the packing branch's lines: branches side by side log in plan order.
    expect(lines.slice(5)).toEqual([
      'xamal-smoke-ok',
      '==> scan: 1 ELF files, glibc needed 2.34, sonames libc.so.6 libtinfo.so.6',
      '==> sbom: 0 applications, 1 package from mix.lock: artifacts/hello/' + `${C1}/${X86}/sbom.cdx.json`,
    ]);
    expect(Object.keys(m.timings).sort()).toEqual(['compile', 'deps', 'save _build', 'save deps', 'sbom', 'scan', 'smoke', 'source', 'tar', 'upload']);
    const order = Object.keys(m.timings);
    expect(order.slice(0, 4)).toEqual(['source', 'deps', 'save deps', 'compile']);
    // The packing branch in its order (the smoke test and the _build cache beside it).
    expect(order.filter((k) => ['tar', 'scan', 'sbom', 'upload'].includes(k))).toEqual(['tar', 'scan', 'sbom', 'upload']);
    expect(m).toMatchObject({ schema: 1, app: 'hello', release: 'hello', releaseVersion: '0.1.0', version: C1, commit: C1, tuple: X86, mixEnv: 'prod', glibcNeeded: '2.34', sonames: ['libc.so.6', 'libtinfo.so.6'], image: { ref: 'xamal/builder:t', digest: DIGEST } });
    expect(out!.cached).toBe(false);
    expect(out!.manifestKey).toBe(`artifacts/hello/${C1}/${X86}/manifest.json`);
    const s = store();
    expect(JSON.parse((await s.get(out!.manifestKey))!.toString())).toEqual(m);
    expect((await s.get(m.tarball.key))!.length).toBe(m.tarball.size);
    expect((await s.get(`${m.tarball.key}.sha256`))?.toString()).toBe(`${m.tarball.sha256}  hello-${C1}-${X86}.tar.gz\n`);
    expect((await s.get(m.logKey))!.toString()).toBe(`${lines.join('\n')}\n`);
    // The SBOM beside the manifest, pinned by the sha256 of its stored bytes: the release, and the locked package.
    const sbomKey = `artifacts/hello/${C1}/${X86}/sbom.cdx.json`;
    const sbom = (await s.get(sbomKey))!;
    expect(m.attestations).toMatchObject({ sbom: { key: sbomKey, sha256: createHash('sha256').update(sbom).digest('hex') } });
    const doc = JSON.parse(sbom.toString('utf8')) as { specVersion: string; metadata: { component: Record<string, unknown> }; components: { name: string; purl?: string }[] };
    expect(doc.specVersion).toBe('1.6');
    expect(doc.metadata.component).toMatchObject({ name: 'hello', version: '0.1.0', hashes: [{ alg: 'SHA-256', content: m.tarball.sha256 }] });
    expect(doc.components.map((c) => c.purl)).toEqual(['pkg:hex/jason@1.4.4']);
    const tarList = execFileSync('tar', ['-tzf', s.pathOf(m.tarball.key)], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
    expect(tarList).toEqual(['./', './bin/', './bin/beam.smp', './releases/', './releases/start_erl.data']);
    const mix = join(dir, 'cache', 'mix', 'hello');
    expect((await readdir(mix)).sort()).toEqual([m.cacheKeys.build, m.cacheKeys.deps, `${m.cacheKeys.deps}.fetched.json`].sort());
    expect(JSON.parse(await readFile(join(mix, `${m.cacheKeys.deps}.fetched.json`), 'utf8'))).toEqual({ mixExs: expect.stringMatching(/^[0-9a-f]{64}$/), depsDir: true });
    expect(existsSync(join(mix, m.cacheKeys.deps, 'jason', 'mix.exs'))).toBe(true);
    expect(existsSync(join(mix, m.cacheKeys.build, 'prod', 'hello.app'))).toBe(true);
    expect(await readdir(join(dir, 'work'))).toEqual([]);
  });

  it("each step container is removed beside the steps after it: the next step starts before that removal is done, and the build ends only once all are", async () => {
    const { docker } = fakeDocker({});
    const run = docker.run.bind(docker);
    const events: string[] = [];
    const removals: (() => void)[] = [];
    Object.assign(docker, {
      run: async (spec: ContainerSpec, signal?: AbortSignal, options?: RunOptions) => {
        const step = spec.labels!['org.xamal.step']!;
        events.push(`run ${step}`);
        const result = await run(spec, signal);
        options?.deferRemoval?.(new Promise<void>((done) => removals.push(() => (events.push(`removed ${step}`), done()))));
        return result;
      },
    });
    let ended = false;
    const building = build(deps(docker), C1).then((r) => ((ended = true), r));
    const manifest = `artifacts/hello/${C1}/${X86}/manifest.json`;
    for (let i = 0; i < 500 && !(await store().get(manifest)); i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    expect(events).toEqual(['run deps', 'run compile', 'run smoke']);
    expect(ended).toBe(false);
    for (const remove of removals) remove();
    const { err } = await building;
    expect(err).toBeUndefined();
    expect(events.slice(3).sort()).toEqual(['removed compile', 'removed deps', 'removed smoke']);
  });

  it("logs the smoke test's lines before the packing's even when the packing ends first: the log reads in plan order", async () => {
    // The smoke test answers only once the packing branch has stored the tarball's checksum: that branch ends first.
    const sumKey = `artifacts/hello/${C1}/${X86}/hello-${C1}-${X86}.tar.gz.sha256`;
    let packedFirst = false;
    const afterPacking = async () => {
      for (let i = 0; i < 1_000 && !(packedFirst = await store().exists(sumKey)); i++) await new Promise((r) => setTimeout(r, 10));
      return 'xamal-smoke-ok';
    };
    const { docker } = fakeDocker({}, 'GLIBC_2.34', { smoke: afterPacking });
    const { lines, err } = await build(deps(docker), C1);
    expect(err).toBeUndefined();
    expect(packedFirst).toBe(true);
    const at = (prefix: string) => lines.findIndex((l) => l.startsWith(prefix));
    expect(at('==> smoke:')).toBeGreaterThan(0);
    expect(lines.slice(at('==> smoke:'))).toEqual([expect.stringMatching(/^==> smoke: /), 'xamal-smoke-ok', expect.stringMatching(/^==> scan: /), expect.stringMatching(/^==> sbom: /)]);
  });

  it('compile and smoke run in the containers started for them at the start of the build; a build that fails before them removes both unused', async () => {
    const failing = fakeDocker({ deps: [{ code: 1, stderr: 'could not fetch\n' }] });
    const { err } = await build(deps(failing.docker), C1);
    expect(err?.message).toMatch(/^deps failed/);
    expect(failing.runs).toEqual(['deps']);
    expect(failing.held).toEqual(['compile', 'smoke']);
    expect(failing.discarded.sort()).toEqual(['compile', 'smoke']);
    const ok = fakeDocker({});
    expect((await build(deps(ok.docker), C1)).err).toBeUndefined();
    expect(ok.held).toEqual(['compile', 'smoke']);
    expect(ok.runs).toEqual(['deps', 'compile', 'smoke']);
    expect(ok.discarded).toEqual([]);
  });

  it('a container that could not be held leaves its step a fresh one', async () => {
    const { docker, runs } = fakeDocker({});
    Object.assign(docker, { startHeld: async () => Promise.reject(new Error('engine busy')) });
    expect((await build(deps(docker), C1)).err).toBeUndefined();
    expect(runs).toEqual(['deps', 'compile', 'smoke']);
  });

  it('a lock the SBOM cannot read fails the build naming mix.lock, where and why; neither SBOM nor manifest is published', async () => {
    const depsStep = async (spec: ContainerSpec) => {
      await writeFile(join(hostPath(spec, '/build/src'), 'mix.lock'), '%{\n  "jason": {:hex, :jason, File.read!("/etc/passwd")},\n}\n');
      return 'fetched jason';
    };
    const { docker } = fakeDocker({}, 'GLIBC_2.34', { deps: depsStep });
    const { err } = await build(deps(docker), C1);
    expect(isXamalError(err) && err.code).toBe('build_failed');
    expect(err!.message.split('\n')[0]).toBe(
      'sbom: mix.lock line 2, column 27: expected a string, atom, integer, list or tuple, found "File.read!(\\"" (mix.lock holds only what Mix writes) (the SBOM lists what mix.lock pins: a lock it cannot read stops the build)',
    );
    const s = store();
    expect(await s.get(`artifacts/hello/${C1}/${X86}/sbom.cdx.json`)).toBeUndefined();
    expect(await s.get(`artifacts/hello/${C1}/${X86}/manifest.json`)).toBeUndefined();
  });

  it('signs what it publishes: log, provenance, the manifest\'s signature, then the manifest last; both envelopes verify with the worker\'s key and the manifest pins the provenance by its bytes\' sha256', async () => {
    const { docker } = fakeDocker({});
    const inner = store();
    const puts: string[] = [];
    const recording = { ...inner, put: async (key: string, body: Buffer | string, type?: string) => (puts.push(key), inner.put(key, body, type)) };
    const { out, err } = await build({ ...deps(docker), store: recording }, C1);
    expect(err).toBeUndefined();
    const m = out!.manifest;
    const dirKey = `artifacts/hello/${C1}/${X86}`;
    expect(puts.slice(-4)).toEqual([m.logKey, `${dirKey}/provenance.dsse.json`, `${dirKey}/manifest.dsse.json`, `${dirKey}/manifest.json`]);
    const trusted = new Map([[signer.key.keyid, createPublicKey(signer.key.privateKey)]]);
    const manifestBytes = (await inner.get(`${dirKey}/manifest.json`))!;
    const sig = verifyEnvelope(JSON.parse((await inner.get(`${dirKey}/manifest.dsse.json`))!.toString()), MANIFEST_PAYLOAD_TYPE, trusted);
    expect(sig.ok && sig.payload.equals(manifestBytes)).toBe(true);
    const provenanceBytes = (await inner.get(`${dirKey}/provenance.dsse.json`))!;
    expect(m.attestations).toMatchObject({ provenance: { key: `${dirKey}/provenance.dsse.json`, sha256: createHash('sha256').update(provenanceBytes).digest('hex') }, sbom: { key: `${dirKey}/sbom.cdx.json` } });
    const prov = verifyEnvelope(JSON.parse(provenanceBytes.toString()), IN_TOTO_PAYLOAD_TYPE, trusted);
    expect(prov.ok).toBe(true);
    const statement = ProvenanceStatementSchema.parse(JSON.parse(prov.ok ? prov.payload.toString() : '{}'));
    expect(statement.subject).toEqual([{ name: `hello-${C1}-${X86}.tar.gz`, digest: { sha256: m.tarball.sha256 } }]);
    expect(statement.predicate.runDetails.metadata?.invocationId).toBe(m.jobId);
    // mix.lock of the fixture source, by its bytes.
    expect(statement.predicate.buildDefinition.resolvedDependencies).toContainEqual({ name: 'mix.lock', digest: { sha256: createHash('sha256').update(ONE_PACKAGE_LOCK).digest('hex') } });
    // A key that is not the worker's does not verify it.
    expect(verifyEnvelope(JSON.parse(provenanceBytes.toString()), IN_TOTO_PAYLOAD_TYPE, new Map([[signer.key.keyid, createPublicKey(memorySigner().key.privateKey)]])).ok).toBe(false);
  });

  it('holds its own deps and _build entries in the cache keeper from before it looks them up until it is done, then releases them', async () => {
    const events: string[] = [];
    const cacheKeeper = {
      hold: async (paths: readonly string[]) => {
        events.push(`hold ${paths.map((p) => p.slice(join(dir, 'cache').length + 1)).join(' ')}`);
        return async () => void events.push('release');
      },
      sweep: async () => {},
    };
    const { docker } = fakeDocker({});
    const { out, err } = await build({ ...deps(docker), cacheKeeper }, C1);
    expect(err).toBeUndefined();
    const keys = out!.manifest.cacheKeys;
    expect(events).toEqual([`hold mix/hello/${keys.deps} mix/hello/${keys.build}`, 'release']);
  });

  it('a second build of the same lock and mix.exs restores both caches and skips deps', async () => {
    const first = await build(deps(fakeDocker({}).docker), C1);
    const { docker, runs } = fakeDocker({});
    const { out, lines, err } = await build(deps(docker), C2);
    expect(err).toBeUndefined();
    expect(runs).toEqual(['compile', 'smoke']);
    const keys = first.out!.manifest.cacheKeys;
    const mix = join(dir, 'cache', 'mix', 'hello');
    expect(lines.slice(0, 3)).toEqual([
      `cache hit: deps from ${join(mix, keys.deps)}`,
      `cache hit: _build from ${join(mix, keys.build)}`,
      `==> deps: skipped (fetched before with this mix.lock, mix.exs and image; cache ${keys.deps})`,
    ]);
    expect(out!.manifest.cacheKeys).toEqual(keys);
    expect(Object.keys(out!.manifest.timings)).not.toContain('deps');
  });

  it('an artifact already in the store is answered at once', async () => {
    const first = await build(deps(fakeDocker({}).docker), C1);
    const { docker, runs } = fakeDocker({});
    const again = await build(deps(docker), C1);
    expect(runs).toEqual([]);
    expect(again.phases).toEqual(['done']);
    expect(again.lines).toEqual([`artifact already built: ${first.out!.manifestKey}`]);
    expect(again.out).toEqual({ manifest: first.out!.manifest, manifestKey: first.out!.manifestKey, cached: true });
  });

  it('an emulated build retries a failed compile once; a native one fails with the log tail', async () => {
    const emulated = fakeDocker({ compile: [{ code: 139, stderr: 'qemu: uncaught target signal 11\n' }] });
    const r = await build(deps(emulated.docker, 'aarch64'), C1);
    expect(r.err).toBeUndefined();
    expect(emulated.runs).toEqual(['deps', 'compile', 'compile', 'smoke']);
    expect(r.lines).toContain('==> compile failed under emulation; retrying once');
    expect(r.lines).toContain('==> compile (retry): mix release hello --overwrite --path /build/out/hello (network none)');
    expect(Object.keys(r.out!.manifest.timings)).toContain('compile (retry)');

    const native = fakeDocker({ compile: [{ code: 1, stderr: '** (CompileError) lib/hello.ex:1\n' }] });
    const n = await build(deps(native.docker), C2);
    expect(native.runs).toEqual(['compile']);
    expect(isXamalError(n.err) && n.err.code).toBe('build_failed');
    expect(n.err!.message).toBe('compile failed with exit code 1\n--- log tail ---\n' + n.lines.join('\n'));
    expect(n.phases).toEqual(['source', 'deps', 'compile']);
    expect(await readdir(join(dir, 'work'))).toEqual([]);
  });

  it('a compile killed from outside (its container removed by another client) fails the attempt as external, to be retried, without retrying it under emulation', async () => {
    const removed = fakeDocker({ compile: [{ code: 137, removed: true }] });
    const r = await build(deps(removed.docker, 'aarch64'), C1);
    expect(removed.runs).toEqual(['deps', 'compile']);
    expect(isXamalError(r.err) && r.err.code).toBe('external');
    expect(r.err!.message).toMatch(/^compile was killed with SIGKILL \(exit code 137\): its container was removed while it ran/);
    expect(await readdir(join(dir, 'work'))).toEqual([]);
  });

  it('a release needing a newer glibc than its target is refused after the scan, and nothing is uploaded', async () => {
    const { docker } = fakeDocker({}, 'GLIBC_2.38');
    const r = await build(deps(docker), C1);
    expect(isXamalError(r.err) && r.err.code).toBe('build_failed');
    expect(r.err!.message.split('\n')[0]).toBe("the release needs glibc 2.38, above its target's floor 2.36");
    expect(r.phases.at(-1)).toBe('scan');
    expect(await store().list('artifacts/')).toEqual([]);
  });

  it('a smoke test that does not answer fails the build, after the _build cache was saved beside it; the tarball, checksum and SBOM uploaded beside it are deleted, nothing is published', async () => {
    const tarballKey = `artifacts/hello/${C1}/${X86}/hello-${C1}-${X86}.tar.gz`;
    // The smoke test answers only once the tarball is stored beside it: the failure comes after the upload.
    const afterUpload = async () => {
      for (let i = 0; i < 500 && !(await store().exists(`${tarballKey}.sha256`)); i++) await new Promise((r) => setTimeout(r, 10));
      return 'something else';
    };
    const { docker } = fakeDocker({ smoke: [{ stdout: 'something else\n' }] }, 'GLIBC_2.34', { smoke: afterUpload });
    const r = await build(deps(docker), C1);
    expect(r.err!.message.split('\n')[0]).toBe('the release did not answer `eval` in its own image');
    expect(r.phases).toContain('upload');
    expect(r.phases).not.toContain('done');
    expect((await readdir(join(dir, 'cache', 'mix', 'hello'))).some((k) => k.startsWith('build-'))).toBe(true);
    expect(await store().list('artifacts/')).toEqual([]);
    expect(await store().list('logs/')).toEqual([]);
  });

  /** A build of a commit with assets through a fake egress proxy: what happened to the namespace, in order. */
  async function egressBuild(script: Parameters<typeof fakeDocker>[0]) {
    const src = join(dir, 'source');
    await mkdir(join(src, 'assets'));
    const C3 = await commitFiles(src, 'assets', { 'assets/app.js': 'x\n', 'mix.exs': 'defmodule Hello.MixProject do\n  # aliases: ["assets.deploy": []]\nend\n' });
    const bytes = execFileSync('git', ['-C', src, 'archive', '--format=tar.gz', C3]);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    archives.set(C3, { key: `sources/${sha256}.tar.gz`, sha256 });
    await store().put(`sources/${sha256}.tar.gz`, bytes);
    const events: string[] = [];
    const { docker } = fakeDocker(script, 'GLIBC_2.34', { assets: async () => 'assets deployed' });
    const run = docker.run.bind(docker);
    Object.assign(docker, {
      startDetached: async (spec: ContainerSpec) => (events.push(`sidecar ${spec.labels!['org.xamal.step']}${spec.binds ? ' with binds' : ''}`), { id: 'ns1', pid: 4242 }),
      removeContainer: async (id: string) => (events.push(`remove ${id}`), true),
      run: async (spec: ContainerSpec, signal?: AbortSignal) => (events.push(`${spec.labels!['org.xamal.step']} in ${spec.networkMode}`), run(spec, signal)),
    });
    const egress = {
      logPath: '',
      start: async () => undefined,
      stop: async () => undefined,
      allows: () => false,
      sshProxyCommand: async () => 'true',
      join: async (pid: number, relays: readonly unknown[] = []) => (events.push(`join ${pid} +${relays.length}`), { stop: () => void events.push('unjoin') }),
      relay: async (pid: number, relays: readonly unknown[]) => (events.push(`relay ${pid} +${relays.length}`), { stop: () => void events.push('unrelay') }),
    };
    const { err } = await build({ ...deps(docker), depsNetwork: 'egress', egress }, C3);
    return { err, events };
  }

  it('deps and assets fetch in one egress namespace: one sidecar with no files, joined to the proxy once, the git-ssh relay for deps only, removed after assets beside compile', async () => {
    const { err, events } = await egressBuild({});
    expect(err).toBeUndefined();
    // The sidecar is removed beside the offline steps that follow, before the build ends.
    expect(events.filter((e) => e !== 'remove ns1')).toEqual([
      'sidecar egress', 'join 4242 +0', 'relay 4242 +1', 'deps in container:ns1', 'unrelay',
      'assets in container:ns1', 'unjoin',
      'compile in none', 'smoke in none',
    ]);
    expect(events.filter((e) => e === 'remove ns1')).toHaveLength(1);
    expect(events.indexOf('remove ns1')).toBeGreaterThan(events.indexOf('unjoin'));
  });

  it('a failed fetching step still takes its egress namespace down: the way out and the sidecar go with the build', async () => {
    const { err, events } = await egressBuild({ assets: [{ code: 1, stderr: 'esbuild: not found\n' }] });
    expect(isXamalError(err) && err.code).toBe('build_failed');
    expect(events).toEqual(['sidecar egress', 'join 4242 +0', 'relay 4242 +1', 'deps in container:ns1', 'unrelay', 'assets in container:ns1', 'unjoin', 'remove ns1']);
  });

  /** A new commit of the test source with `files`, archived into the store as a client uploads it. */
  async function commitArchived(message: string, files: Record<string, string>): Promise<string> {
    const src = join(dir, 'source');
    const commit = await commitFiles(src, message, files);
    const bytes = execFileSync('git', ['-C', src, 'archive', '--format=tar.gz', commit]);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    archives.set(commit, { key: `sources/${sha256}.tar.gz`, sha256 });
    await store().put(`sources/${sha256}.tar.gz`, bytes);
    return commit;
  }

  it('with its assets inputs declared: the step\'s priv/static is kept under their key, restored instead of running it after a lib-only change, and the step runs again when an input changes', async () => {
    for (const d of ['assets', 'lib', 'priv/static']) await mkdir(join(dir, 'source', d), { recursive: true });
    const files = { 'assets/app.js': 'one\n', 'lib/hello.ex': 'defmodule Hello do end\n', 'priv/static/robots.txt': 'User-agent: *\n', 'mix.exs': 'defmodule Hello.MixProject do\n  # aliases: ["assets.deploy": []]\nend\n' };
    const A = await commitArchived('assets', files);
    const B = await commitArchived('lib only', { 'lib/hello.ex': 'defmodule Hello do def x, do: 1 end\n' });
    const C = await commitArchived('assets changed', { 'assets/app.js': 'two\n' });
    // The assets step bundles assets/app.js into priv/static; compile records what priv/static holds when it runs.
    const seen: Record<string, string>[] = [];
    const { docker, runs } = fakeDocker({}, 'GLIBC_2.34', {
      assets: async (spec) => {
        const src = hostPath(spec, '/build/src');
        const js = await readFile(join(src, 'assets', 'app.js'), 'utf8');
        await mkdir(join(src, 'priv', 'static', 'assets'), { recursive: true });
        await writeFile(join(src, 'priv', 'static', 'assets', `app-${js.trim()}.js`), js);
        await writeFile(join(src, 'priv', 'static', 'cache_manifest.json'), JSON.stringify({ 'assets/app.js': `assets/app-${js.trim()}.js` }));
        return 'assets deployed';
      },
      compile: async (spec) => {
        const stat = join(hostPath(spec, '/build/src'), 'priv', 'static');
        const list = execFileSync('find', ['.', '-type', 'f'], { cwd: stat, encoding: 'utf8' }).split('\n').filter(Boolean).sort();
        seen.push(Object.fromEntries(await Promise.all(list.map(async (f) => [f, await readFile(join(stat, f), 'utf8')] as const))));
        return writeRelease(spec);
      },
    });
    const declared = { assets: { inputs: ['assets/**'] } };
    const first = await build(deps(docker), A, declared);
    expect(first.err).toBeUndefined();
    const key = (first.lines.find((l) => l.startsWith('==> assets: runs')) ?? '').match(/assets-[0-9a-f]{32}/)?.[0];
    expect(first.lines).toContain(`==> assets: runs (no output kept under its key ${key} yet)`);
    expect(Object.keys(first.out!.manifest.timings)).toContain('save assets');
    const bundled = { './robots.txt': 'User-agent: *\n', './assets/app-one.js': 'one\n', './cache_manifest.json': '{"assets/app.js":"assets/app-one.js"}' };
    expect(seen[0]).toEqual(bundled);
    expect(existsSync(join(dir, 'cache', 'mix', 'hello', key!, 'assets', 'app-one.js'))).toBe(true);

    runs.length = 0;
    const second = await build(deps(docker), B, declared);
    expect(second.err).toBeUndefined();
    expect(runs).toEqual(['compile', 'smoke']);
    expect(second.lines).toContain(`==> assets: skipped (its inputs, command, image, mix.lock, config, MIX_ENV and environment are an earlier build's: cache ${key}); priv/static restored from it, the app compiled by the compile step`);
    expect(second.phases).toContain('assets');
    expect(Object.keys(second.out!.manifest.timings)).toContain('restore assets');
    expect(seen[1]).toEqual(bundled);

    runs.length = 0;
    const third = await build(deps(docker), C, declared);
    expect(third.err).toBeUndefined();
    expect(runs).toEqual(['assets', 'compile', 'smoke']);
    expect(seen[2]).toEqual({ './robots.txt': 'User-agent: *\n', './assets/app-two.js': 'two\n', './cache_manifest.json': '{"assets/app.js":"assets/app-two.js"}' });
    // Without the declaration the step runs whatever is kept.
    const D = await commitArchived('lib only again', { 'lib/hello.ex': 'defmodule Hello do def x, do: 2 end\n' });
    runs.length = 0;
    const undeclared = await build(deps(docker), D);
    expect(undeclared.err).toBeUndefined();
    expect(runs).toEqual(['assets', 'compile', 'smoke']);
    expect(undeclared.lines.some((l) => l.startsWith('==> assets: skipped') || l.startsWith('==> assets: runs ('))).toBe(false);
  });

  it('a source archive whose checksum differs is refused before anything runs', async () => {
    const { docker, runs } = fakeDocker({});
    const archive = archives.get(C1)!;
    await store().put(archive.key, 'tampered');
    const r = await build(deps(docker), C1);
    expect(isXamalError(r.err) && r.err.code).toBe('build_failed');
    expect(r.err!.message).toMatch(new RegExp(`^source archive ${archive.key} has sha256 [0-9a-f]{64}, expected ${archive.sha256}$`));
    expect(runs).toEqual([]);
    expect(r.phases).toEqual(['source']);
  });

  it('an archive that claims another commit than the one it was made from, or one it does not record, is refused before anything runs', async () => {
    const { docker, runs } = fakeDocker({});
    // C2's archive filed as C1's: the header says C2.
    archives.set(C1, archives.get(C2)!);
    const swapped = await build(deps(docker), C1);
    expect(swapped.err!.message).toBe(`source archive ${archives.get(C2)!.key} claims commit ${C1} but was made from ${C2}`);
    // A plain tar records no commit.
    const plain = execFileSync('tar', ['-czf', '-', '-C', join(dir, 'source'), '--exclude=.git', '.']);
    const sha256 = createHash('sha256').update(plain).digest('hex');
    await store().put(`sources/${sha256}.tar.gz`, plain);
    archives.set(C2, { key: `sources/${sha256}.tar.gz`, sha256 });
    const unrecorded = await build(deps(docker), C2);
    expect(unrecorded.err!.message).toMatch(new RegExp(`^source archive sources/${sha256}.tar.gz claims commit ${C2} but records none`));
    expect(runs).toEqual([]);
  });

  it('a step that leaves its work directory past the disk limit fails the build naming the limit, and nothing is uploaded', async () => {
    const { docker, runs } = fakeDocker({});
    const run = docker.run.bind(docker);
    docker.run = async (spec, signal) => {
      if (spec.labels!['org.xamal.step'] === 'compile') {
        const out = spec.binds!.map((b) => b.split(':')).find(([, c]) => c === '/build/out')![0]!;
        const big = await open(join(out, 'big'), 'w');
        await big.truncate(70 * 1024 ** 2);
        await big.close();
      }
      return run(spec, signal);
    };
    const d = { ...deps(docker), limits: { ...DEFAULT_LIMITS, diskBytes: 64 * 1024 ** 2 } };
    const { err, phases } = await build(d, C1);
    expect(isXamalError(err) && err.code).toBe('build_failed');
    expect(err!.message).toMatch(/^step compile filled its work directory past 64 MiB \(70\.\d MiB found\); killed \(XAMAL_MAX_BUILD_DISK_BYTES\)/);
    expect(runs).toEqual(['deps', 'compile']);
    expect(phases).not.toContain('upload');
    expect(await store().list('artifacts/')).toEqual([]);
  });

  it('a builder no lock holds yet is prepared first (phase image, its lines in the log), then the job builds in it; a preparation that fails fails the job with its reason', async () => {
    const { docker } = fakeDocker({});
    const locks: typeof LOCK[] = [];
    const prepared: string[] = [];
    const d: BuildDeps = {
      ...deps(docker),
      locks: async () => [...locks],
      prepareImage: async (target, held, say) => {
        prepared.push(`${target.otp} ${held.length}`);
        await say('image: compiling OTP (fake)');
        locks.push(LOCK);
      },
    };
    const failing: BuildDeps = { ...deps(docker), locks: async () => [], prepareImage: async () => Promise.reject(new Error('no native aarch64 worker')) };
    const r = await build(failing, C1);
    expect(r.err?.message).toBe('no native aarch64 worker');
    expect(r.phases).toEqual(['image']);

    const { out, phases, lines, err } = await build(d, C1);
    expect(err).toBeUndefined();
    expect(out?.manifest.tuple).toBe(X86);
    expect(phases.slice(0, 2)).toEqual(['image', 'source']);
    expect(prepared).toEqual(['27.3.4 0']);
    expect(lines).toContain('image: compiling OTP (fake)');
    // Prepared once: the next job finds it in the lock.
    await build(d, C2);
    expect(prepared).toHaveLength(1);

  });
});
