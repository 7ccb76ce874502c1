import { createHash, randomUUID } from 'node:crypto';
import { constants, existsSync, lstatSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { branchLog, type BranchLog } from './branch-log.ts';
import { formatTarget, isXamalError, runChecked, shellQuote, timed, XamalError, type Arch, type CappedRead, type Executor } from '../core/index.ts';
import { buildJobId, type BuildJob, type BuildPhase } from '../core/contracts/build-job.ts';
import { openSecrets, secretRedactor, type BuildSecrets } from '../core/contracts/build-settings.ts';
import type { GitDeployKeys, GitRemoteEnv } from '../core/contracts/git-credentials.ts';
import { PublishedManifestSchema, type Manifest } from '../core/contracts/manifest.ts';
import { IN_TOTO_PAYLOAD_TYPE, MANIFEST_PAYLOAD_TYPE } from '../core/contracts/attestation.ts';
import { signEnvelope } from '../core/signing.ts';
import { storedArtifact } from '../store/artifact-index.ts';
import type { ObjectStore } from '../store/store.ts';
import { usableImages } from '../images/catalog.ts';
import type { LockFile } from '../images/lock.ts';
import { cappedLog, type CappedLog } from './build-log.ts';
import { readCacheFacts, readSourceFile, restoreCache, restoreOutput, saveCache, sourceHashes, writeDepsMarker } from './cache.ts';
import { hashAssetsInputs } from './assets-cache.ts';
import { BAD_START_ERL, checkScan, containerFailure, diskFailure, NO_START_ERL, releaseVersionOf, scanSummary } from './checks.ts';
import { watchDisk } from './disk.ts';
import { refuseUnlessRealDirectory, refuseUnsafeTree } from './links.ts';
import type { ContainerResult, ContainerSpec, DockerEngine, HeldContainer } from './docker.ts';
import { openEgressNamespace, runStepContainer, type EgressNamespace } from './step-container.ts';
import { RELAY_PORT, startGitSshRelay, type GitSshRelay, type RelayScope } from './git-ssh-relay.ts';
import { scanReleaseArchive, type ReleaseScan } from './elf.ts';
import { readWhileWritten } from './growing-file.ts';
import { ensurePinnedImage, type UpstreamDigest } from './images/ensure.ts';
import type { ImagePreparer } from './images/prepare.ts';
import type { EgressProxy } from './egress.ts';
import { assembleManifest, cacheLayout, planBuild, type BuildLimits, type DepsNetwork, type BuildPlan, type BuildStep, type PlanInput } from './plan.ts';
import { mirrorPath, prepareSource } from './source.ts';
import { lockEntries, readProjectLock, type LockedDep } from './mix-lock.ts';
import type { ReleaseContents } from './release-contents.ts';
import { releaseSbom } from './sbom.ts';
import { BUILD_USER } from './build-user.ts';
import { ensureDerivedImage } from './derived-image.ts';
import { ensureMixTools, type MixTools, type MixToolsSettings } from './mix-tools.ts';
import type { CacheKeeper } from './cache-use.ts';
import { provenanceStatement, type ArtifactSigner } from './provenance.ts';

export interface BuildDeps {
  docker: DockerEngine;
  exec: Executor;
  store: ObjectStore;
  locks: () => Promise<LockFile[]>;
  cacheDir: string;
  /** Parent of per-job scratch directories. */
  workRoot: string;
  limits: BuildLimits;
  depsNetwork: DepsNetwork;
  /** The way out for steps planned with network `egress` (builder/egress.ts). */
  egress?: EgressProxy;
  /** This machine's arch: builds for any other run under qemu, whose rare crashes get one retry. */
  hostArch?: Arch;
  /** A job's log is cut (with a marker line) beyond this many bytes (XAMAL_MAX_LOG_BYTES, default 4 MiB). */
  maxLogBytes?: number;
  /** Marks the cache entries a build uses, so eviction leaves them (builder/cache-use.ts), and sweeps the cache after each build. */
  cacheKeeper?: CacheKeeper;
  /** Prepares a builder the catalog names but no lock holds yet (builder/images/prepare.ts); absent: such a job fails. */
  prepareImage?: ImagePreparer;
  /** What a hexpm tag resolves to upstream now, checked before its pinned image is pulled (a moved tag is refused). */
  upstreamDigest?: UpstreamDigest;
  /** Where Hex and rebar3 come from (builder/mix-tools.ts); absent: builds have neither. */
  mixTools?: MixToolsSettings;
  /** The farm's credentials for private git repositories, by URL (XAMAL_GIT_CREDENTIALS_FILE). */
  gitRemoteEnv?: GitRemoteEnv;
  /** The farm's ssh deploy keys (XAMAL_GIT_CREDENTIALS_FILE), for the deps step's git dependencies over ssh (builder/git-ssh-relay.ts). */
  gitDeployKeys?: GitDeployKeys;
  /** Opens a job's sealed secrets (core/contracts/build-settings.ts); absent: a job with secrets fails, naming the setting. */
  secretsKey?: Buffer;
  /** Where a job's extra Debian packages come from (XAMAL_APT_MIRROR_DIR); absent: Debian's archive through the egress proxy. */
  aptMirrorDir?: string;
  /** Signs each artifact's provenance and manifest (XAMAL_SIGNING_KEY_FILE; builder/provenance.ts). */
  signer: ArtifactSigner;
}

export const DEFAULT_MAX_LOG_BYTES = 4 * 1024 * 1024;

/** tmpfs on Linux: a build's secrets file is never written to disk. */
const SECRETS_ROOT = '/dev/shm';

export interface BuildHooks {
  phase(phase: BuildPhase): Promise<void> | void;
  log(line: string): Promise<void> | void;
}

export interface BuildOutcome {
  manifest: Manifest;
  manifestKey: string;
  cached: boolean;
}

/** The pinned builder image whose tuple is the job's target. */
/** The pinned builder image of the job's tuple, if a lock holds one. */
function findImage(locks: LockFile[], job: BuildJob) {
  const tuple = formatTarget(job.target);
  return usableImages(locks).find((i) => i.flavour === 'builder' && i.tuple === tuple && i.arch === job.target.arch);
}

export async function imageForTarget(locks: LockFile[], job: BuildJob) {
  const tuple = formatTarget(job.target);
  const images = usableImages(locks).filter((i) => i.flavour === 'builder');
  const match = findImage(locks, job);
  if (!match) {
    const have = images.map((i) => i.tuple).filter(Boolean);
    throw new XamalError('unsupported', `no pinned builder image for ${tuple}${have.length ? `; pinned: ${[...new Set(have)].join(', ')}` : ''}`);
  }
  return match;
}

/** One job's run: what the steps use and what they learn. */
interface Run {
  deps: BuildDeps;
  hooks: BuildHooks;
  signal: AbortSignal | undefined;
  plan: BuildPlan;
  log: CappedLog;
  say: (line: string) => Promise<void>;
  /** Runs branches side by side, their lines in plan order (builder/branch-log.ts). */
  sideBySide: BranchLog['allSettled'];
  timings: Record<string, number>;
  /** The job's secrets, opened: written for the deps and assets steps only. */
  secrets?: BuildSecrets;
  /** Cuts the secrets' values from text (every line the build prints, every step's output). */
  redact: (text: string) => string;
  learnt: Learnt;
  /** The repositories the deps step's git over ssh may fetch. */
  relayScope: RelayScope;
  /** When the build started (ISO time): its provenance says so. */
  startedOn: string;
  /** The network namespace of the build's fetching steps, opened by the first of them (closed by `close-egress` or at the end). */
  egressNs?: Promise<EgressNamespace>;
  /** Namespaces being closed and containers being removed beside the next steps; the build awaits them before it ends. */
  closing: Promise<void>[];
  /** Containers started ahead for later container steps (`hold-container`), by step name, until that step takes it. */
  held: Map<string, Promise<HeldContainer>>;
}

/** What the steps of a run learn, for the later steps. */
export interface Learnt {
  scan?: ReleaseScan;
  startErl?: CappedRead;
  /** The applications and ERTS the tarball ships (the scan's). */
  contents?: ReleaseContents;
  tarball?: { sha256: string; size: number };
  releaseVersion?: string;
  manifest?: Manifest;
  /** The source's git tree hash (a git source) and mix.lock's sha256 (when it has one), for the provenance. */
  source?: { tree?: string; lockSha256?: string };
  /** The SBOM a step stored beside the artifact (its key and the sha256 of its bytes). */
  sbom?: { key: string; sha256: string };
}

function fail(message: string, log: CappedLog): XamalError {
  return new XamalError('build_failed', `${message}\n--- log tail ---\n${log.tail(30)}`);
}

/** A value an earlier step of the plan learnt (the planner orders the steps so it is there). */
function learnt<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new XamalError('internal', `build plan: ${what} is used before a step learnt it`);
  return value;
}

