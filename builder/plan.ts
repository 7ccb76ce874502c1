import { createHash } from 'node:crypto';
import { dirname, join, relative } from 'node:path';
import {
  artifactFileName,
  artifactKey,
  artifactManifestKey,
  artifactSbomKey,
  artifactProvenanceKey,
  artifactSha256Key,
  artifactSignatureKey,
  buildLogKey,
  formatTarget,
  XamalError,
  type Arch,
  type ArtifactRef,
  type Command,
} from '../core/index.ts';
import { sourceVersion, type BuildJob, type BuildPhase } from '../core/contracts/build-job.ts';
import type { Manifest } from '../core/contracts/manifest.ts';
import { asBuildUser, BUILD_USER, sandboxed } from './build-user.ts';
import { assetsCacheKey, ASSETS_OUTPUT, type AssetsInputs } from './assets-cache.ts';
import type { CacheFacts, SourceHashes } from './cache.ts';
import type { DiskLimit } from './disk.ts';
import type { WantedFile } from './elf.ts';
import type { ContainerSpec } from './docker.ts';
import { proxyEnv } from './egress.ts';
import { gitSshRelayEnv } from './git-ssh-relay.ts';
import { mixToolsEnv, TOOLS_MOUNT, type MixTools, type MixToolsSettings } from './mix-tools.ts';

/** The deps step's network: through the egress proxy (builder/egress.ts), or none at all. */
export type DepsNetwork = 'egress' | 'none';

/** Limits every build container runs under. */
export interface BuildLimits {
  cpus: number;
  memoryBytes: number;
  /** Wall clock per step. */
  stepTimeoutMs: number;
  /** Processes and threads per step container (XAMAL_BUILD_PIDS_LIMIT): a fork bomb stops there. */
  pids: number;
  /** A step printing more than this (stdout and stderr together) is killed (XAMAL_MAX_STEP_OUTPUT_BYTES). */
  maxOutputBytes: number;
  /** The build's work directory (source, deps, _build, release, tarball) may not grow past this (XAMAL_MAX_BUILD_DISK_BYTES). */
  diskBytes: number;
}

export const DEFAULT_LIMITS: BuildLimits = {
  cpus: 2,
  memoryBytes: 4 * 1024 ** 3,
  stepTimeoutMs: 20 * 60_000,
  pids: 512,
  maxOutputBytes: 64 * 1024 ** 2,
  diskBytes: 8 * 1024 ** 3,
};

/** How often a running step's work directory is measured against BuildLimits.diskBytes. */
export const DISK_CHECK_MS = 5_000;

/** Bytes of a step's output kept in memory when the plan input does not say (the build log's default cap). */
export const DEFAULT_KEPT_OUTPUT_BYTES = 4 * 1024 * 1024;

export const SMOKE_MARKER = 'xamal-smoke-ok';

/** What the plan needs to know of the unpacked source. */
export interface SourceFacts extends SourceHashes {
  /** The source itself has a deps/ directory. */
  hasDeps: boolean;
  /** The source has a mix.lock (undefined: not looked at). */
  hasLock?: boolean;
  /** Which of deps and _build the source has as symbolic links (the cache is never restored through one). */
  linkedDirs: ('deps' | '_build')[];
  /** The project builds assets the Phoenix way: an assets/ directory and an `assets.deploy` alias in mix.exs. */
  assets?: boolean;
  /** The job's declared assets inputs hashed (builder/assets-cache.ts), or why not; only for a job that declares them and a project with assets. */
  assetsInputs?: AssetsInputs;
}

export interface CacheInput {
  job: BuildJob;
  /** `repo@sha256:…` of the pinned builder image, and its digest. */
  image: { ref: string; pinned: string; digest: string };
  source: Pick<SourceFacts, 'lockHash' | 'configHash' | 'assetsInputs'>;
  cacheDir: string;
}

