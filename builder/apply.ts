import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { isXamalError, compareVersions, formatTarget, XamalError, type Arch, type Executor, type Command } from '../core/index.ts';
import { buildJobId, type BuildJob, type BuildPhase } from '../core/contracts/build-job.ts';
import type { Manifest } from '../core/contracts/manifest.ts';
import { storedArtifact } from '../store/artifact-index.ts';
import { checkoutGitSource } from './source.ts';
import type { ObjectStore } from '../store/store.ts';
import { usableImages } from '../images/catalog.ts';
import type { LockFile } from '../images/lock.ts';
import { BUILD_USER } from '../images/recipes/debian.ts';
import type { ContainerResult, ContainerSpec, DockerEngine } from './docker.ts';
import { scanRelease } from './elf.ts';
import { cappedLog, type CappedLog } from './build-log.ts';
import { ensurePinnedImage } from './images/ensure.ts';
import { planBuild, SMOKE_MARKER, type BuildLimits } from './plan.ts';

export interface BuildDeps {
  docker: DockerEngine;
  exec: Executor;
  store: ObjectStore;
  locks: () => Promise<LockFile[]>;
  cacheDir: string;
  /** Parent of per-job scratch directories. */
  workRoot: string;
  limits: BuildLimits;
  depsNetwork: 'host' | 'none';
  /** This machine's arch: builds for any other run under qemu, whose rare crashes get one retry. */
  hostArch?: Arch;
  /** A job's log is cut (with a marker line) beyond this many bytes (XAMAL_MAX_LOG_BYTES, default 4 MiB). */
  maxLogBytes?: number;
}

export const DEFAULT_MAX_LOG_BYTES = 4 * 1024 * 1024;

export interface BuildHooks {
  phase(phase: BuildPhase): Promise<void> | void;
  log(line: string): Promise<void> | void;
}

export interface BuildOutcome {
  manifest: Manifest;
  manifestKey: string;
  cached: boolean;
}

function fail(message: string, log: CappedLog): XamalError {
  const tail = log.tail(30);
  return new XamalError('build_failed', `${message}\n--- log tail ---\n${tail}`);
}

async function sh(exec: Executor, cmd: Command): Promise<string> {
  const r = await exec.run(cmd);
  if (r.code !== 0) throw new XamalError('external', `${cmd.label ?? cmd.argv[0]} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-8).join('\n')}`);
  return r.stdout;
}

async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/** sha256 over files' paths relative to `root` and contents (absolute paths differ per job's work directory). */
async function hashFiles(root: string, paths: string[]): Promise<string> {
  const h = createHash('sha256');
  for (const p of paths.sort()) {
    h.update(relative(root, p));
    h.update(await readFile(p).catch(() => Buffer.alloc(0)));
  }
  return h.digest('hex');
}

/** Copies `from` into `to` only when `to` does not exist yet (first writer wins; atomic rename). */
async function saveCache(exec: Executor, from: string, to: string, replace: boolean): Promise<void> {
  if (!existsSync(from)) return;
  if (existsSync(to) && !replace) return;
  await mkdir(join(to, '..'), { recursive: true });
  const tmp = `${to}.${process.pid}.${Date.now()}.tmp`;
  await sh(exec, { argv: ['cp', '-a', from, tmp], label: 'save cache' });
  if (existsSync(to)) {
    const old = `${to}.${process.pid}.${Date.now()}.old`;
    await rename(to, old).catch(() => {});
    await rename(tmp, to);
    await rm(old, { recursive: true, force: true });
  } else {
    await rename(tmp, to).catch(async () => rm(tmp, { recursive: true, force: true }));
  }
}

/** Removes the work directories earlier attempts of this job left (a worker killed mid-build). */
async function removeStaleWorkDirs(workRoot: string, jobId: string): Promise<void> {
  await mkdir(workRoot, { recursive: true });
  for (const stale of (await readdir(workRoot)).filter((d) => d.startsWith(`${jobId}-`))) {
    await rm(join(workRoot, stale), { recursive: true, force: true });
  }
}