async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  for await (const chunk of fh.createReadStream()) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/** Removes the work directories earlier attempts of this job left (a worker killed mid-build). */
async function removeStaleWorkDirs(workRoot: string, jobId: string): Promise<void> {
  await mkdir(workRoot, { recursive: true });
  for (const stale of (await readdir(workRoot)).filter((d) => d.startsWith(`${jobId}-`))) {
    await rm(join(workRoot, stale), { recursive: true, force: true });
  }
}

/**
 * Runs a step's container while its work directory is measured: past the plan's disk limit the
 * container is killed. Resolves with the result and, when the limit was passed, the bytes found.
 */
async function runMeasured(r: Run, step: Extract<BuildStep, { kind: 'container' }>, problems: string[]): Promise<{ result: ContainerResult; diskBytes?: number }> {
  const { spec } = step;
  const relay = await gitSshRelayFor(r, step);
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  r.signal?.addEventListener('abort', onAbort, { once: true });
  const watch = watchDisk(step.disk, () => stop.abort());
  try {
    const ns = spec.networkMode === 'egress' ? await egressNamespace(r, spec) : undefined;
    // The exited container is removed beside the next steps; the build awaits that before it ends.
    const deferRemoval = (removing: Promise<void>) => void r.closing.push(removing);
    // A held container has no relay of its own to add (the plan holds none that needs one).
    const held = step.held && !relay ? await takeHeld(r, step.name) : undefined;
    const result = held
      ? await held.run(stop.signal, { deferRemoval })
      : await runStepContainer(r.deps.docker, r.deps.egress, spec, stop.signal, relay ? [{ port: RELAY_PORT, socket: relay.socket }] : [], ns, { deferRemoval });
    const diskBytes = await watch.stop();
    return { result, ...(diskBytes !== undefined ? { diskBytes } : {}) };
  } finally {
    await watch.stop().catch(() => undefined);
    r.signal?.removeEventListener('abort', onAbort);
    if (relay) problems.push(...relay.problems);
    await relay?.stop();
  }
}