export interface PlanInput extends CacheInput {
  source: SourceFacts;
  jobId: string;
  /** Per-job scratch directory on the worker. */
  workDir: string;
  limits: BuildLimits;
  /** Bytes of each step's output the worker keeps in memory (its log keeps no more; default DEFAULT_KEPT_OUTPUT_BYTES). */
  keptOutputBytes?: number;
  /** Network for the deps step only: `egress` reaches the allowed hosts through the farm's proxy; `none` forbids. */
  depsNetwork: DepsNetwork;
  /** This machine's arch: a build for another one runs under qemu. */
  hostArch?: Arch;
  cache: CacheFacts;
  /** Hex and rebar3 prepared for this image (builder/mix-tools.ts), mounted read-only into deps and compile. */
  tools?: MixTools;
  /** The farm's Hex settings (mirror, offline) the steps that run Mix get. */
  mixTools?: MixToolsSettings;
  /**
   * Where the worker writes the job's secrets for the deps and assets steps (a file on tmpfs, in a
   * directory of its own); set when the job has secrets.
   */
  secretsFile?: string;
}

/** One thing the applier does (builder/apply.ts), as data. */
export type BuildStep =
  | { kind: 'phase'; phase: BuildPhase }
  | { kind: 'mkdir'; paths: string[] }
  | { kind: 'restore-cache'; what: 'deps' | '_build'; from: string; into: string }
  | { kind: 'command'; command: Command }
  | { kind: 'skip'; message: string }
  /** A line for the log (why a step runs that could have been skipped). */
  | { kind: 'note'; message: string }
  /**
   * Replaces `into` (a directory of the source, reached from `base` through real directories only)
   * with a copy of the cache entry `from`: a skipped assets step's output.
   */
  | { kind: 'restore-output'; from: string; into: string; base: string }
  /**
   * A container run; `retryOnce: 'emulation'` runs it once more after a build failure; `expect` is
   * output it must print; `disk`: the work directory is measured while it runs and after, and the
   * step killed and failed once it is past the limit.
   */
  | {
      kind: 'container';
      name: string;
      spec: ContainerSpec;
      disk: DiskLimit;
      retryOnce?: 'emulation';
      expect?: { stdout: string; failure: string };
      /** Why Hex or rebar3 is missing (builder/mix-tools.ts): a failure that needed one says so. */
      toolProblems?: string[];
      /** git over ssh reaches the worker's relay (builder/git-ssh-relay.ts): the farm's deploy keys, for this step only. */
      gitSsh?: true;
      /** Runs in the container a `hold-container` step of the same name started (a fresh one if that failed). */
      held?: true;
    }
  /**
   * Creates and starts the container of the later container step `name`, held at its gate
   * (DockerEngine.startHeld), and goes on at once: its start overlaps the steps before it. A spec
   * with network `egress` is held in the build's egress namespace. The build removes it at its end
   * if that step never ran.
   */
  | { kind: 'hold-container'; name: string; spec: ContainerSpec }
  /** `what` names it in the timings (default: the directory's name). */
  | { kind: 'save-cache'; from: string; to: string; replace: boolean; what?: string }
  /**
   * The fetching steps (network `egress`) of a build share one network namespace, opened by the first
   * of them (builder/step-container.ts); this step, after the last of them, closes it.
   */
  | { kind: 'close-egress' }
  /** Opens the build's egress namespace ahead of its first fetching step, whose spec gives the image and limits. */
  | { kind: 'open-egress'; spec: ContainerSpec }
  /** Writes the job's secrets (held by the worker, never in the plan) to `path`, readable by the build user only. */
  | { kind: 'write-secrets'; path: string }
  /** Records that deps ran with this mix.exs, and whether it left `depsDir`. */
  | { kind: 'write-deps-marker'; path: string; mixExs: string; depsDir: string; lock?: string }
  /**
   * Branches run side by side, each in order; the first failed branch (in this order) fails the step,
   * after every branch has settled and the objects at `removeOnFailure` (store keys a branch may have
   * put) are deleted: nothing of a failed build stays in the store.
   */
  | { kind: 'parallel'; branches: BuildStep[][]; removeOnFailure?: string[] }
  /**
   * Refuses a `dir` that is not a real directory reached from `base` through real directories, or
   * that holds links leading out of it or special files (builder/links.ts); `what` names it in errors.
   */
  | { kind: 'check-tree'; base: string; dir: string; what: string }
  /**
   * Packs the release (`command`, tar) into `tarball`, which is hashed and scanned (builder/elf.ts)
   * as tar writes it, keeping `wanted` (start_erl.data) from it: the scan reads the archive's bytes.
   */
  | { kind: 'pack'; command: Command; tarball: string; wanted: WantedFile }
  /** Logs the scan; refuses a release needing a glibc above `glibcFloor`. */
  | { kind: 'check-scan'; glibcFloor?: string }
  /** The release version from the start_erl.data the scan kept (a regular file of at most `maxBytes`), validated. */
  | { kind: 'read-release-version'; maxBytes: number }
  /**
   * Writes the release's SBOM (builder/sbom.ts) to `key`: from what the scan found in the tarball and
   * the project's mix.lock in `src` (a real directory under `base`), read by the worker, never run.
   */
  | { kind: 'sbom'; base: string; src: string; key: string }
  | { kind: 'upload'; file: string; key: string; sha256Key: string; fileName: string }
  /**
   * Stores the log, the signed provenance, the manifest's signature and, last, the manifest (which
   * makes the artifact visible).
   */
  | { kind: 'publish'; logKey: string; provenanceKey: string; signatureKey: string; manifestKey: string }
  | { kind: 'remove'; path: string };