/** What a successful deps step ran with (plan.cachePaths.depsFetched). */
interface DepsFetched {
  /** sha256 of the mix.exs the step ran with (the deps key already covers mix.lock and the image). */
  mixExs: string;
  /** Whether it left a deps/ directory (an app without dependencies has none). */
  depsDir: boolean;
}

async function readDepsFetched(path: string): Promise<DepsFetched | undefined> {
  try {
    const v = JSON.parse(await readFile(path, 'utf8')) as Partial<DepsFetched>;
    return typeof v.mixExs === 'string' && typeof v.depsDir === 'boolean' ? { mixExs: v.mixExs, depsDir: v.depsDir } : undefined;
  } catch {
    return undefined;
  }
}

async function writeDepsFetched(path: string, v: DepsFetched): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, JSON.stringify(v));
  await rename(tmp, path);
}

/** The (pinned, probed) builder image whose tuple is the job's target. */
export async function imageForTarget(locks: LockFile[], job: BuildJob) {
  const tuple = formatTarget(job.target);
  const images = usableImages(locks).filter((i) => i.flavour === 'builder');
  const match = images.find((i) => i.tuple === tuple && i.arch === job.target.arch);
  if (!match) {
    const have = images.map((i) => i.tuple).filter(Boolean);
    throw new XamalError('unsupported', `no pinned builder image for ${tuple}${have.length ? `; pinned: ${[...new Set(have)].join(', ')}` : ''}`);
  }
  return match;
}