/** The container a `hold-container` step started for step `name`, taken once; none if it could not be started (the step then starts its own). */
async function takeHeld(r: Run, name: string): Promise<HeldContainer | undefined> {
  const held = r.held.get(name);
  r.held.delete(name);
  return held?.catch(() => undefined);
}

/** Removes every held container no step took (a build that failed or was cancelled before it). */
async function discardHeld(r: Run): Promise<void> {
  const left = [...r.held.values()];
  r.held.clear();
  await Promise.all(left.map(async (held) => (await held.catch(() => undefined))?.discard()));
}

/** The build's egress namespace, opened for the first fetching step (a failed opening is tried again by the next). */
function egressNamespace(r: Run, spec: ContainerSpec): Promise<EgressNamespace> {
  r.egressNs ??= openEgressNamespace(r.deps.docker, r.deps.egress, spec).catch((err: unknown) => {
    r.egressNs = undefined;
    throw err;
  });
  return r.egressNs;
}

/** Closes the build's egress namespace, if a step opened one. */
async function closeEgress(r: Run): Promise<void> {
  const ns = r.egressNs;
  r.egressNs = undefined;
  await (await ns?.catch(() => undefined))?.close().catch(() => undefined);
}

/**
 * The `close-egress` step: the namespace's way out (socat) goes at once, its sidecar is removed
 * beside the next steps (none of them has network), and the build awaits that before it ends.
 */
async function closeEgressStep(r: Run): Promise<void> {
  r.closing.push(closeEgress(r));
}

/** The worker's git-over-ssh relay for a step the plan gives it (deps, through the egress proxy): the farm's deploy keys never enter the container. */
async function gitSshRelayFor(r: Run, step: Extract<BuildStep, { kind: 'container' }>): Promise<GitSshRelay | undefined> {
  const { egress } = r.deps;
  if (!step.gitSsh || !egress) return undefined;
  return startGitSshRelay({ keys: r.deps.gitDeployKeys, scope: r.relayScope, allows: (h, p) => egress.allows(h, p), proxyCommand: await egress.sshProxyCommand(), say: r.say });
}

