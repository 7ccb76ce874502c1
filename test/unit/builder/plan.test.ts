import { describe, expect, it } from 'vitest';
import { BuildJobSchema, type BuildJobInput } from '../../../core/contracts/build-job.ts';
import { ManifestSchema } from '../../../core/contracts/manifest.ts';
import { isXamalError } from '../../../core/index.ts';
import { checkScan, containerFailure, releaseVersionOf, scanSummary } from '../../../builder/checks.ts';
import { assembleManifest, cacheLayout, DEFAULT_LIMITS, DISK_CHECK_MS, planBuild, SMOKE_MARKER, type BuildPlan, type BuildStep, type PlanInput } from '../../../builder/plan.ts';

const COMMIT = 'c'.repeat(40);
const X86 = 'linux-x86_64-gnu2.36-debian12-otp27.3.4-elixir1.18.3';
const ARM = 'linux-aarch64-gnu2.36-debian12-otp27.3.4-elixir1.18.3';
const DIGEST = `sha256:${'d'.repeat(64)}`;

const job = (over: Partial<BuildJobInput> = {}) => BuildJobSchema.parse({ app: 'hello', source: { kind: 'git', url: 'file:///repo', commit: COMMIT }, target: X86, ...over });

function input(over: Partial<PlanInput> = {}): PlanInput {
  return {
    job: job(),
    jobId: 'bjob',
    image: { ref: 'xamal/builder:tag', pinned: `xamal/builder@${DIGEST}`, digest: DIGEST },
    source: { lockHash: 'lock', configHash: 'config', mixExs: 'mixexs', hasDeps: false, linkedDirs: [] },
    workDir: '/work/bjob-1',
    cacheDir: '/cache',
    limits: DEFAULT_LIMITS,
    depsNetwork: 'egress',
    hostArch: 'x86_64',
    cache: { deps: false, build: false },
    ...over,
  };
}

const kindsWithHolds = (steps: BuildStep[]) => steps.map((s) => (s.kind === 'container' ? `container:${s.name}` : s.kind === 'hold-container' ? `hold:${s.name}` : s.kind));
/** The steps' kinds, without the containers held ahead (their own test below). */
const kinds = (steps: BuildStep[]) => steps.filter((s) => s.kind !== 'hold-container').map((s) => (s.kind === 'container' ? `container:${s.name}` : s.kind === 'phase' ? `phase:${s.phase}` : s.kind));
const find = <K extends BuildStep['kind']>(steps: BuildStep[], kind: K) => steps.filter((s): s is Extract<BuildStep, { kind: K }> => s.kind === kind);
/** The parallel step around the smoke test (the first one, around the restores, opens the egress namespace beside them). */
const parallel = (plan: BuildPlan) => find(plan.steps, 'parallel').find((p) => p.branches.flat().some((s) => s.kind === 'container' && s.name === 'smoke'))!;
/** The steps before deps: the restores and chown, beside the egress namespace's opening when a fetching step follows. */
/** What the build does before deps, after the work directories and the held containers: its own steps, and what it opens beside them. */
const prepare = (plan: BuildPlan) => {
  const steps = plan.steps.filter((s) => s.kind !== 'hold-container');
  const first = steps[1]!;
  return first.kind === 'parallel' ? { steps: first.branches[0]!, beside: first.branches[1]! } : { steps: steps.slice(1, steps.findIndex((s) => s.kind === 'phase')), beside: [] };
};
/** Every step of the plan, those inside parallel branches included. */
const all = (plan: BuildPlan) => [...plan.steps, ...parallel(plan).branches.flat()];
const container = (plan: BuildPlan, name: string) => [...plan.steps, ...parallel(plan).branches.flat()].find((s) => s.kind === 'container' && s.name === name) as Extract<BuildStep, { kind: 'container' }> | undefined;
/** The deps marker an earlier successful deps step left for this lock, mix.exs and image. */
const marker = (over: Partial<{ mixExs: string; depsDir: boolean; lockWritten: boolean }> = {}) => ({ mixExs: 'mixexs', depsDir: true, ...over });