export interface CacheLayout {
  keys: { deps: string; build: string };
  /**
   * `depsFetched`: a marker the worker writes after a deps step succeeded for this deps key, holding
   * the mix.exs it ran with (builder/cache.ts): the next build with the same lock and mix.exs skips the step.
   */
  paths: { deps: string; build: string; depsFetched: string };
  /** The assets step's output (priv/static) under its key, for a job that declares its inputs when they could be hashed. */
  assets?: { key: string; path: string };
}

export interface BuildPlan {
  job: BuildJob;
  jobId: string;
  image: { ref: string; digest: string };
  release: string;
  artifact: ArtifactRef & { tarballKey: string; sha256Key: string; manifestKey: string; sbomKey: string; provenanceKey: string; signatureKey: string; logKey: string; fileName: string };
  cacheKeys: CacheLayout['keys'];
  cachePaths: CacheLayout['paths'];
  /** Where the assets step's output is kept under its key (CacheLayout `assets`). */
  assetsCache?: CacheLayout['assets'];
  dirs: { src: string; out: string; home: string; releaseDir: string; tarball: string };
  containers: { deps: ContainerSpec; assets: ContainerSpec; compile: ContainerSpec; smoke: ContainerSpec };
  /** Everything the build does after its source is in place, in order. */
  steps: BuildStep[];
}

/** The assets step's command (before the secrets' wrapper): part of its cache key. */
export const ASSETS_COMMAND = ['mix', 'assets.deploy'] as const;

const hash = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);

/** Where things are inside build containers. */
const C = { src: '/build/src', out: '/build/out', home: '/build/home', secrets: '/build/secrets.env' } as const;

/** Runs the step's command with the secrets file's variables exported: they reach Mix's environment, never argv nor the container's config. */
const WITH_SECRETS = ['sh', '-c', `set -a; . ${C.secrets}; set +a; exec "$@"`, 'with-secrets'];

const releaseOf = (job: BuildJob) => job.release ?? job.app;

/** releases/start_erl.data is `<erts version> <release version>`: a few bytes; larger is refused. */
export const MAX_START_ERL_BYTES = 4096;
const START_ERL: WantedFile = { path: 'releases/start_erl.data', maxBytes: MAX_START_ERL_BYTES };

/**
 * Pure: packs the release as the build user, from the work directory (its cwd, entered before
 * privileges drop, so no directory above it needs to be passable by that user; FACTS.md#tar-extract).
 * No setuid/setgid and no group/other write bits are stored. Owners are stored as 0:0, so a host
 * unpacking as root without --no-same-owner (deployer/commands/release.ts today) gets root-owned
 * files no other user may change, never files owned by whoever has the build user's uid there.
 */
