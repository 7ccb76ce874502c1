import { createHash } from 'node:crypto';
import { join } from 'node:path';
import {
  artifactKey,
  artifactManifestKey,
  artifactSha256Key,
  buildLogKey,
  formatTarget,
  XamalError,
  type ArtifactRef,
} from '../core/index.ts';
import { sourceVersion, type BuildJob } from '../core/contracts/build-job.ts';
import { BUILD_USER } from '../images/recipes/debian.ts';
import type { ContainerSpec } from './docker.ts';

/** Limits every build container runs under. */
export interface BuildLimits {
  cpus: number;
  memoryBytes: number;
  /** Wall clock per step. */
  stepTimeoutMs: number;
}

export const DEFAULT_LIMITS: BuildLimits = { cpus: 2, memoryBytes: 4 * 1024 ** 3, stepTimeoutMs: 20 * 60_000 };

export interface SourceFacts {
  /** sha256 of mix.lock (or of the empty string when there is none). */
  lockHash: string;
  /** sha256 over the compile-time config files (config/config.exs, config/<env>.exs, …). */
  configHash: string;
}

export interface PlanInput {
  job: BuildJob;
  jobId: string;
  /** `repo@sha256:…` of the pinned builder image, and its digest. */
  image: { ref: string; pinned: string; digest: string };
  source: SourceFacts;
  /** Per-job scratch directory on the worker. */
  workDir: string;
  cacheDir: string;
  limits: BuildLimits;
  /** Network for the deps step only (`host` to reach git/hex servers; `none` to forbid). */
  depsNetwork: 'host' | 'none';
}

export interface BuildPlan {
  jobId: string;
  release: string;
  artifact: ArtifactRef & { tarballKey: string; sha256Key: string; manifestKey: string; logKey: string; fileName: string };
  cacheKeys: { deps: string; build: string };
  /**
   * `depsFetched`: a marker the worker writes after a deps step succeeded for this deps key, holding
   * the mix.exs it ran with (builder/apply.ts): the next build with the same lock and mix.exs skips the step.
   */
  cachePaths: { deps: string; build: string; depsFetched: string };
  dirs: { src: string; out: string; home: string; releaseDir: string; tarball: string };
  steps: { deps: ContainerSpec; compile: ContainerSpec; smoke: ContainerSpec };
}

const hash = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);

/** Where things are inside build containers. */
const C = { src: '/build/src', out: '/build/out', home: '/build/home' } as const;

/**
 * Pure: everything a build will do, as data — image, container specs, cache keys, artifact keys,
 * limits. The applier only carries it out.
 */
export function planBuild(p: PlanInput): BuildPlan {
  const { job } = p;
  if (job.target.os !== 'linux') {
    throw new XamalError('unsupported', `target os ${job.target.os}: the farm builds linux targets only (${formatTarget(job.target)})`);
  }
  const release = job.release ?? job.app;
  const version = sourceVersion(job.source);
  const ref: ArtifactRef = { app: job.app, version, target: job.target };
  const tuple = formatTarget(job.target);
  // deps/ depends only on the lockfile; _build also on the image (ERTS/compiler), env and config.
  // Neither is ever shared across targets: the image digest pins the target.
  const depsKey = `deps-${hash(p.image.digest, p.source.lockHash)}`;
  const buildKey = `build-${hash(p.image.digest, job.mixEnv, p.source.lockHash, p.source.configHash, job.app, release)}`;
  const dirs = {
    src: join(p.workDir, 'src'),
    out: join(p.workDir, 'out'),
    home: join(p.workDir, 'home'),
    releaseDir: join(p.workDir, 'out', release),
    tarball: join(p.workDir, `${job.app}-${version}-${tuple}.tar.gz`),
  };
  const user = `${BUILD_USER.uid}:${BUILD_USER.gid}`;
  const env = {
    HOME: C.home,
    MIX_HOME: `${C.home}/.mix`,
    HEX_HOME: `${C.home}/.hex`,
    MIX_ENV: job.mixEnv,
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    ERL_AFLAGS: '+sbwt none +sbwtdcpu none +sbwtdio none',
  };
  const common = {
    image: p.image.pinned,
    user,
    env,
    workdir: C.src,
    binds: [`${dirs.src}:${C.src}`, `${dirs.out}:${C.out}`, `${dirs.home}:${C.home}`],
    readOnly: true,
    tmpfs: { '/tmp': 'rw,exec,size=512m' },
    init: true,
    memoryBytes: p.limits.memoryBytes,
    nanoCpus: Math.round(p.limits.cpus * 1e9),
    capDrop: ['ALL'],
    securityOpt: ['no-new-privileges'],
    timeoutMs: p.limits.stepTimeoutMs,
    labels: { 'org.xamal.job': p.jobId },
  } satisfies Omit<ContainerSpec, 'cmd' | 'networkMode'>;
  return {
    jobId: p.jobId,
    release,
    artifact: {
      ...ref,
      tarballKey: artifactKey(ref),
      sha256Key: artifactSha256Key(ref),
      manifestKey: artifactManifestKey(ref),
      logKey: buildLogKey(p.jobId),
      fileName: `${job.app}-${version}-${tuple}.tar.gz`,
    },
    cacheKeys: { deps: depsKey, build: buildKey },
    cachePaths: { deps: join(p.cacheDir, 'mix', depsKey), build: join(p.cacheDir, 'mix', buildKey), depsFetched: join(p.cacheDir, 'mix', `${depsKey}.fetched.json`) },
    dirs,
    steps: {
      deps: { ...common, cmd: ['mix', 'deps.get'], networkMode: p.depsNetwork, labels: { ...common.labels, 'org.xamal.step': 'deps' } },
      // Compile and release with no network at all; --overwrite because without a TTY mix would
      // otherwise answer its own "Overwrite?" prompt with EOF and keep the old release (LAB.md).
      compile: {
        ...common,
        cmd: ['mix', 'release', release, '--overwrite', '--path', `${C.out}/${release}`],
        networkMode: 'none',
        labels: { ...common.labels, 'org.xamal.step': 'compile' },
      },
      smoke: {
        ...common,
        cmd: [`${C.out}/${release}/bin/${release}`, 'eval', 'IO.puts("xamal-smoke-ok")'],
        env: { ...env, RELEASE_DISTRIBUTION: 'none', RELEASE_TMP: '/tmp' },
        networkMode: 'none',
        workdir: C.out,
        binds: [`${dirs.out}:${C.out}:ro`, `${dirs.home}:${C.home}`],
        labels: { ...common.labels, 'org.xamal.step': 'smoke' },
      },
    },
  };
}

export const SMOKE_MARKER = 'xamal-smoke-ok';