describe('planBuild: the steps of a build', () => {
  it('a first build restores nothing, runs deps, saves its cache and marker, then compile, smoke beside packing, checks and upload, then the manifest', () => {
    const plan = planBuild(input());
    expect(kinds(plan.steps)).toEqual([
      'mkdir', 'parallel', 'phase:deps', 'container:deps', 'close-egress', 'save-cache', 'write-deps-marker',
      'phase:compile', 'container:compile', 'phase:release', 'check-tree', 'parallel', 'publish', 'remove', 'phase:done',
    ]);
    expect(parallel(plan).branches.map(kinds)).toEqual([
      ['container:smoke'],
      ['pack', 'phase:scan', 'check-scan', 'read-release-version', 'sbom', 'phase:upload', 'upload'],
      ['save-cache'],
    ]);
    // The SBOM reads the lock from the build's source (the smoke container beside it has no src/), and goes beside the manifest.
    expect(find(parallel(plan).branches[1]!, 'sbom')).toEqual([{ kind: 'sbom', base: '/work/bjob-1', src: '/work/bjob-1/src', key: plan.artifact.manifestKey.replace(/manifest\.json$/, 'sbom.cdx.json') }]);
    expect(find(plan.steps, 'mkdir')[0]!.paths).toEqual(['/work/bjob-1/out', '/work/bjob-1/home']);
    // Nothing to restore: chown beside the opening of the egress namespace deps fetches in.
    expect(kinds(prepare(plan).steps)).toEqual(['command']);
    expect(prepare(plan).beside).toEqual([{ kind: 'open-egress', spec: plan.containers.deps }]);
    expect(find(prepare(plan).steps, 'command')[0]!.command).toEqual({ argv: ['chown', '-R', '1000:1000', '/work/bjob-1'], label: 'chown workdir' });
  });

  it('a project that builds assets the Phoenix way gets an assets step between deps and compile, reaching the network as deps does', () => {
    const plan = planBuild(input({ source: { ...input().source, assets: true } }));
    // deps and assets fetch in one egress namespace, closed after assets.
    expect(kinds(plan.steps).slice(0, 11)).toEqual(['mkdir', 'parallel', 'phase:deps', 'container:deps', 'save-cache', 'write-deps-marker', 'phase:assets', 'container:assets', 'close-egress', 'phase:compile', 'container:compile']);
    const assets = container(plan, 'assets')!.spec;
    expect(assets.cmd).toEqual(['mix', 'assets.deploy']);
    expect(assets.networkMode).toBe('egress');
    expect(assets.env).toMatchObject({ https_proxy: 'http://127.0.0.1:3128', MIX_ENV: 'prod' });
    expect(container(plan, 'compile')!.spec.networkMode).toBe('none');
    expect(container(planBuild(input({ depsNetwork: 'none', source: { ...input().source, assets: true } })), 'assets')!.spec.networkMode).toBe('none');
    expect(container(planBuild(input()), 'assets')).toBeUndefined();
  });

  it('the fetching steps share one egress namespace, closed right after the last of them; a build without egress, or whose deps is skipped and has no assets, closes none', () => {
    const closes = (plan: BuildPlan) => kinds(plan.steps).filter((k) => k === 'close-egress').length;
    const withAssets = planBuild(input({ source: { ...input().source, assets: true } }));
    expect(kinds(withAssets.steps).indexOf('close-egress')).toBe(kinds(withAssets.steps).indexOf('container:assets') + 1);
    expect(closes(withAssets)).toBe(1);
    const depsOnly = planBuild(input());
    expect(kinds(depsOnly.steps).indexOf('close-egress')).toBe(kinds(depsOnly.steps).indexOf('container:deps') + 1);
    expect(closes(depsOnly)).toBe(1);
    // Skipped deps and assets: assets fetches alone and closes.
    const skipped = planBuild(input({ source: { ...input().source, assets: true }, cache: { deps: true, build: true, depsMarker: marker() } }));
    expect(kinds(skipped.steps).filter((k) => k.startsWith('container:') || k === 'close-egress')).toEqual(['container:assets', 'close-egress', 'container:compile']);
    // It is opened beside the restores for the first step that fetches: assets here.
    expect(prepare(skipped).beside).toEqual([{ kind: 'open-egress', spec: skipped.containers.assets }]);
    const nothingFetches = planBuild(input({ cache: { deps: true, build: true, depsMarker: marker() } }));
    expect(closes(nothingFetches)).toBe(0);
    expect(kinds(nothingFetches.steps)).not.toContain('open-egress');
    expect(prepare(nothingFetches).beside).toEqual([]);
    expect(closes(planBuild(input({ depsNetwork: 'none', source: { ...input().source, assets: true } })))).toBe(0);
  });

  it('a job with secrets gets them in deps and assets only: a file bound read-only and sourced by the command, written before deps and removed before compile', () => {
    const plan = planBuild(input({ job: job({ env: { SHOP_FLAVOUR: 'mild' } }), source: { ...input().source, assets: true }, secretsFile: '/dev/shm/xamal-secrets-bjob-1/secrets.env' }));
    expect(kinds(plan.steps).slice(0, 13)).toEqual(['mkdir', 'parallel', 'phase:deps', 'write-secrets', 'container:deps', 'save-cache', 'write-deps-marker', 'phase:assets', 'container:assets', 'close-egress', 'remove', 'phase:compile', 'container:compile']);
    expect(find(plan.steps, 'write-secrets')[0]!.path).toBe('/dev/shm/xamal-secrets-bjob-1/secrets.env');
    expect(find(plan.steps, 'remove')[0]!.path).toBe('/dev/shm/xamal-secrets-bjob-1');
    for (const name of ['deps', 'assets']) {
      const spec = container(plan, name)!.spec;
      expect(spec.cmd.slice(0, 3)).toEqual(['sh', '-c', 'set -a; . /build/secrets.env; set +a; exec "$@"']);
      expect(spec.cmd.slice(-2)).toEqual(['mix', name === 'deps' ? 'deps.get' : 'assets.deploy']);
      expect(spec.binds).toContain('/dev/shm/xamal-secrets-bjob-1/secrets.env:/build/secrets.env:ro');
    }
    for (const name of ['compile', 'smoke']) {
      expect(container(plan, name)!.spec.binds!.some((b) => b.includes('secrets'))).toBe(false);
      expect(container(plan, name)!.spec.cmd[0]).not.toBe('sh');
    }
    // The build's environment reaches every step but never replaces the farm's own variables.
    for (const name of ['deps', 'assets', 'compile']) expect(container(plan, name)!.spec.env).toMatchObject({ SHOP_FLAVOUR: 'mild', HOME: '/build/home', MIX_ENV: 'prod' });
    expect(JSON.stringify(plan)).not.toMatch(/hexkey|ghp_/);
  });

  it('a build whose mix.lock, mix.exs and image match a successful deps step skips deps (its deps/ restored from the cache)', () => {
    const plan = planBuild(input({ cache: { deps: true, build: false, depsMarker: marker() } }));
    expect(kinds(plan.steps).slice(0, 5)).toEqual(['mkdir', 'restore-cache', 'command', 'phase:deps', 'skip']);
    expect(find(plan.steps, 'skip')[0]!.message).toBe(`==> deps: skipped (fetched before with this mix.lock, mix.exs and image; cache ${plan.cacheKeys.deps})`);
    expect(container(plan, 'deps')).toBeUndefined();
    expect(find(plan.steps, 'write-deps-marker')).toEqual([]);
  });

  it('deps runs again when mix.exs changed since the marker, or its deps/ is neither cached nor in the source', () => {
    expect(container(planBuild(input({ cache: { deps: true, build: false, depsMarker: marker({ mixExs: 'other' }) } })), 'deps')).toBeDefined();
    expect(container(planBuild(input({ cache: { deps: false, build: false, depsMarker: marker() } })), 'deps')).toBeDefined();
    expect(container(planBuild(input({ cache: { deps: false, build: false } })), 'deps')).toBeDefined();
    // deps/ in the source itself, or an app whose deps step left none, needs no cache.
    const inSource = input({ source: { ...input().source, hasDeps: true }, cache: { deps: false, build: false, depsMarker: marker() } });
    expect(container(planBuild(inSource), 'deps')).toBeUndefined();
    expect(container(planBuild(input({ cache: { deps: false, build: false, depsMarker: marker({ depsDir: false }) } })), 'deps')).toBeUndefined();
  });

  it('deps runs again when it wrote a mix.lock the source lacks (an unlocked git dependency: the cache keeps deps/, not the lock), and a source without mix.lock has the marker say whether it did', () => {
    expect(container(planBuild(input({ cache: { deps: true, build: false, depsMarker: marker({ lockWritten: true }) } })), 'deps')).toBeDefined();
    expect(container(planBuild(input({ cache: { deps: true, build: false, depsMarker: marker({ lockWritten: false }) } })), 'deps')).toBeUndefined();
    // Without mix.lock in the source, a marker from before it said (no lockWritten) does not skip either.
    expect(container(planBuild(input({ source: { ...input().source, hasLock: false }, cache: { deps: true, build: false, depsMarker: marker() } })), 'deps')).toBeDefined();
    expect(container(planBuild(input({ source: { ...input().source, hasLock: false }, cache: { deps: true, build: false, depsMarker: marker({ lockWritten: false }) } })), 'deps')).toBeUndefined();
    const unlocked = planBuild(input({ source: { ...input().source, hasLock: false } }));
    expect(find(unlocked.steps, 'write-deps-marker')[0]).toMatchObject({ lock: expect.stringMatching(/\/mix\.lock$/) });
    const locked = planBuild(input({ source: { ...input().source, hasLock: true } }));
    expect(find(locked.steps, 'write-deps-marker')[0]!.lock).toBeUndefined();
  });

  it('a cached deps/ and _build are restored, in that order, before deps runs', () => {
    const plan = planBuild(input({ cache: { deps: true, build: true } }));
    const restores = find(prepare(plan).steps, 'restore-cache');
    expect(restores).toEqual([
      { kind: 'restore-cache', what: 'deps', from: plan.cachePaths.deps, into: '/work/bjob-1/src/deps' },
      { kind: 'restore-cache', what: '_build', from: plan.cachePaths.build, into: '/work/bjob-1/src/_build' },
    ]);
    // Then chown, all beside the egress namespace's opening, before deps runs.
    expect(kinds(prepare(plan).steps)).toEqual(['restore-cache', 'restore-cache', 'command']);
    expect(kinds(plan.steps).slice(0, 4)).toEqual(['mkdir', 'parallel', 'phase:deps', 'container:deps']);
    // Without egress (or with nothing that fetches) there is no namespace to open: restores and chown in order.
    const offline = planBuild(input({ depsNetwork: 'none', cache: { deps: true, build: true } }));
    expect(kinds(offline.steps).slice(0, 5)).toEqual(['mkdir', 'restore-cache', 'restore-cache', 'command', 'phase:deps']);
  });

  it('deps cache is saved first-writer-wins and _build replaced; the marker records mix.exs and where deps/ goes', () => {
    const plan = planBuild(input());
    const saves = [...find(plan.steps, 'save-cache'), ...find(parallel(plan).branches.flat(), 'save-cache')];
    expect(saves).toEqual([
      { kind: 'save-cache', from: '/work/bjob-1/src/deps', to: plan.cachePaths.deps, replace: false },
      { kind: 'save-cache', from: '/work/bjob-1/src/_build', to: plan.cachePaths.build, replace: true },
    ]);
    expect(find(plan.steps, 'write-deps-marker')).toEqual([
      { kind: 'write-deps-marker', path: `/cache/mix/hello/${plan.cacheKeys.deps}.fetched.json`, mixExs: 'mixexs', depsDir: '/work/bjob-1/src/deps' },
    ]);
  });

  it('an emulated build retries compile once; a native one does not; deps and smoke never', () => {
    const emulated = planBuild(input({ job: job({ target: ARM }), hostArch: 'x86_64' }));
    expect(container(emulated, 'compile')!.retryOnce).toBe('emulation');
    expect(container(emulated, 'deps')!.retryOnce).toBeUndefined();
    expect(container(emulated, 'smoke')!.retryOnce).toBeUndefined();
    expect(container(planBuild(input()), 'compile')!.retryOnce).toBeUndefined();
    // No host arch known: nothing is taken for emulated.
    expect(container(planBuild(input({ job: job({ target: ARM }), hostArch: undefined })), 'compile')!.retryOnce).toBeUndefined();
  });

  it('compile and smoke run without network, deps with the configured one', () => {
    for (const depsNetwork of ['egress', 'none'] as const) {
      const plan = planBuild(input({ depsNetwork }));
      expect(plan.containers.deps.networkMode).toBe(depsNetwork);
      expect(plan.containers.compile.networkMode).toBe('none');
      expect(plan.containers.smoke.networkMode).toBe('none');
    }
  });

  it('sends only the deps step through the egress proxy: its proxy variables point at the loopback port, the other steps have none', () => {
    const plan = planBuild(input({ depsNetwork: 'egress' }));
    expect(plan.containers.deps.env).toMatchObject({ http_proxy: 'http://127.0.0.1:3128', https_proxy: 'http://127.0.0.1:3128', HEX_HTTP_PROXY: 'http://127.0.0.1:3128', MIX_ENV: 'prod' });
    expect(plan.containers.compile.env).not.toHaveProperty('http_proxy');
    expect(plan.containers.smoke.env).not.toHaveProperty('https_proxy');
    expect(planBuild(input({ depsNetwork: 'none' })).containers.deps.env).not.toHaveProperty('http_proxy');
  });

  it('git over ssh goes to the worker\'s relay from the deps step only: its GIT_SSH_COMMAND and the relay flag, nothing of a key; assets, compile and smoke have neither', () => {
    const plan = planBuild(input({ depsNetwork: 'egress', source: { ...input().source, assets: true } }));
    const deps = container(plan, 'deps')!;
    expect(deps.gitSsh).toBe(true);
    expect(deps.spec.env).toMatchObject({ GIT_SSH_VARIANT: 'ssh' });
    expect(deps.spec.env!.GIT_SSH_COMMAND).toMatch(/^bash -c '.*\/dev\/tcp\/127\.0\.0\.1\/3129.*' xamal-git-ssh$/s);
    for (const name of ['assets', 'compile', 'smoke']) {
      const step = container(plan, name)!;
      expect(step.gitSsh, name).toBeUndefined();
      expect(step.spec.env, name).not.toHaveProperty('GIT_SSH_COMMAND');
    }
    // No key file, known_hosts file or deploy-key option anywhere in the plan: the keys stay with the worker.
    expect(JSON.stringify(plan)).not.toMatch(/ssh_key|known_hosts|IdentitiesOnly|-i /);
    // Without network the deps step has no relay either.
    const offline = container(planBuild(input({ depsNetwork: 'none' })), 'deps')!;
    expect(offline.gitSsh).toBeUndefined();
    expect(offline.spec.env).not.toHaveProperty('GIT_SSH_COMMAND');
  });

  it('every step container carries the process limit and the output cap, keeping no more output than the log would', () => {
    const limits = { ...DEFAULT_LIMITS, pids: 256, maxOutputBytes: 32 * 1024 ** 2 };
    const plan = planBuild(input({ limits, keptOutputBytes: 1024 ** 2 }));
    for (const spec of Object.values(plan.containers)) {
      expect(spec).toMatchObject({ pidsLimit: 256, output: { maxBytes: 32 * 1024 ** 2, keepBytes: 1024 ** 2 } });
    }
    expect(planBuild(input()).containers.compile).toMatchObject({ pidsLimit: 512, output: { maxBytes: 64 * 1024 ** 2, keepBytes: 4 * 1024 ** 2 } });
    expect(planBuild(input({ limits: { ...DEFAULT_LIMITS, maxOutputBytes: 65_536 } })).containers.deps.output).toEqual({ maxBytes: 65_536, keepBytes: 65_536 });
  });

  it('deps, compile and smoke each measure the whole work directory against the disk limit while they run', () => {
    const plan = planBuild(input({ limits: { ...DEFAULT_LIMITS, diskBytes: 1024 ** 3 } }));
    for (const name of ['deps', 'compile', 'smoke']) {
      expect(container(plan, name)!.disk).toEqual({ dir: '/work/bjob-1', maxBytes: 1024 ** 3, everyMs: DISK_CHECK_MS });
    }
  });

  it('smoke must print the marker, reads the release read-only, and runs as the build user under the limits', () => {
    const plan = planBuild(input());
    expect(container(plan, 'smoke')!.expect).toEqual({ stdout: SMOKE_MARKER, failure: 'the release did not answer `eval` in its own image' });
    expect(plan.containers.smoke.cmd).toEqual(['/build/out/hello/bin/hello', 'eval', `IO.puts("${SMOKE_MARKER}")`]);
    expect(plan.containers.smoke.binds).toEqual(['/work/bjob-1/out:/build/out:ro', '/work/bjob-1/home:/build/home']);
    expect(plan.containers.compile.cmd).toEqual(['mix', 'release', 'hello', '--overwrite', '--path', '/build/out/hello']);
    for (const spec of Object.values(plan.containers)) {
      expect(spec).toMatchObject({ image: `xamal/builder@${DIGEST}`, user: '1000:1000', readOnly: true, capDrop: ['ALL'], memoryBytes: DEFAULT_LIMITS.memoryBytes, timeoutMs: DEFAULT_LIMITS.stepTimeoutMs });
      expect(spec.labels?.['org.xamal.job']).toBe('bjob');
    }
  });

  it('the glibc check carries the target floor for gnu targets and none for musl', () => {
    expect(find(all(planBuild(input())), 'check-scan')).toEqual([{ kind: 'check-scan', glibcFloor: '2.36' }]);
    const musl = planBuild(input({ job: job({ target: 'linux-x86_64-musl1.2.5-alpine3.21-otp27.3.4-elixir1.18.3' }) }));
    expect(find(all(musl), 'check-scan')).toEqual([{ kind: 'check-scan' }]);
  });

  it('the compile and smoke containers are started right after the work directories exist, held with their own specs, and their steps take them; assets is held beside deps; deps starts its own', () => {
    const plain = planBuild(input());
    const assets = planBuild(input({ depsNetwork: 'egress', source: { ...input().source, assets: true } }));
    for (const plan of [plain, assets]) {
      expect(plan.steps.slice(0, 3)).toEqual([
        { kind: 'mkdir', paths: [plan.dirs.out, plan.dirs.home] },
        { kind: 'hold-container', name: 'compile', spec: plan.containers.compile },
        { kind: 'hold-container', name: 'smoke', spec: plan.containers.smoke },
      ]);
      expect(container(plan, 'compile')!.held).toBe(true);
      expect(container(plan, 'smoke')!.held).toBe(true);
      expect(container(plan, 'deps')!.held).toBeUndefined();
      expect(plan.containers.compile.networkMode).toBe('none');
      expect(plan.containers.smoke.networkMode).toBe('none');
    }
    expect(find(all(plain), 'hold-container')).toHaveLength(2);
    // In the build's egress namespace, right before deps (so after the secrets file is written, when there is one).
    const depsAt = assets.steps.findIndex((s) => s.kind === 'container' && s.name === 'deps');
    expect(assets.steps[depsAt - 1]).toEqual({ kind: 'hold-container', name: 'assets', spec: assets.containers.assets });
    expect(assets.containers.assets.networkMode).toBe('egress');
    expect(container(assets, 'assets')!.held).toBe(true);
    const secret = planBuild(input({ depsNetwork: 'egress', secretsFile: '/run/s/secrets.env', source: { ...input().source, assets: true } }));
    expect(kindsWithHolds(secret.steps).join(' ')).toMatch(/write-secrets hold:assets container:deps/);
  });

  it('uploads the tarball and its checksum, then publishes log, provenance, signature and manifest beside it, then removes the work directory', () => {
    const plan = planBuild(input());
    expect(find(all(plan), 'upload')).toEqual([{ kind: 'upload', file: plan.dirs.tarball, key: plan.artifact.tarballKey, sha256Key: plan.artifact.sha256Key, fileName: plan.artifact.fileName }]);
    const dir = `artifacts/hello/${COMMIT}/${X86}`;
    expect(find(plan.steps, 'publish')).toEqual([{ kind: 'publish', logKey: 'logs/bjob.log', provenanceKey: `${dir}/provenance.dsse.json`, signatureKey: `${dir}/manifest.dsse.json`, manifestKey: `${dir}/manifest.json` }]);
    expect(find(plan.steps, 'remove')).toEqual([{ kind: 'remove', path: '/work/bjob-1' }]);
    expect(plan.artifact.fileName).toBe(`hello-${COMMIT}-${X86}.tar.gz`);
    // The tarball is scanned as tar writes it, in one step.
    expect(find(parallel(plan).branches[1]!, 'pack')).toEqual([{ kind: 'pack', command: expect.anything(), tarball: plan.dirs.tarball, wanted: { path: 'releases/start_erl.data', maxBytes: 4096 } }]);
  });

  it('the tarball, its checksum and the SBOM are stored beside the smoke test and deleted if any branch fails; log, provenance, signature and manifest only after it passed', () => {
    const plan = planBuild(input());
    const step = parallel(plan);
    expect(step.removeOnFailure).toEqual([plan.artifact.tarballKey, plan.artifact.sha256Key, plan.artifact.sbomKey]);
    // Every key a branch stores is in the list: sbom and upload are the only steps that store anything there.
    const stored = step.branches.flat().flatMap((s) => (s.kind === 'upload' ? [s.key, s.sha256Key] : s.kind === 'sbom' ? [s.key] : []));
    expect(stored.sort()).toEqual([...step.removeOnFailure!].sort());
    expect(find(step.branches.flat(), 'publish')).toEqual([]);
    expect(plan.steps.indexOf(plan.steps.find((s) => s.kind === 'publish')!)).toBe(plan.steps.indexOf(step) + 1);
  });

  it('the release is checked as a real directory with no link out of it before it is scanned or packed', () => {
    const plan = planBuild(input());
    expect(find(plan.steps, 'check-tree')).toEqual([{ kind: 'check-tree', base: '/work/bjob-1', dir: '/work/bjob-1/out/hello', what: 'release' }]);
    expect(find(all(plan), 'read-release-version')[0]!.maxBytes).toBe(4096);
    expect(plan.steps.indexOf(find(plan.steps, 'check-tree')[0]!)).toBe(plan.steps.indexOf(parallel(plan)) - 1);
  });

  it('the release is packed as the build user, from the work directory, with no setuid, setgid or group/other write bits', () => {
    const tar = find(parallel(planBuild(input())).branches[1]!, 'pack')[0]!;
    expect(tar.command.cwd).toBe('/work/bjob-1');
    expect(tar.command.argv).toEqual([
      'setpriv', '--reuid=1000', '--regid=1000', '--clear-groups', '--',
      'tar', '--numeric-owner', '--owner=0', '--group=0', '--mode=go-w,a-s', '-C', 'out/hello', '--use-compress-program=gzip -1', '-cf', `hello-${COMMIT}-${X86}.tar.gz`, '.',
    ]);
  });

  it('a source whose deps or _build is a symbolic link is refused before anything is restored into it', () => {
    for (const linked of ['deps', '_build'] as const) {
      expect(() => planBuild(input({ source: { ...input().source, linkedDirs: [linked] } }))).toThrow(`source: ${linked} is a symbolic link; deps and _build must be directories`);
    }
  });

  it('a non-linux target is refused as unsupported', () => {
    const darwin = job({ target: 'darwin-aarch64-gnu2.36-debian12-otp27.3.4-elixir1.18.3' });
    let err: unknown;
    try {
      planBuild(input({ job: darwin }));
    } catch (e) {
      err = e;
    }
    expect(isXamalError(err) && err.code).toBe('unsupported');
    expect((err as Error).message).toMatch(/target os darwin: the farm builds linux targets only/);
  });
});