export function tarCommand(workDir: string, releaseDir: string, tarball: string): Command {
  // gzip -1: 3–5x faster than tar's default -6 here, for a tarball ~7 % larger.
  const argv = ['tar', '--numeric-owner', '--owner=0', '--group=0', '--mode=go-w,a-s', '-C', relative(workDir, releaseDir), '--use-compress-program=gzip -1', '-cf', relative(workDir, tarball), '.'];
  return asBuildUser({ argv, cwd: workDir, label: 'tar release' });
}

/**
 * Pure: the cache keys and paths of a job. Every key names the app and the image digest (which pins
 * the target), so two apps never share an entry, even with identical lockfiles: a step running one
 * app's code writes only caches that app reads. deps/ further depends on the lockfile; _build also
 * on env, config and release. Entries live under `<cache>/mix/<app>/` (evicted by builder/eviction.ts).
 */
export function cacheLayout(p: CacheInput): CacheLayout {
  const { job } = p;
  const deps = `deps-${hash('deps', job.app, p.image.digest, p.source.lockHash)}`;
  const build = `build-${hash('build', job.app, p.image.digest, job.mixEnv, p.source.lockHash, p.source.configHash, releaseOf(job))}`;
  const dir = join(p.cacheDir, 'mix', job.app);
  const inputs = p.source.assetsInputs;
  const assets = job.assets && inputs && 'hash' in inputs
    ? assetsCacheKey({ app: job.app, imageDigest: p.image.digest, mixEnv: job.mixEnv, lockHash: p.source.lockHash, configHash: p.source.configHash, command: ASSETS_COMMAND, env: job.env ?? {}, patterns: job.assets.inputs, inputsHash: inputs.hash })
    : undefined;
  return {
    keys: { deps, build },
    paths: { deps: join(dir, deps), build: join(dir, build), depsFetched: join(dir, `${deps}.fetched.json`) },
    ...(assets ? { assets: { key: assets, path: join(dir, assets) } } : {}),
  };
}

/** Pure: how a step's disk use is bounded: the whole work directory (source, deps, _build, release, home). */
const diskLimit = (p: PlanInput): DiskLimit => ({ dir: p.workDir, maxBytes: p.limits.diskBytes, everyMs: DISK_CHECK_MS });

/** Pure: why Hex or rebar3 is missing, carried by the steps that run Mix (their failure names it). */
const toolProblems = (p: PlanInput) => (p.tools ? { toolProblems: p.tools.problems } : {});

