import { arch as nodeArch } from 'node:os';
import { LocalExecutor, normalizeArch, XamalError, type Arch } from '../../core/index.ts';
import type { BuilderConfig } from '../config.ts';
import { dockerEngine } from '../docker.ts';
import { ensureEmulation } from '../emulation.ts';
import type { ImageBuildDeps } from './build.ts';
import { ensurePackages } from '../../localservices/index.ts';


export function hostArch(): Arch {
  const a = normalizeArch(nodeArch());
  if (!a) throw new XamalError('unsupported', `this machine's arch ${nodeArch()} is not one xamal builds on`);
  return a;
}

/** The real dependencies of an image build: this machine's engine, registry, executor and caches. */
export function imageBuildDeps(cfg: BuilderConfig, say: (line: string) => void): ImageBuildDeps {
  const exec = new LocalExecutor();
  const host = hostArch();
  return {
    docker: dockerEngine(cfg.dockerSocket, cfg.dockerCallTimeoutMs),
    exec,
    registry: cfg.registry,
    cacheDir: cfg.cacheDir,
    localLockPath: cfg.localLockPath,
    mirror: cfg.mirror,
    toolchainOrigins: cfg.toolchainOrigins,
    toolchainPrefer: cfg.toolchainPrefer,
    hostArch: host,
    ensureTools: async (packages) => void (await ensurePackages(packages, say)),
    ensureEmulation: (arch) => ensureEmulation({ arch, hostArch: host, cacheDir: cfg.cacheDir, mirror: cfg.mirror, exec, say }),
    say,
  };
}