describe('planBuild: the assets step of a project that declares its inputs', () => {
  const ASSETS = { inputs: ['assets/**', 'lib/**/*.heex'] };
  /** A project with assets whose job declares its inputs, hashed to `inputs` (or not: a problem), with deps skipped or run. */
  const declared = (over: { inputs?: PlanInput['source']['assetsInputs']; kept?: boolean; depsSkipped?: boolean; network?: PlanInput['depsNetwork'] } = {}) => {
    const depsSkipped = over.depsSkipped ?? false;
    return input({
      job: job({ assets: ASSETS }),
      source: { ...input().source, assets: true, assetsInputs: over.inputs ?? { hash: 'inputs', files: 3 } },
      cache: { deps: depsSkipped, build: depsSkipped, ...(depsSkipped ? { depsMarker: marker() } : {}), assets: over.kept ?? false },
      ...(over.network ? { depsNetwork: over.network } : {}),
    });
  };

  it('with its output kept under the key, skips the step: says so with the key, restores priv/static, and compile (offline) compiles what changed', () => {
    const plan = planBuild(declared({ kept: true }));
    expect(plan.assetsCache).toEqual({ key: expect.stringMatching(/^assets-[0-9a-f]{32}$/), path: `/cache/mix/hello/${plan.assetsCache!.key}` });
    expect(kinds(plan.steps).slice(2, 12)).toEqual(['phase:deps', 'container:deps', 'close-egress', 'save-cache', 'write-deps-marker', 'phase:assets', 'skip', 'restore-output', 'phase:compile', 'container:compile']);
    expect(container(plan, 'assets')).toBeUndefined();
    expect(find(plan.steps, 'skip')[0]!.message).toBe(
      `==> assets: skipped (its inputs, command, image, mix.lock, config, MIX_ENV and environment are an earlier build's: cache ${plan.assetsCache!.key}); priv/static restored from it, the app compiled by the compile step`,
    );
    expect(find(plan.steps, 'restore-output')).toEqual([{ kind: 'restore-output', from: plan.assetsCache!.path, into: '/work/bjob-1/src/priv/static', base: '/work/bjob-1/src' }]);
    // `mix release` compiles before it assembles: the compile step is unchanged and has no network.
    expect(container(plan, 'compile')!.spec.cmd.slice(0, 2)).toEqual(['mix', 'release']);
    expect(container(plan, 'compile')!.spec.networkMode).toBe('none');
    // Nothing is saved over the entry it restored from.
    expect(find(plan.steps, 'save-cache').map((s) => s.to)).not.toContain(plan.assetsCache!.path);
  });

  it('skipped with deps skipped too, nothing fetches: no egress namespace is opened or closed', () => {
    const plan = planBuild(declared({ kept: true, depsSkipped: true }));
    expect(kinds(plan.steps).filter((k) => k.startsWith('container:') || k.endsWith('-egress'))).toEqual(['container:compile']);
    expect(prepare(plan).beside).toEqual([]);
  });

  it('with no output kept under the key, runs the step, says why, and keeps priv/static under the key (first writer wins)', () => {
    const plan = planBuild(declared({ depsSkipped: true }));
    expect(kinds(plan.steps).slice(2, 10)).toEqual(['phase:deps', 'skip', 'phase:assets', 'note', 'container:assets', 'close-egress', 'save-cache', 'phase:compile']);
    expect(prepare(plan).beside).toEqual([{ kind: 'open-egress', spec: plan.containers.assets }]);
    expect(find(plan.steps, 'note')[0]!.message).toBe(`==> assets: runs (no output kept under its key ${plan.assetsCache!.key} yet)`);
    expect(find(plan.steps, 'save-cache').at(-1)).toEqual({ kind: 'save-cache', from: '/work/bjob-1/src/priv/static', to: plan.assetsCache!.path, replace: false, what: 'assets' });
  });

  it('whose inputs could not be hashed, runs the step as without a declaration, saying why, and keeps nothing', () => {
    const plan = planBuild(declared({ inputs: { problem: 'the input pattern asset/** matches no file' }, kept: true }));
    expect(plan.assetsCache).toBeUndefined();
    expect(find(plan.steps, 'note')[0]!.message).toBe('==> assets: runs (its declared inputs could not be hashed: the input pattern asset/** matches no file)');
    expect(container(plan, 'assets')).toBeDefined();
    expect(find(plan.steps, 'save-cache').filter((s) => s.what === 'assets')).toEqual([]);
    expect(kinds(plan.steps)).not.toContain('restore-output');
  });

  it('without a declaration the step always runs, as before: no key, no note, nothing kept, even with hashed inputs', () => {
    const plan = planBuild(input({ source: { ...input().source, assets: true, assetsInputs: { hash: 'inputs', files: 3 } }, cache: { deps: false, build: false, assets: true } }));
    expect(plan.assetsCache).toBeUndefined();
    expect(kinds(plan.steps).filter((k) => ['note', 'skip', 'restore-output'].includes(k) || k.startsWith('container:'))).toEqual(['container:deps', 'container:assets', 'container:compile']);
  });
});