/** Pure: the deps, compile and smoke containers. */
function containerSpecs(p: PlanInput, dirs: BuildPlan['dirs'], release: string): BuildPlan['containers'] {
  const env = {
    // The build's own environment first: the farm's variables below always win (their names are refused there anyway).
    ...(p.job.env ?? {}),
    HOME: C.home,
    MIX_HOME: `${C.home}/.mix`,
    HEX_HOME: `${C.home}/.hex`,
    MIX_ENV: p.job.mixEnv,
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    ERL_AFLAGS: '+sbwt none +sbwtdcpu none +sbwtdio none',
    ...mixToolsEnv(p.tools, p.mixTools),
  };
  const toolsBind = p.tools ? [`${p.tools.dir}:${TOOLS_MOUNT}:ro`] : [];
  const common = {
    image: p.image.pinned,
    ...sandboxed(p.limits),
    env,
    workdir: C.src,
    binds: [`${dirs.src}:${C.src}`, `${dirs.out}:${C.out}`, `${dirs.home}:${C.home}`, ...toolsBind],
    tmpfs: { '/tmp': 'rw,exec,size=512m' },
    output: { maxBytes: p.limits.maxOutputBytes, keepBytes: Math.min(p.limits.maxOutputBytes, p.keptOutputBytes ?? DEFAULT_KEPT_OUTPUT_BYTES) },
    timeoutMs: p.limits.stepTimeoutMs,
    labels: { 'org.xamal.job': p.jobId },
  } satisfies Omit<ContainerSpec, 'cmd' | 'networkMode'>;
  const labels = (step: string) => ({ ...common.labels, 'org.xamal.step': step });
  // The steps that fetch (deps, assets) reach the network as configured; the rest has none at all.
  // With secrets, only these two steps get them (a file bound read-only, sourced by the command).
  const fetching = {
    networkMode: p.depsNetwork,
    ...(p.depsNetwork === 'egress' ? { env: { ...env, ...proxyEnv() } } : {}),
    ...(p.secretsFile ? { binds: [...common.binds, `${p.secretsFile}:${C.secrets}:ro`] } : {}),
  };
  const cmd = (...argv: string[]) => (p.secretsFile ? [...WITH_SECRETS, ...argv] : argv);
  // git over ssh (a private dependency with the farm's deploy key) in deps only: its GIT_SSH_COMMAND reaches the worker's relay.
  const depsEnv = p.depsNetwork === 'egress' ? { env: { ...fetching.env, ...gitSshRelayEnv() } } : {};
  return {
    deps: { ...common, cmd: cmd('mix', 'deps.get'), ...fetching, ...depsEnv, labels: labels('deps') },
    // Phoenix's `assets.deploy` downloads its bundlers (esbuild, tailwind) and compiles the app as it needs.
    assets: { ...common, cmd: cmd(...ASSETS_COMMAND), ...fetching, labels: labels('assets') },
    // Compile and release with no network at all; --overwrite because without a TTY mix would
    // otherwise answer its own "Overwrite?" prompt with EOF and keep the old release (FACTS.md#mix-release).
    compile: { ...common, cmd: ['mix', 'release', release, '--overwrite', '--path', `${C.out}/${release}`], networkMode: 'none', labels: labels('compile') },
    smoke: {
      ...common,
      cmd: [`${C.out}/${release}/bin/${release}`, 'eval', `IO.puts("${SMOKE_MARKER}")`],
      env: { ...env, RELEASE_DISTRIBUTION: 'none', RELEASE_TMP: '/tmp' },
      networkMode: 'none',
      workdir: C.out,
      binds: [`${dirs.out}:${C.out}:ro`, `${dirs.home}:${C.home}`],
      labels: labels('smoke'),
    },
  };
}

/** The steps whose containers are started ahead, held at their gate: those with no network (no egress namespace to wait for). */
const HELD = ['compile', 'smoke'] as const;

/**
 * Pure: restore what the cache has, then deps — skipped when a deps step that succeeded ran with the
 * same mix.lock, mix.exs and image (deps/ is then what it fetched, restored from the cache or in the
 * source; the step is a container, ~1 s even with nothing to fetch) — and did not write a mix.lock of
 * its own (an unlocked project with a git dependency: that lock is not cached, so deps runs again).
 */