/**
 * Runs one build job: source, deps (network as configured), compile + release (no network), smoke
 * test, ELF scan, upload — manifest last. Compile errors are `build_failed` (final); engine, store
 * and network problems are other codes (retried by the worker).
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
  const log = cappedLog(deps.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES);
  const say = async (line: string) => {
    for (const l of log.add(line)) await hooks.log(l);
  };
  const locks = await deps.locks();
  const image = await imageForTarget(locks, job);
  const ensured = await ensurePinnedImage(deps.docker, locks, image.ref, job.target.arch, image.digest);

  // A previous attempt whose worker died may have left its containers running: they go first.
  for (const id of await deps.docker.containersWithLabel('org.xamal.job', jobId)) {
    await deps.docker.removeContainer(id);
    await say(`removed container ${id.slice(0, 12)} left by an earlier attempt`);
  }
  await removeStaleWorkDirs(deps.workRoot, jobId);
  const workDir = await mkdtemp(join(deps.workRoot, `${jobId}-`));
  const timings: Record<string, number> = {};
  const step = async <T>(name: string, fn: () => Promise<T>) => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      timings[name] = Math.round(performance.now() - t0);
    }
  };
  const runStep = async (name: string, spec: ContainerSpec): Promise<ContainerResult> => {
    await say(`==> ${name}: ${spec.cmd.join(' ')} (network ${spec.networkMode})`);
    if (signal?.aborted) throw new XamalError('cancelled', `build cancelled before ${name}`);
    const r = await step(name, () => deps.docker.run(spec, signal));
    if (r.stdout) await say(r.stdout.trimEnd());
    if (r.stderr) await say(r.stderr.trimEnd());
    if (r.cancelled) throw new XamalError('cancelled', `build cancelled during ${name}`);
    if (r.timedOut) throw fail(`${name} exceeded its time limit of ${spec.timeoutMs} ms`, log);
    if (r.oomKilled) {
      const mib = spec.memoryBytes ? `${Math.round(spec.memoryBytes / 1024 ** 2)} MiB` : 'the engine\'s';
      throw fail(`${name} ran out of memory: the kernel killed it at its memory limit of ${mib} (exit code ${r.code})`, log);
    }
    if (r.code !== 0) throw fail(`${name} failed with exit code ${r.code}`, log);
    return r;
  };
  try {
    await hooks.phase('source');
    const src = join(workDir, 'src');
    await step('source', async () => {
      if (job.source.kind === 'git') {
        const { fetched } = await checkoutGitSource(deps.exec, deps.cacheDir, job.source.url, job.source.commit, src);
        await say(`source: ${job.source.commit} ${fetched ? 'fetched into' : 'already in'} the worker's mirror of ${job.source.url}`);
      } else {
        const archive = await deps.store.get(job.source.key);
        if (!archive) throw new XamalError('build_failed', `source archive ${job.source.key} is not in the store`);
        const got = createHash('sha256').update(archive).digest('hex');
        if (got !== job.source.sha256) throw new XamalError('build_failed', `source archive ${job.source.key} has sha256 ${got}, expected ${job.source.sha256}`);
        await mkdir(src, { recursive: true });
        const file = join(workDir, 'source.tar.gz');
        await writeFile(file, archive);
        await sh(deps.exec, { argv: ['tar', '--no-same-owner', '--no-same-permissions', '-xzf', file, '-C', src], label: 'unpack source' });
      }
    });
    if (!existsSync(join(src, 'mix.exs'))) throw new XamalError('build_failed', 'the source has no mix.exs at its root');
    const configDir = join(src, 'config');
    const configFiles = existsSync(configDir) ? (await readdir(configDir)).filter((f) => f.endsWith('.exs') && f !== 'runtime.exs').map((f) => join(configDir, f)) : [];
    const plan = planBuild({
      job,
      jobId,
      image: { ref: image.ref, pinned: ensured.pinned, digest: image.digest },
      source: { lockHash: await hashFiles(src, [join(src, 'mix.lock')]), configHash: await hashFiles(src, [join(src, 'mix.exs'), ...configFiles]) },
      workDir,
      cacheDir: deps.cacheDir,
      limits: deps.limits,
      depsNetwork: deps.depsNetwork,
    });
    for (const d of [plan.dirs.out, plan.dirs.home]) await mkdir(d, { recursive: true });
    for (const [cache, into] of [[plan.cachePaths.deps, 'deps'], [plan.cachePaths.build, '_build']] as const) {
      if (existsSync(cache)) {
        await say(`cache hit: ${into} from ${cache}`);
        await sh(deps.exec, { argv: ['cp', '-a', cache, join(src, into)], label: `restore ${into}` });
      }
    }
    await sh(deps.exec, { argv: ['chown', '-R', `${BUILD_USER.uid}:${BUILD_USER.gid}`, workDir], label: 'chown workdir' });

    await hooks.phase('deps');
    // The same mix.lock, mix.exs and image as a deps step that succeeded: deps/ is what it fetched
    // (restored from the cache above), so the step (a container, ~1 s even with nothing to fetch) is skipped.
    const mixExs = await hashFiles(src, [join(src, 'mix.exs')]);
    const fetched = await readDepsFetched(plan.cachePaths.depsFetched);
    if (fetched?.mixExs === mixExs && (!fetched.depsDir || existsSync(join(src, 'deps')))) {
      await say(`==> deps: skipped (fetched before with this mix.lock, mix.exs and image; cache ${plan.cacheKeys.deps})`);
    } else {
      await runStep('deps', plan.steps.deps);
      await saveCache(deps.exec, join(src, 'deps'), plan.cachePaths.deps, false);
      await writeDepsFetched(plan.cachePaths.depsFetched, { mixExs, depsDir: existsSync(join(src, 'deps')) });
    }
    await hooks.phase('compile');
    const emulated = deps.hostArch !== undefined && deps.hostArch !== job.target.arch;
    try {
      await runStep('compile', plan.steps.compile);
    } catch (err) {
      // qemu-user very rarely crashes a BEAM (LAB.md: 1 in 27); an emulated build gets one more try.
      if (!emulated || !isXamalError(err) || err.code !== 'build_failed' || signal?.aborted) throw err;
      await say('==> compile failed under emulation; retrying once');
      await runStep('compile (retry)', plan.steps.compile);
    }
    // The smoke test only reads the release (mounted read-only), so the _build cache, the ELF scan
    // and the tarball are made while it runs (BENCHMARKS.md P1: it was ~1.5–3 s in series); nothing
    // is uploaded unless it passes.
    await hooks.phase('release');
    const packing = (async () => {
      await saveCache(deps.exec, join(src, '_build'), plan.cachePaths.build, true);
      const scan = await step('scan', () => scanRelease(plan.dirs.releaseDir));
      // gzip -1: 3–5x faster than tar's default -6 here, for a tarball ~7 % larger.
      await step('tar', () => sh(deps.exec, { argv: ['tar', '--numeric-owner', '--owner=0', '--group=0', '-C', plan.dirs.releaseDir, '--use-compress-program=gzip -1', '-cf', plan.dirs.tarball, '.'], label: 'tar release' }));
      return { scan, ...(await sha256File(plan.dirs.tarball)) };
    })();
    const [smoked, packed] = await Promise.allSettled([runStep('smoke', plan.steps.smoke), packing]);
    if (smoked.status === 'rejected') throw smoked.reason;
    if (!smoked.value.stdout.includes(SMOKE_MARKER)) throw fail('the release did not answer `eval` in its own image', log);
    if (packed.status === 'rejected') throw packed.reason;
    const { scan, sha256, size } = packed.value;

    await hooks.phase('scan');
    await say(`==> scan: ${scan.elfFiles.length} ELF files, glibc needed ${scan.glibcNeeded ?? 'none'}, sonames ${scan.sonames.join(' ')}`);
    if (job.target.libc === 'gnu' && scan.glibcNeeded && compareVersions(scan.glibcNeeded, job.target.libcVersion) > 0) {
      throw fail(`the release needs glibc ${scan.glibcNeeded}, above its target's floor ${job.target.libcVersion}`, log);
    }
    const startErl = (await readFile(join(plan.dirs.releaseDir, 'releases', 'start_erl.data'), 'utf8').catch(() => '')).trim().split(/\s+/);
    const releaseVersion = startErl[1];
    if (!releaseVersion) throw fail('the release has no releases/start_erl.data', log);

    await hooks.phase('upload');
    await step('upload', async () => {
      await deps.store.putFile(plan.artifact.tarballKey, plan.dirs.tarball, 'application/gzip');
      await deps.store.put(plan.artifact.sha256Key, `${sha256}  ${plan.artifact.fileName}\n`, 'text/plain');
    });
    const manifest: Manifest = {
      schema: 1,
      app: job.app,
      release: plan.release,
      releaseVersion,
      version: plan.artifact.version,
      ...(job.source.commit ? { commit: job.source.commit } : {}),
      tuple: formatTarget(job.target),
      mixEnv: job.mixEnv,
      tarball: { key: plan.artifact.tarballKey, sha256, size },
      image: { ref: image.ref, digest: image.digest },
      cacheKeys: plan.cacheKeys,
      ...(scan.glibcNeeded ? { glibcNeeded: scan.glibcNeeded } : {}),
      sonames: scan.sonames,
      timings,
      logKey: plan.artifact.logKey,
      builtAt: new Date().toISOString(),
      jobId,
    };
    await deps.store.put(plan.artifact.logKey, log.text(), 'text/plain');
    // Last: the manifest makes the artifact visible.
    await deps.store.put(plan.artifact.manifestKey, JSON.stringify(manifest, null, 2), 'application/json');
    // The work directory goes before `done` is reported (the finally below is for failures).
    await rm(workDir, { recursive: true, force: true });
    await hooks.phase('done');
    return { manifest, manifestKey: plan.artifact.manifestKey, cached: false };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
