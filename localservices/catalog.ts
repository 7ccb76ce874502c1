import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { ServicesConfig } from './config.ts';
import { serviceEndpoints, type ServiceEndpoints } from './endpoints.ts';
import { redisPassword } from './secrets.ts';

export const SERVICE_NAMES = ['redis', 'dockerd', 's3', 'registry'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export type ReadyCheck =
  | { kind: 'redis-ping'; port: number; password?: string }
  | { kind: 'http'; url: string; socketPath?: string; expect: (status: number, body: string) => boolean };

/** Everything needed to install, start, check and stop one service — data, no I/O. */
export interface ServiceSpec {
  name: ServiceName;
  /** Debian packages that provide it (installed when missing). */
  packages: string[];
  argv: string[];
  /** Directories created before start. */
  dirs: string[];
  /** Files written before start (configs); `mode` 0600 for those holding secrets. */
  files: { path: string; content: string; mode?: number }[];
  /** TCP port it binds on 127.0.0.1, checked for a squatter before start. */
  port?: number;
  ready: ReadyCheck;
  readyTimeoutMs: number;
  stopTimeoutMs: number;
  /** Pidfiles of helper processes it owns (dockerd's containerd), reaped after it stops. */
  childPidfiles: string[];
}

export function serviceDir(c: ServicesConfig, name: ServiceName): string {
  return join(c.stateDir, name);
}

function resolveS3rver(): string {
  return createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');
}

/**
 * The embedded Redis's memory: bounded (XAMAL_REDIS_MAXMEMORY), and past the bound writes are refused
 * rather than keys evicted, which BullMQ requires (an evicted job or lock corrupts a queue).
 */
export function redisMemoryConf(c: Pick<ServicesConfig, 'redisMaxMemory'>): string {
  return `maxmemory ${c.redisMaxMemory}\nmaxmemory-policy noeviction\n`;
}

/** What every spec shares unless it says otherwise. */
const DEFAULTS: Pick<ServiceSpec, 'files' | 'readyTimeoutMs' | 'stopTimeoutMs' | 'childPidfiles'> = { files: [], readyTimeoutMs: 15_000, stopTimeoutMs: 10_000, childPidfiles: [] };

/** One spec per service: data, no I/O. */
const SPECS: Record<ServiceName, (c: ServicesConfig, dir: string, ep: ServiceEndpoints) => ServiceSpec> = {
  redis: (c, dir) => ({
    ...DEFAULTS,
    name: 'redis',
    packages: ['redis-server'],
    // The password is in the config file (mode 0600), never on the command line where `ps` shows it.
    files: [{ path: join(dir, 'redis.conf'), content: `requirepass ${redisPassword(c)}\n${redisMemoryConf(c)}`, mode: 0o600 }],
    argv: [
      'redis-server',
      join(dir, 'redis.conf'),
      '--bind', '127.0.0.1',
      '--port', String(c.redisPort),
      '--dir', dir,
      '--appendonly', 'yes',
      '--appendfsync', 'everysec',
      '--save', '',
      '--daemonize', 'no',
      '--protected-mode', 'yes',
    ],
    dirs: [dir],
    port: c.redisPort,
    ready: { kind: 'redis-ping', port: c.redisPort, password: redisPassword(c) },
    stopTimeoutMs: 15_000,
  }),
  dockerd: (c, dir, ep) => {
    const execRoot = join(c.runDir, 'docker-exec');
    // The data root lives in the engine directory (outside the checkout): images survive fresh clones.
    const dataRoot = join(c.engineDir, 'docker');
    return {
      ...DEFAULTS,
      name: 'dockerd',
      packages: ['docker.io'],
      argv: [
        'dockerd',
        '--data-root', dataRoot,
        '--exec-root', execRoot,
        '-H', `unix://${ep.dockerSocket}`,
        '--pidfile', join(c.runDir, 'dockerd.pid'),
        '--bridge=none',
        '--iptables=false',
        '--ip-masq=false',
        '--insecure-registry', ep.registry,
        // docker.io pulls (hexpm/elixir by digest) try the embedded registry first: an offline farm
        // mirrors hexpm images there, and the lab proves the pull-by-digest path against it.
        '--registry-mirror', `http://${ep.registry}`,
      ],
      dirs: [dir, dataRoot, c.runDir],
      ready: { kind: 'http', url: 'http://docker/_ping', socketPath: ep.dockerSocket, expect: (s, b) => s === 200 && b.trim() === 'OK' },
      readyTimeoutMs: 60_000,
      stopTimeoutMs: 30_000,
      childPidfiles: [join(execRoot, 'containerd', 'containerd.pid')],
    };
  },
  s3: (c, dir, ep) => ({
    ...DEFAULTS,
    name: 's3',
    packages: [],
    argv: [process.execPath, resolveS3rver(), '--address', '127.0.0.1', '--port', String(c.s3Port), '--directory', dir, '--configure-bucket', c.s3Bucket, '--silent'],
    dirs: [dir],
    port: c.s3Port,
    // GetBucketLocation: proves the bucket exists (s3rver 3.7 answers 500 to a truncated listing).
    ready: { kind: 'http', url: `${ep.s3.endpoint}/${c.s3Bucket}?location`, expect: (s) => s === 200 },
  }),
  registry: (c, dir, ep) => {
    const config = join(dir, 'config.yml');
    // Storage beside the engine's data root and the local image lock, which pins digests in it.
    const data = join(c.engineDir, 'registry');
    const yml = ['version: 0.1', 'log:', '  level: warn', 'storage:', '  filesystem:', `    rootdirectory: ${data}`, '  delete:', '    enabled: true', 'http:', `  addr: ${ep.registry}`, ''];
    return {
      ...DEFAULTS,
      name: 'registry',
      packages: ['docker-registry'],
      argv: ['docker-registry', 'serve', config],
      dirs: [dir, data],
      files: [{ path: config, content: yml.join('\n') }],
      port: c.registryPort,
      ready: { kind: 'http', url: `http://${ep.registry}/v2/`, expect: (s) => s === 200 },
    };
  },
};

export function serviceSpec(c: ServicesConfig, name: ServiceName): ServiceSpec {
  return SPECS[name](c, serviceDir(c, name), serviceEndpoints(c));
}