function prepareAndDeps(p: PlanInput, plan: Omit<BuildPlan, 'steps'>): BuildStep[] {
  const { dirs, cachePaths } = plan;
  const depsDir = join(dirs.src, 'deps');
  const marker = p.cache.depsMarker;
  // A source without mix.lock: only a marker that says the step wrote none (older markers do not say).
  const lockKept = p.source.hasLock === false ? marker?.lockWritten === false : !marker?.lockWritten;
  const skipDeps = marker !== undefined && marker.mixExs === p.source.mixExs && lockKept && (!marker.depsDir || p.cache.deps || p.source.hasDeps);
  // The offline steps' containers start beside everything before them (BENCHMARKS.md P1); their mounts exist from here on.
  const steps: BuildStep[] = [{ kind: 'mkdir', paths: [dirs.out, dirs.home] }, ...HELD.map((name) => ({ kind: 'hold-container', name, spec: plan.containers[name] }) satisfies BuildStep)];
  const prepare: BuildStep[] = [];
  if (p.cache.deps) prepare.push({ kind: 'restore-cache', what: 'deps', from: cachePaths.deps, into: depsDir });
  if (p.cache.build) prepare.push({ kind: 'restore-cache', what: '_build', from: cachePaths.build, into: join(dirs.src, '_build') });
  prepare.push({ kind: 'command', command: { argv: ['chown', '-R', `${BUILD_USER.uid}:${BUILD_USER.gid}`, p.workDir], label: 'chown workdir' } });
  // The first fetching step's egress namespace is opened beside the restores (it holds no files).
  const assetsRun = assetsDecision(p, plan).kind === 'run';
  const fetching = p.depsNetwork === 'egress' ? (!skipDeps ? plan.containers.deps : assetsRun ? plan.containers.assets : undefined) : undefined;
  steps.push(...(fetching ? [{ kind: 'parallel', branches: [prepare, [{ kind: 'open-egress', spec: fetching }]] } satisfies BuildStep] : prepare), { kind: 'phase', phase: 'deps' });
  if (p.secretsFile) steps.push({ kind: 'write-secrets', path: p.secretsFile });
  if (skipDeps) {
    return [...steps, { kind: 'skip', message: `==> deps: skipped (fetched before with this mix.lock, mix.exs and image; cache ${plan.cacheKeys.deps})` }];
  }
  return [
    ...steps,
    // The assets step's container starts beside deps, in the same namespace, its secrets file (if any) already written.
    ...(assetsRun ? [{ kind: 'hold-container', name: 'assets', spec: plan.containers.assets } satisfies BuildStep] : []),
    { kind: 'container', name: 'deps', spec: plan.containers.deps, disk: diskLimit(p), ...toolProblems(p), ...(p.depsNetwork === 'egress' ? { gitSsh: true as const } : {}) },
    // With an assets step after it, that step fetches in the same namespace and closes it.
    ...(assetsRun ? [] : closeEgress(p)),
    { kind: 'save-cache', from: depsDir, to: cachePaths.deps, replace: false },
    { kind: 'write-deps-marker', path: cachePaths.depsFetched, mixExs: p.source.mixExs, depsDir, ...(p.source.hasLock === false ? { lock: join(dirs.src, 'mix.lock') } : {}) },
  ];
}

/** What a build does about its assets step: none (no assets), run it (saying why when it might have been skipped; keeping its output), or skip it. */
type AssetsDecision = { kind: 'none' } | { kind: 'run'; note?: string; keep?: { key: string; path: string } } | { kind: 'skip'; key: string; path: string };

/**
 * Pure: the assets step is skipped only for a job that declares its inputs, when they could be
 * hashed and an earlier build of the app kept its output under the same key (CacheLayout `assets`);
 * without a declaration it always runs, as before.
 */
function assetsDecision(p: PlanInput, plan: Omit<BuildPlan, 'steps'>): AssetsDecision {
  if (!p.source.assets) return { kind: 'none' };
  if (!p.job.assets) return { kind: 'run' };
  const cache = plan.assetsCache;
  if (!cache) {
    const inputs = p.source.assetsInputs;
    return { kind: 'run', note: `==> assets: runs (its declared inputs could not be hashed: ${inputs && 'problem' in inputs ? inputs.problem : 'not looked at'})` };
  }
  if (p.cache.assets) return { kind: 'skip', ...cache };
  return { kind: 'run', note: `==> assets: runs (no output kept under its key ${cache.key} yet)`, keep: cache };
}

/**
 * Pure: the assets step, between deps and compile, for a project that builds assets the Phoenix
 * way; it reaches the network as deps does (its bundlers are downloads), and compile stays offline.
 * A project that declares its inputs gets the step's output (priv/static) kept under their key, and
 * the step skipped when that key was kept before: the output restored instead, and the changed
 * modules compiled by the compile step (`mix release` compiles first, offline).
 */
function assetsStep(p: PlanInput, plan: Omit<BuildPlan, 'steps'>): BuildStep[] {
  const d = assetsDecision(p, plan);
  if (d.kind === 'none') return [];
  const phase: BuildStep = { kind: 'phase', phase: 'assets' };
  const output = join(plan.dirs.src, ASSETS_OUTPUT);
  if (d.kind === 'skip') {
    const message = `==> assets: skipped (its inputs, command, image, mix.lock, config, MIX_ENV and environment are an earlier build's: cache ${d.key}); ${ASSETS_OUTPUT} restored from it, the app compiled by the compile step`;
    return [phase, { kind: 'skip', message }, { kind: 'restore-output', from: d.path, into: output, base: plan.dirs.src }];
  }
  return [
    phase,
    ...(d.note ? [{ kind: 'note', message: d.note } satisfies BuildStep] : []),
    { kind: 'container', name: 'assets', spec: plan.containers.assets, held: true, disk: diskLimit(p), ...toolProblems(p) },
    ...closeEgress(p),
    ...(d.keep ? [{ kind: 'save-cache', from: output, to: d.keep.path, replace: false, what: 'assets' } satisfies BuildStep] : []),
  ];
}

