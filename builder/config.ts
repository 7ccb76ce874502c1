import { join } from 'node:path';
import { z } from 'zod';
import { parseOrThrow } from '../core/index.ts';
import { serviceEndpoints, servicesConfig, type ServicesConfig } from '../core/services/index.ts';

const EnvSchema = z.object({
  XAMAL_DEBIAN_MIRROR: z.string().url('expected a URL like http://deb.debian.org/debian').default('http://deb.debian.org/debian'),
  XAMAL_REGISTRY: z.string().regex(/^[a-z0-9.-]+(?::\d+)?$/, 'expected host[:port]').optional(),
  XAMAL_DOCKER_SOCKET: z.string().min(1).optional(),
});

/** Where the builder finds Docker, the registry it pushes to, its caches and the local image lock. */
export interface BuilderConfig {
  services: ServicesConfig;
  mirror: string;
  registry: string;
  dockerSocket: string;
  cacheDir: string;
  /** Digests of images built on this machine: farm state, never committed. */
  localLockPath: string;
}

export function builderConfig(env: NodeJS.ProcessEnv = process.env): BuilderConfig {
  const e = parseOrThrow(EnvSchema, env, 'invalid builder settings in the environment');
  const services = servicesConfig(env);
  const ep = serviceEndpoints(services);
  return {
    services,
    mirror: e.XAMAL_DEBIAN_MIRROR,
    registry: e.XAMAL_REGISTRY ?? ep.registry,
    dockerSocket: e.XAMAL_DOCKER_SOCKET ?? ep.dockerSocket,
    cacheDir: services.cacheDir,
    localLockPath: join(services.stateDir, 'images', 'local.lock.json'),
  };
}
