import { LocalExecutor } from '../core/index.ts';
import { storeConfig } from '../store/config.ts';
import { openStore } from '../store/open.ts';
import { readLock } from '../images/lock.ts';
import { COMMITTED_LOCK_PATH } from '../images/catalog.ts';
import type { BuildDeps } from './apply.ts';
import type { BuilderConfig } from './config.ts';
import { dockerEngine } from './docker.ts';
import { hostArch } from './images/context.ts';
import { DEFAULT_LIMITS } from './plan.ts';
import { join } from 'node:path';


/** The real dependencies of a build worker on this machine (engine, store, locks, caches). */
export async function buildDeps(cfg: BuilderConfig): Promise<BuildDeps> {
  return {
    docker: dockerEngine(cfg.dockerSocket),
    exec: new LocalExecutor(),
    store: await openStore(storeConfig(cfg.services.stateDir)),
    locks: async () => [await readLock(COMMITTED_LOCK_PATH), await readLock(cfg.localLockPath)],
    cacheDir: join(cfg.cacheDir, 'builds'),
    workRoot: cfg.workRoot,
    limits: DEFAULT_LIMITS,
    depsNetwork: cfg.depsNetwork,
    hostArch: hostArch(),
    maxLogBytes: cfg.maxLogBytes,
  };
}