/** Pure: after the build's last fetching step, its egress namespace goes (nothing to close without egress). */
const closeEgress = (p: PlanInput): BuildStep[] => (p.depsNetwork === 'egress' ? [{ kind: 'close-egress' }] : []);

/**
 * Pure: compile (retried once under emulation: qemu-user very rarely crashes a BEAM, FACTS.md#emulation: 1 in
 * 27), then the smoke test beside everything that does not need its answer (BENCHMARKS.md P1): it
 * only reads the release (mounted read-only; it sees neither src/ nor the store), so the _build cache,
 * the tarball, the ELF scan and its checks, the SBOM and the upload of the tarball are done while it
 * runs. Nothing is published before it passes: the manifest (and the log, provenance and signature
 * beside it) only after the parallel step, and what a branch uploaded is deleted if any branch fails.
 */
function compileAndRelease(p: PlanInput, plan: Omit<BuildPlan, 'steps'>): BuildStep[] {
  const { dirs, artifact } = plan;
  const emulated = p.hostArch !== undefined && p.hostArch !== p.job.target.arch;
  const smoke: BuildStep = { kind: 'container', name: 'smoke', spec: plan.containers.smoke, held: true, disk: diskLimit(p), expect: { stdout: SMOKE_MARKER, failure: 'the release did not answer `eval` in its own image' } };
  return [
    // The secrets go once the steps that get them are done: compile and everything after never see them.
    ...(p.secretsFile ? [{ kind: 'remove', path: dirname(p.secretsFile) } satisfies BuildStep] : []),
    { kind: 'phase', phase: 'compile' },
    { kind: 'container', name: 'compile', spec: plan.containers.compile, held: true, disk: diskLimit(p), ...toolProblems(p), ...(emulated ? { retryOnce: 'emulation' } : {}) },
    { kind: 'phase', phase: 'release' },
    // Before tar packs it: out/<release> a real directory, no link out of it, no special file.
    { kind: 'check-tree', base: p.workDir, dir: dirs.releaseDir, what: 'release' },
    {
      kind: 'parallel',
      branches: [[smoke], packAndUpload(p, plan), [{ kind: 'save-cache', from: join(dirs.src, '_build'), to: plan.cachePaths.build, replace: true }]],
      removeOnFailure: [artifact.tarballKey, artifact.sha256Key, artifact.sbomKey],
    },
  ];
}

/** Pure: pack, scan and check the release, its SBOM, and the tarball's upload (nothing that makes it visible). */
function packAndUpload(p: PlanInput, plan: Omit<BuildPlan, 'steps'>): BuildStep[] {
  const { artifact, dirs } = plan;
  return [
    { kind: 'pack', command: tarCommand(p.workDir, dirs.releaseDir, dirs.tarball), tarball: dirs.tarball, wanted: START_ERL },
    { kind: 'phase', phase: 'scan' },
    { kind: 'check-scan', ...(p.job.target.libc === 'gnu' ? { glibcFloor: p.job.target.libcVersion } : {}) },
    { kind: 'read-release-version', maxBytes: START_ERL.maxBytes },
    // Only the smoke container runs beside it, and it has no src/: nothing changes src/ while it is read.
    { kind: 'sbom', base: p.workDir, src: dirs.src, key: artifact.sbomKey },
    { kind: 'phase', phase: 'upload' },
    { kind: 'upload', file: dirs.tarball, key: artifact.tarballKey, sha256Key: artifact.sha256Key, fileName: artifact.fileName },
  ];
}