/** Runs a container step; a failed one throws (`cancelled`, `external` when killed from outside, or `build_failed` with the log's tail). */
async function runContainer(r: Run, step: Extract<BuildStep, { kind: 'container' }>): Promise<void> {
  const { name, spec } = step;
  await r.say(`==> ${name}: ${spec.cmd.join(' ')} (network ${spec.networkMode})`);
  if (r.signal?.aborted) throw new XamalError('cancelled', `build cancelled before ${name}`);
  const sshProblems: string[] = [];
  const measured = await timed(r.timings, name, () => runMeasured(r, step, sshProblems));
  const { diskBytes } = measured;
  // A secret the step printed is cut before anything reads the output (log, diagnosis, error).
  const result = r.secrets ? { ...measured.result, stdout: r.redact(measured.result.stdout), stderr: r.redact(measured.result.stderr) } : measured.result;
  if (result.stdout) await r.say(result.stdout.trimEnd());
  if (result.stderr) await r.say(result.stderr.trimEnd());
  if (diskBytes !== undefined && !r.signal?.aborted) throw fail(diskFailure(step, diskBytes), r.log);
  const failure = containerFailure(step, result, sshProblems);
  if (failure?.code === 'build_failed') throw fail(failure.message, r.log);
  if (failure) throw new XamalError(failure.code, failure.message);
}

/** A container step, run once more after a build failure when the plan says so (emulation). */
async function runContainerStep(r: Run, step: Extract<BuildStep, { kind: 'container' }>): Promise<void> {
  try {
    await runContainer(r, step);
  } catch (err) {
    if (!step.retryOnce || !isXamalError(err) || err.code !== 'build_failed' || r.signal?.aborted) throw err;
    await r.say(`==> ${step.name} failed under emulation; retrying once`);
    await runContainer(r, { ...step, name: `${step.name} (retry)` });
  }
}

/**
 * Branches side by side, each in order, their log lines in plan order; the first failed one (in plan order) fails the step, after all
 * have settled and what they may have stored (`removeOnFailure`) is deleted. A deletion that fails is
 * logged: with no manifest the objects are never listed nor served, and the job's next build replaces them.
 */
async function runParallel(r: Run, step: StepOf<'parallel'>): Promise<void> {
  const settled = await r.sideBySide(step.branches.map((steps) => () => runSteps(r, steps)));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (!failed) return;
  for (const key of step.removeOnFailure ?? []) {
    await r.deps.store.delete(key).catch((err: unknown) => r.say(`==> could not remove ${key} after the failure: ${(err as Error).message}`));
  }
  throw failed.reason;
}

/** The manifest as its schema parses it: a string the build produced (a soname, a version) that it refuses fails the build. */
function checkedManifest(manifest: Manifest, log: CappedLog): Manifest {
  const parsed = PublishedManifestSchema.safeParse(manifest);
  if (parsed.success) return parsed.data;
  const where = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw fail(`the manifest is invalid, nothing was published:\n${where.join('\n')}`, log);
}

const sha256Of = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

/** Stores the artifact's signed provenance; resolves with its key and the sha256 of the stored bytes. */
async function publishProvenance(r: Run, step: StepOf<'publish'>, log: string): Promise<{ key: string; sha256: string }> {
  const statement = provenanceStatement({
    plan: r.plan,
    tarball: learnt(r.learnt.tarball, 'the tarball'),
    source: r.learnt.source ?? {},
    secretNames: Object.keys(r.secrets ?? {}),
    timings: r.timings,
    log: { key: step.logKey, sha256: sha256Of(log) },
    startedOn: r.startedOn,
    finishedOn: new Date().toISOString(),
    builder: r.deps.signer,
  });
  const envelope = JSON.stringify(signEnvelope(r.deps.signer.key.privateKey, IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement))));
  await r.deps.store.put(step.provenanceKey, envelope, 'application/json');
  return { key: step.provenanceKey, sha256: sha256Of(envelope) };
}

/**
 * The log, the signed provenance, the manifest's signature, and last the manifest itself: its
 * presence means the artifact and everything beside it are complete. The signature covers the
 * manifest's exact bytes, which pin the tarball, the provenance and the SBOM by sha256.
 */
