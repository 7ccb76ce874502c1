import { createHash } from 'node:crypto';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { parseOrThrow } from '../core/errors/index.ts';

/** The checkout this file belongs to. */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const Port = z.coerce.number().int().min(1).max(65535);

const EnvSchema = z.object({
  XAMAL_STATE_DIR: z.string().min(1).optional(),
  XAMAL_CACHE_DIR: z.string().min(1).optional(),
  XAMAL_ENGINE_DIR: z.string().min(1).optional(),
  XAMAL_REDIS_PORT: Port.default(16379),
  XAMAL_S3_PORT: Port.default(14568),
  XAMAL_S3_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{2,62}$/, 'expected an S3 bucket name').default('xamal'),
  XAMAL_REGISTRY_PORT: Port.default(5000),
  XAMAL_REDIS_MAXMEMORY: z.string().regex(/^[1-9]\d*(?:kb|mb|gb)$/i, 'expected a size like 256mb or 2gb').default('256mb'),
  XAMAL_DEBIAN_MIRROR: z.string().url('expected a URL like http://deb.debian.org/debian').default('http://deb.debian.org/debian'),
});

/** Where the local real services keep their data, pids and logs, and the ports they use. */
export interface ServicesConfig {
  stateDir: string;
  /** Built images and rootfs tarballs, reused across runs (outlives `down`). */
  cacheDir: string;
  /**
   * The Docker engine's data root, the local registry's storage and the lock of the images built
   * here, which must stay together (the lock pins digests in that registry): outside the checkout by
   * default (`<cacheDir>/engine`), so a fresh clone on the same machine finds its builder images.
   */
  engineDir: string;
  /** Short directory for unix sockets and docker's exec root (socket paths are limited to 107 bytes). */
  runDir: string;
  redisPort: number;
  /** The embedded Redis's memory limit (XAMAL_REDIS_MAXMEMORY, redis units: 256mb); past it writes are refused, never keys evicted. */
  redisMaxMemory: string;
  s3Port: number;
  s3Bucket: string;
  registryPort: number;
  /** Debian mirror for debootstrap (builder images and test hosts). */
  debianMirror: string;
}

export function servicesConfig(env: NodeJS.ProcessEnv = process.env): ServicesConfig {
  const e = parseOrThrow(EnvSchema, env, 'invalid service settings in the environment');
  const stateDir = resolve(e.XAMAL_STATE_DIR ?? join(PROJECT_ROOT, '.state'));
  const hash = createHash('sha256').update(stateDir).digest('hex').slice(0, 10);
  // Outside the checkout by default, so fresh clones on one machine share built rootfs tarballs.
  const cacheDir = resolve(e.XAMAL_CACHE_DIR ?? join(homedir(), '.cache', 'xamal'));
  return {
    stateDir,
    cacheDir,
    engineDir: resolve(e.XAMAL_ENGINE_DIR ?? join(cacheDir, 'engine')),
    runDir: join(tmpdir(), `xamal-${hash}`),
    redisPort: e.XAMAL_REDIS_PORT,
    redisMaxMemory: e.XAMAL_REDIS_MAXMEMORY.toLowerCase(),
    s3Port: e.XAMAL_S3_PORT,
    s3Bucket: e.XAMAL_S3_BUCKET,
    registryPort: e.XAMAL_REGISTRY_PORT,
    debianMirror: e.XAMAL_DEBIAN_MIRROR,
  };
}

/** This process's environment plus `extra`, for child processes that need both (apt-get). */
export function childEnv(extra: Record<string, string>, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, ...extra };
}