/** Pure: once the smoke test passed and the tarball is stored: sign and publish, manifest last, then clean up. */
function publishAndClean(p: PlanInput, plan: Omit<BuildPlan, 'steps'>): BuildStep[] {
  const { artifact } = plan;
  return [
    { kind: 'publish', logKey: artifact.logKey, provenanceKey: artifact.provenanceKey, signatureKey: artifact.signatureKey, manifestKey: artifact.manifestKey },
    // The work directory goes before `done` is reported.
    { kind: 'remove', path: p.workDir },
    { kind: 'phase', phase: 'done' },
  ];
}

/**
 * Pure: everything a build does once its source is in place, as data — image, container specs,
 * cache keys, artifact keys, limits, and the ordered steps with every decision taken (deps skipped
 * or run, caches restored and saved, compile retried, checks). The applier only carries it out.
 */
export function planBuild(p: PlanInput): BuildPlan {
  const { job } = p;
  if (job.target.os !== 'linux') {
    throw new XamalError('unsupported', `target os ${job.target.os}: the farm builds linux targets only (${formatTarget(job.target)})`);
  }
  const linked = p.source.linkedDirs[0];
  if (linked) throw new XamalError('build_failed', `source: ${linked} is a symbolic link; deps and _build must be directories (the cache is never restored through a link)`);
  const release = releaseOf(job);
  const version = sourceVersion(job.source);
  const ref: ArtifactRef = { app: job.app, version, target: job.target, mixEnv: job.mixEnv, release };
  const fileName = artifactFileName(ref);
  const dirs = {
    src: join(p.workDir, 'src'),
    out: join(p.workDir, 'out'),
    home: join(p.workDir, 'home'),
    releaseDir: join(p.workDir, 'out', release),
    tarball: join(p.workDir, fileName),
  };
  const layout = cacheLayout(p);
  const plan = {
    job,
    jobId: p.jobId,
    image: { ref: p.image.ref, digest: p.image.digest },
    release,
    artifact: { ...ref, tarballKey: artifactKey(ref), sha256Key: artifactSha256Key(ref), manifestKey: artifactManifestKey(ref), sbomKey: artifactSbomKey(ref), provenanceKey: artifactProvenanceKey(ref), signatureKey: artifactSignatureKey(ref), logKey: buildLogKey(p.jobId), fileName },
    cacheKeys: layout.keys,
    cachePaths: layout.paths,
    ...(layout.assets ? { assetsCache: layout.assets } : {}),
    dirs,
    containers: containerSpecs(p, dirs, release),
  };
  return { ...plan, steps: [...prepareAndDeps(p, plan), ...assetsStep(p, plan), ...compileAndRelease(p, plan), ...publishAndClean(p, plan)] };
}

/** What the build learnt that the plan could not know. */
export interface BuiltRelease {
  releaseVersion: string;
  scan: { glibcNeeded: string | undefined; sonames: string[] };
  tarball: { sha256: string; size: number };
  timings: Record<string, number>;
  builtAt: string;
  /** The signed provenance and the SBOM beside the manifest, pinned by their sha256. */
  attestations?: Manifest['attestations'];
}

/** Pure: the artifact's manifest.json. */
export function assembleManifest(plan: BuildPlan, built: BuiltRelease): Manifest {
  const { job, artifact } = plan;
  return {
    schema: 1,
    app: job.app,
    release: plan.release,
    releaseVersion: built.releaseVersion,
    version: artifact.version,
    ...(job.source.commit ? { commit: job.source.commit } : {}),
    tuple: formatTarget(job.target),
    mixEnv: job.mixEnv,
    tarball: { key: artifact.tarballKey, sha256: built.tarball.sha256, size: built.tarball.size },
    image: plan.image,
    cacheKeys: plan.cacheKeys,
    ...(built.scan.glibcNeeded ? { glibcNeeded: built.scan.glibcNeeded } : {}),
    sonames: built.scan.sonames,
    timings: built.timings,
    logKey: artifact.logKey,
    builtAt: built.builtAt,
    jobId: plan.jobId,
    ...(built.attestations ? { attestations: built.attestations } : {}),
  };
}