async function publish(r: Run, step: StepOf<'publish'>): Promise<void> {
  const { learnt: l } = r;
  const built = {
    releaseVersion: learnt(l.releaseVersion, 'the release version'),
    scan: learnt(l.scan, 'the scan'),
    tarball: learnt(l.tarball, 'the tarball'),
    timings: r.timings,
    builtAt: new Date().toISOString(),
  };
  // Checked before anything is stored: a string the build produced that the schema refuses publishes nothing.
  checkedManifest(assembleManifest(r.plan, built), r.log);
  const log = r.log.text();
  await r.deps.store.put(step.logKey, log, 'text/plain');
  const provenance = await publishProvenance(r, step, log);
  const manifest = checkedManifest(assembleManifest(r.plan, { ...built, attestations: { provenance, ...(l.sbom ? { sbom: l.sbom } : {}) } }), r.log);
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2));
  await r.deps.store.put(step.signatureKey, JSON.stringify(signEnvelope(r.deps.signer.key.privateKey, MANIFEST_PAYLOAD_TYPE, bytes)), 'application/json');
  // Last: the manifest makes the artifact visible.
  await r.deps.store.put(step.manifestKey, bytes, 'application/json');
  l.manifest = manifest;
}

type StepOf<K extends BuildStep['kind']> = Extract<BuildStep, { kind: K }>;

/**
 * The release's SBOM from what the farm read (the tarball's folders, the project's mix.lock), stored
 * at the step's key; the manifest pins it by the sha256 of exactly these bytes.
 */
async function writeSbom(r: Run, s: StepOf<'sbom'>): Promise<void> {
  const contents = learnt(r.learnt.contents, 'the release contents');
  if (contents.overflow) throw fail(`sbom: the release has more folders under lib/ than the ${contents.apps.length} the scan keeps`, r.log);
  for (const f of contents.unknown) await r.say(`==> sbom: ${f} is not an application folder (<app>-<version>); not listed`);
  let lock: LockedDep[] | undefined;
  try {
    lock = await readProjectLock(s.base, s.src);
  } catch (err) {
    throw isXamalError(err) && err.code === 'build_failed' ? fail(err.message, r.log) : err;
  }
  const { job, artifact } = r.plan;
  const bytes = Buffer.from(
    releaseSbom({
      app: job.app,
      release: r.plan.release,
      releaseVersion: learnt(r.learnt.releaseVersion, 'the release version'),
      version: artifact.version,
      tuple: formatTarget(job.target),
      mixEnv: job.mixEnv,
      otp: job.target.otp,
      elixir: job.target.elixir,
      tarball: { fileName: artifact.fileName, sha256: learnt(r.learnt.tarball, 'the tarball').sha256 },
      contents,
      lock,
      timestamp: new Date(),
      serialNumber: `urn:uuid:${randomUUID()}`,
      tool: { name: 'xamal', version: r.deps.signer.xamalVersion },
    }),
    'utf8',
  );
  await r.deps.store.put(s.key, bytes, 'application/vnd.cyclonedx+json');
  r.learnt.sbom = { key: s.key, sha256: sha256Of(bytes) };
  const n = (count: number, what: string) => `${count} ${what}${count === 1 ? '' : 's'}`;
  const erts = contents.erts.length ? `, ERTS ${contents.erts.join(', ')}` : '';
  await r.say(`==> sbom: ${n(contents.apps.length, 'application')}${erts}, ${lock ? `${n(lock.length, 'package')} from mix.lock` : 'no mix.lock'}: ${s.key}`);
}