describe('cacheLayout', () => {
  it('deps keys follow the app, lock and image; _build keys also env, config and release; both live under <cache>/mix/<app>', () => {
    const base = cacheLayout(input());
    expect(base.paths).toEqual({ deps: `/cache/mix/hello/${base.keys.deps}`, build: `/cache/mix/hello/${base.keys.build}`, depsFetched: `/cache/mix/hello/${base.keys.deps}.fetched.json` });
    const config = cacheLayout(input({ source: { ...input().source, configHash: 'other' } }));
    expect(config.keys.deps).toBe(base.keys.deps);
    expect(config.keys.build).not.toBe(base.keys.build);
    const lock = cacheLayout(input({ source: { ...input().source, lockHash: 'other' } }));
    expect(lock.keys.deps).not.toBe(base.keys.deps);
    const image = cacheLayout(input({ image: { ...input().image, digest: `sha256:${'e'.repeat(64)}` } }));
    expect(image.keys.deps).not.toBe(base.keys.deps);
    expect(image.keys.build).not.toBe(base.keys.build);
    expect(cacheLayout(input({ job: job({ mixEnv: 'dev' }) })).keys.build).not.toBe(base.keys.build);
    expect(planBuild(input()).cacheKeys).toEqual(base.keys);
  });

  it('an assets key only for a job that declares its inputs and whose inputs were hashed; it follows them, the app, image, MIX_ENV, lock, config and environment', () => {
    const declared = (over: Partial<BuildJobInput> = {}, source: Partial<PlanInput['source']> = {}) =>
      cacheLayout(input({ job: job({ assets: { inputs: ['assets/**'] }, ...over }), source: { ...input().source, assets: true, assetsInputs: { hash: 'inputs', files: 1 }, ...source } })).assets;
    const base = declared()!;
    expect(base).toEqual({ key: expect.stringMatching(/^assets-[0-9a-f]{32}$/), path: `/cache/mix/hello/${base.key}` });
    expect(cacheLayout(input({ source: { ...input().source, assets: true, assetsInputs: { hash: 'inputs', files: 1 } } })).assets).toBeUndefined();
    expect(declared({}, { assetsInputs: { problem: 'x is a symbolic link' } })).toBeUndefined();
    const others = [
      declared({}, { assetsInputs: { hash: 'inputs2', files: 1 } }), declared({ app: 'twin' }), declared({ mixEnv: 'staging' }), declared({ env: { NODE_ENV: 'production' } }),
      declared({ assets: { inputs: ['assets/**', 'lib/**/*.heex'] } }), declared({}, { lockHash: 'lock2' }), declared({}, { configHash: 'config2' }),
      cacheLayout(input({ image: { ...input().image, digest: `sha256:${'e'.repeat(64)}` }, job: job({ assets: { inputs: ['assets/**'] } }), source: { ...input().source, assets: true, assetsInputs: { hash: 'inputs', files: 1 } } })).assets,
    ].map((a) => a!.key);
    expect(new Set([base.key, ...others]).size).toBe(others.length + 1);
    // The commit, the release and the deps marker are no part of it: a lib-only change keeps the key.
    expect(declared({ release: 'web', source: { kind: 'git', url: 'file:///repo', commit: 'e'.repeat(40) } }, { mixExs: 'other' })!.key).toBe(base.key);
  });

  it('two apps with identical lockfiles, config, image and release name share no key, no path and no deps marker', () => {
    const hello = cacheLayout(input({ job: job({ app: 'hello', release: 'web' }) }));
    const other = cacheLayout(input({ job: job({ app: 'other', release: 'web' }) }));
    expect(other.keys.deps).not.toBe(hello.keys.deps);
    expect(other.keys.build).not.toBe(hello.keys.build);
    for (const k of ['deps', 'build', 'depsFetched'] as const) {
      expect(other.paths[k].startsWith('/cache/mix/other/')).toBe(true);
      expect(hello.paths[k].startsWith('/cache/mix/hello/')).toBe(true);
    }
  });

  it('a build plan restores and saves only its own app\'s entries', () => {
    const plan = planBuild(input({ job: job({ app: 'other' }), cache: { deps: true, build: true } }));
    const touched = [...find(prepare(plan).steps, 'restore-cache').map((s) => s.from), ...[...find(plan.steps, 'save-cache'), ...find(parallel(plan).branches.flat(), 'save-cache')].map((s) => s.to)];
    expect(touched.length).toBe(4);
    for (const path of touched) expect(path.startsWith('/cache/mix/other/')).toBe(true);
  });
});

