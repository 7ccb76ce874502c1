import { join } from 'node:path';
import type { BuildDeps } from '../builder/apply.ts';
import type { BuilderConfig } from '../builder/config.ts';
import { dockerEngine } from '../builder/docker.ts';
import { hostArch } from '../builder/images/context.ts';
import { DEFAULT_LIMITS, type BuildLimits } from '../builder/plan.ts';
import { LocalExecutor } from '../core/index.ts';
import { COMMITTED_LOCK_PATH } from '../images/catalog.ts';
import { readLock } from '../images/lock.ts';
import type { ObjectStore } from '../store/store.ts';

/** What a build worker runs on: the engine, the store, the image locks and the worker's own directories. */
export interface BuildDepsOptions {
  dockerSocket: string;
  store: ObjectStore;
  /** Build cache (mix deps/ and _build, git mirrors), shared by the builds of this worker. */
  cacheDir: string;
  /** Parent of per-job scratch directories. */
  workRoot: string;
  /** The image lock files whose pinned builder images builds may use (default: the committed lock). */
  lockPaths: readonly string[];
  depsNetwork?: 'host' | 'none';
  limits?: BuildLimits;
  maxLogBytes?: number;
}

/** The one place a build worker's dependencies are made (`xamal farm up`, `xamal farm worker`, test kit, benchmarks). */
export function buildDeps(o: BuildDepsOptions): BuildDeps {
  return {
    docker: dockerEngine(o.dockerSocket),
    exec: new LocalExecutor(),
    store: o.store,
    locks: () => Promise.all(o.lockPaths.map((p) => readLock(p))),
    cacheDir: o.cacheDir,
    workRoot: o.workRoot,
    limits: o.limits ?? DEFAULT_LIMITS,
    depsNetwork: o.depsNetwork ?? 'host',
    hostArch: hostArch(),
    ...(o.maxLogBytes !== undefined ? { maxLogBytes: o.maxLogBytes } : {}),
  };
}

/** The image locks a farm on this machine builds with: the committed pins, then the images built here. */
export function farmLockPaths(cfg: BuilderConfig): string[] {
  return [COMMITTED_LOCK_PATH, cfg.localLockPath];
}

/** A worker's dependencies as configured by the environment (builderConfig). */
export function configuredBuildDeps(cfg: BuilderConfig, store: ObjectStore): BuildDeps {
  return buildDeps({
    dockerSocket: cfg.dockerSocket,
    store,
    cacheDir: join(cfg.cacheDir, 'builds'),
    workRoot: cfg.workRoot,
    lockPaths: farmLockPaths(cfg),
    depsNetwork: cfg.depsNetwork,
    maxLogBytes: cfg.maxLogBytes,
  });
}