/** How each kind of step is carried out. */
const STEPS: { [K in BuildStep['kind']]: (r: Run, step: StepOf<K>) => Promise<void> } = {
  phase: async (r, s) => void (await r.hooks.phase(s.phase)),
  mkdir: async (_r, s) => {
    for (const p of s.paths) await mkdir(p, { recursive: true });
  },
  'restore-cache': async (r, s) => {
    await r.say(`cache hit: ${s.what} from ${s.from}`);
    await timed(r.timings, `restore ${s.what}`, () => restoreCache(r.deps.exec, s.from, s.into, `restore ${s.what}`));
  },
  command: async (r, s) => void (await runChecked(r.deps.exec, s.command)),
  skip: (r, s) => r.say(s.message),
  note: (r, s) => r.say(s.message),
  'restore-output': async (r, s) => {
    await r.say(`cache hit: ${relative(s.base, s.into)} from ${s.from}`);
    await timed(r.timings, 'restore assets', () => restoreOutput(r.deps.exec, s.from, s.into, s.base, 'restore assets'));
  },
  container: runContainerStep,
  'save-cache': (r, s) => timed(r.timings, `save ${s.what ?? basename(s.from)}`, () => saveCache(r.deps.exec, s.from, s.to, s.replace)),
  'close-egress': closeEgressStep,
  'open-egress': async (r, s) => void (await egressNamespace(r, s.spec)),
  'hold-container': async (r, s) => {
    const { spec } = s;
    const held = spec.networkMode === 'egress' ? egressNamespace(r, spec).then((ns) => r.deps.docker.startHeld({ ...spec, networkMode: `container:${ns.id}` })) : r.deps.docker.startHeld(spec);
    held.catch(() => undefined); // a hold that failed leaves its step a fresh container
    r.held.set(s.name, held);
  },
  'write-secrets': (r, s) => writeSecretsFile(s.path, r.secrets ?? {}),
  'write-deps-marker': (_r, s) => writeDepsMarker(s.path, { mixExs: s.mixExs, depsDir: existsSync(s.depsDir), ...(s.lock ? { lockWritten: existsSync(s.lock) } : {}) }),
  parallel: runParallel,
  'check-tree': async (r, s) => {
    // Nothing there at all after a step that exited 0: mix release always writes it, so the step was
    // stopped from outside (a dockerd shutting down sends SIGTERM, which a BEAM answers with exit 0).
    if (!lstatSync(s.dir, { throwIfNoEntry: false })) {
      throw new XamalError('external', `${s.what}: ${relative(s.base, s.dir)} does not exist although the step exited 0 (stopped from outside, e.g. by the engine); the build is retried`);
    }
    try {
      await refuseUnlessRealDirectory(s.base, s.dir, s.what);
      await refuseUnsafeTree(s.dir, s.what);
    } catch (err) {
      throw isXamalError(err) && err.code === 'build_failed' ? fail(err.message, r.log) : err;
    }
  },
  pack: async (r, s) => {
    const packing = timed(r.timings, 'tar', () => runChecked(r.deps.exec, s.command));
    const scanning = timed(r.timings, 'scan', () => scanReleaseArchive(readWhileWritten(s.tarball, packing), s.wanted));
    // Both settle before either's failure is thrown (tar's first): no tar goes on writing after the step.
    const [packed, scanned] = await Promise.allSettled([packing, scanning]);
    if (packed.status === 'rejected') throw packed.reason;
    if (scanned.status === 'rejected') throw scanned.reason;
    const { scan, wanted, contents, archive } = scanned.value;
    r.learnt.scan = scan;
    r.learnt.startErl = wanted;
    r.learnt.contents = contents;
    // Every byte tar wrote went through the scan's hash; the file's size says so, else it is hashed again.
    const { size } = await lstat(s.tarball);
    r.learnt.tarball = size === archive.size ? archive : await sha256File(s.tarball);
  },
  'check-scan': async (r, s) => {
    const scan = learnt(r.learnt.scan, 'the scan');
    await r.say(scanSummary(scan));
    const refused = checkScan(s, scan);
    if (refused) throw fail(refused, r.log);
  },
  'read-release-version': async (r, s) => {
    const read = learnt(r.learnt.startErl, 'start_erl.data');
    if (read.kind === 'missing') throw fail(NO_START_ERL, r.log);
    if (read.kind === 'refused') throw fail(`release: releases/start_erl.data ${read.why}; it is read only as a regular file of at most ${s.maxBytes} bytes`, r.log);
    const version = releaseVersionOf(read.data.toString('utf8'));
    if (!version) throw fail(BAD_START_ERL, r.log);
    r.learnt.releaseVersion = version;
  },
  sbom: (r, s) => timed(r.timings, 'sbom', () => writeSbom(r, s)),
  upload: (r, s) =>
    timed(r.timings, 'upload', async () => {
      await r.deps.store.putFile(s.key, s.file, 'application/gzip');
      await r.deps.store.put(s.sha256Key, `${learnt(r.learnt.tarball, 'the tarball').sha256}  ${s.fileName}\n`, 'text/plain');
    }),
  publish,
  remove: (_r, s) => rm(s.path, { recursive: true, force: true }),
};

/**
 * The secrets as `NAME='value'` lines a shell sources, in a directory of their own (root's, 0700)
 * on tmpfs, the file the build user's alone (0400): bound read-only into the steps that get them.
 */
async function writeSecretsFile(path: string, secrets: BuildSecrets): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o400);
  try {
    await fh.writeFile(Object.entries(secrets).map(([k, v]) => `${k}=${shellQuote(v)}\n`).join(''));
    await fh.chown(BUILD_USER.uid, BUILD_USER.gid);
  } finally {
    await fh.close();
  }
}

async function runSteps(r: Run, steps: BuildStep[]): Promise<void> {
  for (const step of steps) await (STEPS[step.kind] as (r: Run, s: BuildStep) => Promise<void>)(r, step);
}

