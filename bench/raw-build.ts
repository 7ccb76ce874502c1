/**
 * The raw side of P1 (and P2's lock): the containers the worker's plan (builder/plan.ts) gives a job,
 * run with the engine's own `docker run` on a fresh checkout — no API, queue, worker, cache, scan,
 * tarball, smoke boot or upload. A step planned with network `egress` runs with `--network host` and
 * the proxy variables pointing at `proxyUrl` (bench/shop.ts `rawProxy`: the farm's proxy program and
 * filter), since plain docker has no per-step namespace joined to a proxy.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { imageForTarget } from '../builder/apply.ts';
import { builderConfig } from '../builder/config.ts';
import { dockerEngine, type ContainerSpec } from '../builder/docker.ts';
import { proxyEnv } from '../builder/egress.ts';
import { ensurePinnedImage } from '../builder/images/ensure.ts';
import { hostArch } from '../builder/images/context.ts';
import { DEFAULT_LIMITS, planBuild, type BuildPlan } from '../builder/plan.ts';
import { LocalExecutor, runChecked } from '../core/index.ts';
import { buildJobId, BuildJobSchema } from '../core/contracts/build-job.ts';
import { readLock } from '../images/lock.ts';
import { BUILD_USER } from '../images/recipes/debian.ts';
import { git } from '../testkit/example-repo.ts';
import { dockerCli } from './farm.ts';

/** Pure: `docker run` arguments that create exactly the container a ContainerSpec describes (`network` overrides its network). */
export function dockerRunArgs(spec: ContainerSpec, network: string = spec.networkMode): string[] {
  return [
    'run', '--rm', '--network', network,
    ...(spec.user ? ['--user', spec.user] : []),
    ...Object.entries(spec.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    ...(spec.workdir ? ['-w', spec.workdir] : []),
    ...(spec.binds ?? []).flatMap((b) => ['-v', b]),
    ...(spec.readOnly ? ['--read-only'] : []),
    ...Object.entries(spec.tmpfs ?? {}).flatMap(([k, v]) => ['--tmpfs', `${k}:${v}`]),
    ...(spec.init ? ['--init'] : []),
    ...(spec.memoryBytes ? ['--memory', String(spec.memoryBytes)] : []),
    ...(spec.nanoCpus ? ['--cpus', String(spec.nanoCpus / 1e9)] : []),
    ...(spec.pidsLimit ? ['--pids-limit', String(spec.pidsLimit)] : []),
    ...(spec.capDrop ?? []).flatMap((c) => ['--cap-drop', c]),
    ...(spec.securityOpt ?? []).flatMap((o) => ['--security-opt', o]),
    ...Object.entries(spec.labels ?? {}).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
    spec.image,
    ...spec.cmd,
  ];
}

/** Pure: the `docker run` arguments of a step; an `egress` one on the host's network through `proxyUrl`. */
export function rawStepArgs(spec: ContainerSpec, proxyUrl: string | undefined): string[] {
  if (spec.networkMode !== 'egress') return dockerRunArgs(spec);
  if (!proxyUrl) throw new Error(`step ${spec.labels?.['org.xamal.step'] ?? '?'} needs the network: give a proxy`);
  const proxy = Object.fromEntries(Object.entries(proxyEnv()).map(([k, v]) => [k, v ? proxyUrl : v]));
  return dockerRunArgs({ ...spec, env: { ...spec.env, ...proxy } }, 'host');
}

export type RawStep = 'deps' | 'assets' | 'compile';

export interface RawJob {
  dockerSocket: string;
  app: string;
  url: string;
  commit: string;
  /** The target tuple (bench/farm.ts TUPLES). */
  tuple: string;
  env?: Record<string, string>;
  /** The project builds assets (`mix assets.deploy`). */
  assets: boolean;
  /** Work directory (removed by `rawBuild`). */
  dir: string;
}

/** The plan the worker would make for the job with empty caches, and a fresh checkout owned by the build user (untimed). */
export async function rawCheckout(j: RawJob): Promise<BuildPlan> {
  const cfg = builderConfig();
  const job = BuildJobSchema.parse({ app: j.app, source: { kind: 'git', url: j.url, commit: j.commit }, target: j.tuple, ...(j.env ? { env: j.env } : {}) });
  const locks = [await readLock(cfg.localLockPath)];
  const image = await imageForTarget(locks, job);
  const pinned = (await ensurePinnedImage(dockerEngine(j.dockerSocket), locks, image.ref, hostArch(), image.digest)).pinned;
  const plan = planBuild({
    job,
    jobId: `raw-${buildJobId(job)}`,
    image: { ref: image.ref, pinned, digest: image.digest },
    source: { lockHash: '', configHash: '', mixExs: '', hasDeps: false, linkedDirs: [], assets: j.assets },
    cache: { deps: false, build: false },
    workDir: j.dir,
    cacheDir: join(j.dir, 'unused-cache'),
    limits: DEFAULT_LIMITS,
    depsNetwork: 'egress',
  });
  await mkdir(j.dir, { recursive: true });
  git(j.dir, 'clone', '--quiet', j.url, plan.dirs.src);
  git(plan.dirs.src, '-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--detach', j.commit);
  for (const d of [plan.dirs.out, plan.dirs.home]) await mkdir(d, { recursive: true });
  await runChecked(new LocalExecutor(), { argv: ['chown', '-R', `${BUILD_USER.uid}:${BUILD_USER.gid}`, j.dir], label: 'chown' });
  return plan;
}

/** Runs `steps` of `plan` in order with `docker run`; ms per step. */
export async function rawSteps(dockerSocket: string, plan: BuildPlan, steps: readonly RawStep[], proxyUrl?: string): Promise<Record<RawStep, number>> {
  const exec = new LocalExecutor();
  const ms = {} as Record<RawStep, number>;
  for (const step of steps) {
    const t0 = performance.now();
    await runChecked(exec, dockerCli(dockerSocket, rawStepArgs(plan.containers[step], proxyUrl)));
    ms[step] = Math.round(performance.now() - t0);
  }
  return ms;
}

/** A fresh checkout (untimed), then `steps` (timed); the work directory removed after. */
export async function rawBuild(j: RawJob, steps: readonly RawStep[], proxyUrl?: string): Promise<{ ms: number; steps: Record<RawStep, number> }> {
  try {
    const plan = await rawCheckout(j);
    const t0 = performance.now();
    const each = await rawSteps(j.dockerSocket, plan, steps, proxyUrl);
    return { ms: performance.now() - t0, steps: each };
  } finally {
    await rm(j.dir, { recursive: true, force: true });
  }
}