describe('checks of what a step found', () => {
  const step = { kind: 'container', name: 'compile', spec: { ...planBuild(input()).containers.compile, memoryBytes: 512 * 1024 ** 2, timeoutMs: 1000 } } as const;
  const ok = { code: 0, stdout: '', stderr: '', timedOut: false };

  it('a container step fails on cancel, time limit, memory limit, exit code, and missing expected output, in that order', () => {
    expect(containerFailure(step, ok)).toBeUndefined();
    expect(containerFailure(step, { ...ok, code: 137, cancelled: true, timedOut: true })).toEqual({ code: 'cancelled', message: 'build cancelled during compile' });
    expect(containerFailure(step, { ...ok, code: 137, timedOut: true, oomKilled: true })).toEqual({ code: 'build_failed', message: 'compile exceeded its time limit of 1000 ms' });
    expect(containerFailure(step, { ...ok, code: 137, oomKilled: true })).toEqual({
      code: 'build_failed',
      message: 'compile ran out of memory: the kernel killed it at its memory limit of 512 MiB (exit code 137)',
    });
    expect(containerFailure(step, { ...ok, code: 2 })).toEqual({ code: 'build_failed', message: 'compile failed with exit code 2' });
    expect(containerFailure({ ...step, spec: { ...step.spec, output: { maxBytes: 64 * 1024 ** 2, keepBytes: 1 } } }, { ...ok, code: 137, outputExceeded: true })).toEqual({
      code: 'build_failed',
      message: 'step compile printed more than 64 MiB of output; killed (XAMAL_MAX_STEP_OUTPUT_BYTES)',
    });
    const smoke = { ...step, name: 'smoke', expect: { stdout: SMOKE_MARKER, failure: 'no answer' } };
    expect(containerFailure(smoke, { ...ok, stdout: 'hello\n' })).toEqual({ code: 'build_failed', message: 'no answer' });
    expect(containerFailure(smoke, { ...ok, stdout: `${SMOKE_MARKER}\n` })).toBeUndefined();
  });

  it('the glibc check refuses a release needing more than the target\'s floor, and allows up to it', () => {
    expect(checkScan({ kind: 'check-scan', glibcFloor: '2.36' }, { glibcNeeded: '2.38' })).toBe("the release needs glibc 2.38, above its target's floor 2.36");
    expect(checkScan({ kind: 'check-scan', glibcFloor: '2.36' }, { glibcNeeded: '2.36' })).toBeUndefined();
    expect(checkScan({ kind: 'check-scan', glibcFloor: '2.36' }, { glibcNeeded: undefined })).toBeUndefined();
    expect(checkScan({ kind: 'check-scan' }, { glibcNeeded: '2.99' })).toBeUndefined();
  });

  it('the scan is logged with its ELF count, glibc and sonames', () => {
    expect(scanSummary({ elfFiles: ['a', 'b'], glibcNeeded: '2.34', sonames: ['libc.so.6', 'libm.so.6'], unreadable: [] })).toBe('==> scan: 2 ELF files, glibc needed 2.34, sonames libc.so.6 libm.so.6');
    expect(scanSummary({ elfFiles: [], glibcNeeded: undefined, sonames: [], unreadable: [] })).toBe('==> scan: 0 ELF files, glibc needed none, sonames ');
  });

  it('the release version is the second word of start_erl.data, a SemVer version after an ERTS version', () => {
    expect(releaseVersionOf('15.2.7 0.1.0\n')).toBe('0.1.0');
    expect(releaseVersionOf('15.2.7 1.2.3-rc.1+build.5')).toBe('1.2.3-rc.1+build.5');
    for (const bad of ['15.2.7\n', '', '15.2.7 0.1.0 extra', '15.2.7 ../../etc', '15.2.7 1.0.0\nroot:x:0:0', 'x 1.0.0', '15.2.7 1.0', ` 15.2.7 1.0.0`, `15.2.7 1.0.0-${'a'.repeat(64)}`]) {
      expect(releaseVersionOf(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });
});

describe('assembleManifest', () => {
  const built = { releaseVersion: '0.1.0', scan: { glibcNeeded: '2.34', sonames: ['libc.so.6'] }, tarball: { sha256: 'f'.repeat(64), size: 42 }, timings: { deps: 1 }, builtAt: '2025-01-01T00:00:00.000Z' };

  it('holds the plan\'s keys and image, the job\'s commit, and what the build learnt; it passes the manifest schema', () => {
    const plan = planBuild(input());
    const m = assembleManifest(plan, built);
    expect(ManifestSchema.parse(m)).toEqual(m);
    expect(m).toEqual({
      schema: 1,
      app: 'hello',
      release: 'hello',
      releaseVersion: '0.1.0',
      version: COMMIT,
      commit: COMMIT,
      tuple: X86,
      mixEnv: 'prod',
      tarball: { key: plan.artifact.tarballKey, sha256: 'f'.repeat(64), size: 42 },
      image: { ref: 'xamal/builder:tag', digest: DIGEST },
      cacheKeys: plan.cacheKeys,
      glibcNeeded: '2.34',
      sonames: ['libc.so.6'],
      timings: { deps: 1 },
      logKey: 'logs/bjob.log',
      builtAt: '2025-01-01T00:00:00.000Z',
      jobId: 'bjob',
    });
  });

  it('leaves out glibcNeeded for a musl release and commit for an archive without one', () => {
    const archive = job({ source: { kind: 'archive', key: `sources/${'a'.repeat(64)}.tar.gz`, sha256: 'a'.repeat(64) } });
    const m = assembleManifest(planBuild(input({ job: archive })), { ...built, scan: { glibcNeeded: undefined, sonames: [] } });
    expect('glibcNeeded' in m).toBe(false);
    expect('commit' in m).toBe(false);
    expect(m.version).toBe('a'.repeat(40));
  });
});