/**
 * The project builds assets the Phoenix way: an assets/ directory and mix.exs naming `assets.deploy`
 * (read only as a regular file, never through a link).
 */
async function buildsAssets(src: string): Promise<boolean> {
  if (!lstatSync(join(src, 'assets'), { throwIfNoEntry: false })?.isDirectory()) return false;
  const fh = await open(join(src, 'mix.exs'), constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
  if (!fh) return false;
  try {
    return (await fh.stat()).isFile() && (await fh.readFile('utf8')).includes('assets.deploy');
  } finally {
    await fh.close();
  }
}

/** Facts of the unpacked source and the cache (its entries held first, `hold`), then the plan. */
async function planJob(input: Omit<PlanInput, 'source' | 'cache'>, hold: (paths: string[]) => Promise<void>): Promise<BuildPlan> {
  const src = join(input.workDir, 'src');
  if (!existsSync(join(src, 'mix.exs'))) throw new XamalError('build_failed', 'the source has no mix.exs at its root');
  const hashes = await sourceHashes(src);
  const linkedDirs = (['deps', '_build'] as const).filter((d) => lstatSync(join(src, d), { throwIfNoEntry: false })?.isSymbolicLink());
  const assets = await buildsAssets(src);
  // Declared assets inputs are hashed from the checkout as it is, before any of the build's code runs.
  const assetsInputs = assets && input.job.assets ? { assetsInputs: await hashAssetsInputs(src, input.job.assets.inputs) } : {};
  const source = { ...hashes, hasDeps: existsSync(join(src, 'deps')), hasLock: existsSync(join(src, 'mix.lock')), linkedDirs, assets, ...assetsInputs };
  const layout = cacheLayout({ ...input, source });
  const { paths } = layout;
  await hold([paths.deps, paths.build, ...(layout.assets ? [layout.assets.path] : [])]);
  const cache = await readCacheFacts({ ...paths, ...(layout.assets ? { assets: layout.assets.path } : {}) });
  return planBuild({ ...input, source, cache });
}

/**
 * The source's mix.lock as checked out, before any of the build's code runs: its sha256 (read as the
 * cache keys read it) for the provenance, and the git URLs it names, the only repositories the deps
 * step's git over ssh may fetch (builder/git-ssh-relay.ts), or why there are none.
 */
async function sourceLock(workDir: string): Promise<{ source: { lockSha256?: string }; locked: RelayScope['locked'] }> {
  const src = join(workDir, 'src');
  const path = join(src, 'mix.lock');
  if (!lstatSync(path, { throwIfNoEntry: false })) return { source: {}, locked: { none: 'the project has no mix.lock' } };
  const bytes = await readSourceFile(src, path);
  let locked: RelayScope['locked'];
  try {
    locked = lockEntries(bytes).flatMap((d) => (d.scm === 'git' ? [d.url] : []));
  } catch (err) {
    if (!isXamalError(err) || err.code !== 'validation') throw err;
    locked = { none: `mix.lock cannot be read (${err.message})` };
  }
  return { source: { lockSha256: sha256Of(bytes) }, locked };
}

/**
 * Hex and rebar3 for a project with a mix.lock (one that has dependencies), when the farm says where
 * they come from; a project without one builds without them.
 */
async function mixToolsFor(deps: BuildDeps, image: { pinned: string; digest: string }, workDir: string, timings: Record<string, number>, say: (line: string) => Promise<void>): Promise<{ tools?: MixTools }> {
  if (!deps.mixTools || !existsSync(join(workDir, 'src', 'mix.lock'))) return {};
  const settings = deps.mixTools;
  return { tools: await timed(timings, 'tools', () => ensureMixTools(deps, settings, image, workDir, say)) };
}

/** The builder with the job's extra Debian packages (phase `image`; made once per builder and list, builder/derived-image.ts). */
async function withPackages(deps: BuildDeps, base: { pinned: string; digest: string }, packages: string[], timings: Record<string, number>, hooks: BuildHooks, say: (line: string) => Promise<void>) {
  await hooks.phase('image');
  return timed(timings, 'packages', () => ensureDerivedImage(deps, base, packages, say));
}

/** Removes what earlier attempts of this job left: containers (a worker that died mid-build), then work directories. */
async function removeLeftovers(deps: BuildDeps, jobId: string, say: (line: string) => Promise<void>): Promise<void> {
  for (const id of await deps.docker.containersWithLabel('org.xamal.job', jobId)) {
    await deps.docker.removeContainer(id);
    await say(`removed container ${id.slice(0, 12)} left by an earlier attempt`);
  }
  await removeStaleWorkDirs(deps.workRoot, jobId);
}

/**
 * Runs one build job: source, deps (network as configured), compile + release (no network), smoke
 * test, ELF scan, upload — manifest last — as builder/plan.ts plans it. Compile errors are
 * `build_failed` (final); engine, store and network problems are other codes (retried by the worker).
 */
export async function runBuild(deps: BuildDeps, job: BuildJob, hooks: BuildHooks, signal?: AbortSignal): Promise<BuildOutcome> {
  const jobId = buildJobId(job);
  const stored = await storedArtifact(deps.store, job);
  if (stored) {
    // An earlier attempt killed after storing it (before removing its work directory) leaves that here.
    await removeStaleWorkDirs(deps.workRoot, jobId);
    await hooks.log(`artifact already built: ${stored.key}`);
    await hooks.phase('done');
    return { manifest: stored.manifest, manifestKey: stored.key, cached: true };
  }
  const startedOn = new Date().toISOString();
  const log = cappedLog(deps.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES);
  const secrets = job.sealedSecrets ? openSecrets(deps.secretsKey, job.sealedSecrets) : undefined;
  const redact = secretRedactor(secrets);
  const lines = branchLog(async (line) => {
    for (const l of log.add(redact(line))) await hooks.log(l);
  });
  const say = lines.say;
  const timings: Record<string, number> = {};
  let locks = await deps.locks();
  if (deps.prepareImage && !findImage(locks, job)) {
    await hooks.phase('image');
    await deps.prepareImage(job.target, locks, say);
    locks = await deps.locks();
  }
  const target = await imageForTarget(locks, job);
  const base = { ref: target.ref, digest: target.digest, pinned: (await ensurePinnedImage(deps.docker, locks, target.ref, job.target.arch, target.digest, deps.upstreamDigest)).pinned };
  // With extra Debian packages the build runs in a builder derived from the target's (its manifest names that one).
  const { ref, pinned, digest } = job.packages?.length ? await withPackages(deps, base, job.packages, timings, hooks, say) : base;
  await removeLeftovers(deps, jobId, say);
  const workDir = await mkdtemp(join(deps.workRoot, `${jobId}-`));
  // Secrets live in memory-backed storage only, and go with the job's other leftovers whatever happens.
  const secretsDir = join(SECRETS_ROOT, `xamal-secrets-${basename(workDir)}`);
  const releases: (() => Promise<void>)[] = [];
  const hold = async (paths: string[]) => void (deps.cacheKeeper && releases.push(await deps.cacheKeeper.hold(paths)));
  let run: Run | undefined;
  try {
    if (job.source.kind === 'git') await hold([mirrorPath(deps.cacheDir, job.app, job.source.url)]);
    await hooks.phase('source');
    const { line, tree } = await timed(timings, 'source', () => prepareSource(deps, job.app, job.source, workDir));
    if (line) await say(line);
    const { cacheDir, limits, depsNetwork, hostArch } = deps;
    const keptOutputBytes = deps.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES;
    const tools = await mixToolsFor(deps, { pinned, digest }, workDir, timings, say);
    const mixTools = deps.mixTools ? { mixTools: deps.mixTools } : {};
    const secretsFile = secrets ? { secretsFile: join(secretsDir, 'secrets.env') } : {};
    const plan = await planJob({ job, jobId, image: { ref, pinned, digest }, workDir, cacheDir, limits, keptOutputBytes, depsNetwork, hostArch, ...tools, ...mixTools, ...secretsFile }, hold);
    const lock = await sourceLock(workDir);
    const relayScope: RelayScope = { app: job.app, locked: lock.locked, ...(job.gitDependencies ? { registered: job.gitDependencies } : {}) };
    const source = { ...(tree ? { tree } : {}), ...lock.source };
    run = { deps, hooks, signal, plan, log, say, sideBySide: lines.allSettled, redact, timings, startedOn, relayScope, learnt: { source }, closing: [], held: new Map(), ...(secrets ? { secrets } : {}) };
    await runSteps(run, plan.steps);
    return { manifest: learnt(run.learnt.manifest, 'the manifest'), manifestKey: plan.artifact.manifestKey, cached: false };
  } finally {
    if (run) await Promise.all([closeEgress(run), discardHeld(run), ...run.closing]);
    await rm(secretsDir, { recursive: true, force: true });
    await rm(workDir, { recursive: true, force: true });
    for (const release of releases) await release();
  }
}
