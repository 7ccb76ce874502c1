import { basename, join } from 'node:path';
import { z } from 'zod';
import { parseOrThrow } from '../core/index.ts';
import { gitCredentialsFromFile } from '../core/contracts/git-credentials.ts';
import { loadSigningKeyFile } from '../core/signing-key-file.ts';
import { DEFAULT_DOCKER_CALL_TIMEOUT_MS } from './docker.ts';
import { DEFAULT_DEPS_ALLOW, parseAllowList } from './egress.ts';
import { DEFAULT_LIMITS, type BuildLimits } from './plan.ts';
import { HEX_ARCHIVE_NAME, HEX_BUILDS_URL, type MixToolsSettings, type ToolSource } from './mix-tools.ts';
import { DEFAULT_EVICTION, type EvictionPolicy } from './eviction.ts';
import { parseOrigins, parsePrefer } from '../images/toolchains.ts';
import { serviceEndpoints, servicesConfig, type ServicesConfig } from '../localservices/index.ts';

/** Docker Hub's registry API, where hexpm/elixir lives. */
export const DOCKER_HUB = 'https://registry-1.docker.io';

const EnvSchema = z.object({
  XAMAL_REGISTRY: z.string().regex(/^[a-z0-9.-]+(?::\d+)?$/, 'expected host[:port]').optional(),
  XAMAL_DOCKER_SOCKET: z.string().min(1).optional(),
  XAMAL_DOCKER_CALL_TIMEOUT_MS: z.coerce.number({ message: 'expected milliseconds' }).int('expected whole milliseconds').min(100, 'expected at least 100 ms').max(3_600_000, 'expected at most an hour').default(DEFAULT_DOCKER_CALL_TIMEOUT_MS),
  XAMAL_REDIS_URL: z.string().regex(/^rediss?:\/\//, 'expected redis://host:port').optional(),
  XAMAL_QUEUE_PREFIX: z.string().regex(/^[a-z0-9-]{1,64}$/, 'expected lowercase letters, digits and dashes').default('xamal'),
  XAMAL_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  XAMAL_DEPS_NETWORK: z.enum(['egress', 'none'], { message: 'expected egress (through the allow-listed proxy) or none' }).default('egress'),
  XAMAL_DEPS_ALLOW: z.string().max(4096).default(DEFAULT_DEPS_ALLOW),
  XAMAL_MAX_LOG_BYTES: z.coerce.number().int().min(4096, 'expected bytes, at least 4096').max(1 << 30, 'expected bytes, at most 1 GiB').default(4 * 1024 * 1024),
  XAMAL_MAX_STEP_OUTPUT_BYTES: z.coerce.number().int().min(65_536, 'expected bytes, at least 65536').max(2 ** 40, 'expected bytes, at most 1 TiB').default(DEFAULT_LIMITS.maxOutputBytes),
  XAMAL_BUILD_PIDS_LIMIT: z.coerce.number().int().min(32, 'expected a number of processes, at least 32').max(1 << 22).default(DEFAULT_LIMITS.pids),
  XAMAL_MAX_BUILD_DISK_BYTES: z.coerce.number().int().min(1 << 26, 'expected bytes, at least 64 MiB').max(2 ** 50).default(DEFAULT_LIMITS.diskBytes),
  XAMAL_CACHE_MAX_BYTES: z.coerce.number().int().min(1024 ** 2, 'expected bytes, at least 1 MiB').default(DEFAULT_EVICTION.maxBytes),
  XAMAL_CACHE_MAX_AGE_DAYS: z.coerce.number().min(0.01, 'expected days, more than 0').max(3650, 'expected days, at most 3650').default(DEFAULT_EVICTION.maxAgeMs / 86_400_000),
  XAMAL_WORKER_LOCK_MS: z.coerce.number().int().min(1000).max(600_000).default(60_000),
  XAMAL_TOOLCHAIN_ORIGINS: z.string().max(4096).optional(),
  XAMAL_TOOLCHAIN_PREFER: z.string().max(1024).optional(),
  XAMAL_HEXPM_REGISTRY: z
    .string()
    .url('expected a registry URL like https://registry-1.docker.io')
    .regex(/^(?:https:\/\/|http:\/\/(?:127\.\d+\.\d+\.\d+|localhost)(?::\d+)?(?:\/|$))/, 'expected https://, or http:// to a loopback address')
    .default(DOCKER_HUB),
  XAMAL_HEX_ARCHIVE: z.string().refine((p) => p.startsWith('/') && HEX_ARCHIVE_NAME.test(basename(p)), 'expected the absolute path of a Hex archive, like /srv/hex/hex-2.1.1.ez').optional(),
  XAMAL_REBAR3: z.string().regex(/^\//, 'expected the absolute path of a rebar3 escript').optional(),
  XAMAL_APT_MIRROR_DIR: z.string().regex(/^\//, 'expected the absolute path of a flat Debian repository (Packages index and .deb files)').optional(),
  HEX_BUILDS_URL: z.string().url('expected a URL like https://builds.hex.pm').regex(/^https?:\/\//, 'expected an http(s) URL').optional(),
  HEX_MIRROR: z.string().url('expected a URL like https://repo.hex.pm').regex(/^https?:\/\//, 'expected an http(s) URL').optional(),
  XAMAL_GIT_CREDENTIALS_FILE: z.string().min(1).optional(),
  XAMAL_SIGNING_KEY_FILE: z.string().min(1).optional(),
  XAMAL_GIT_ALLOW_HTTP: z.enum(['0', '1', 'true', 'false'], { error: 'expected 1 (fetch sources over unencrypted http:// and git://) or 0' }).default('0'),
  HEX_OFFLINE: z.enum(['1', 'true', '0', 'false', ''], { message: 'expected 1 or true (Hex resolves from its cache only), 0 or false' }).optional(),
});

/** Pure: where builds get Hex and rebar3 from: local files when set, else the builds URL (Hex's own unless HEX_BUILDS_URL). */
function mixToolsSettings(e: z.infer<typeof EnvSchema>): MixToolsSettings {
  const builds: ToolSource = { kind: 'builds', url: e.HEX_BUILDS_URL ?? HEX_BUILDS_URL };
  return {
    hex: e.XAMAL_HEX_ARCHIVE ? { kind: 'file', path: e.XAMAL_HEX_ARCHIVE } : builds,
    rebar3: e.XAMAL_REBAR3 ? { kind: 'file', path: e.XAMAL_REBAR3 } : builds,
    ...(e.HEX_MIRROR ? { hexMirror: e.HEX_MIRROR } : {}),
    hexOffline: e.HEX_OFFLINE === '1' || e.HEX_OFFLINE === 'true',
  };
}

/**
 * Where the builder finds Docker, the registry it pushes to, its caches and the local image lock,
 * and what builds run under. The type is this function's result (BuilderConfig): one declaration.
 */
export function builderConfig(env: NodeJS.ProcessEnv = process.env) {
  const e = parseOrThrow(EnvSchema, env, 'invalid builder settings in the environment');
  const services: ServicesConfig = servicesConfig(env);
  const ep = serviceEndpoints(services);
  return {
    services,
    mirror: services.debianMirror,
    /** Base URL of each toolchain source origin: `github` is GitHub and `debian` the Debian mirror unless XAMAL_TOOLCHAIN_ORIGINS says otherwise. */
    toolchainOrigins: parseOrigins(e.XAMAL_TOOLCHAIN_ORIGINS, { github: 'https://github.com', debian: services.debianMirror }),
    /** Which origin a version's source is fetched from: the first of XAMAL_TOOLCHAIN_PREFER it has (default github, then debian). */
    toolchainPrefer: parsePrefer(e.XAMAL_TOOLCHAIN_PREFER),
    registry: e.XAMAL_REGISTRY ?? ep.registry,
    /** Where hexpm tags are pinned and checked (XAMAL_HEXPM_REGISTRY): Docker Hub, or a mirror of it for offline farms. */
    hexpmRegistry: e.XAMAL_HEXPM_REGISTRY,
    dockerSocket: e.XAMAL_DOCKER_SOCKET ?? ep.dockerSocket,
    /** How long an engine call that answers at once (create, start, inspect, remove, …) may take before it fails as unavailable (XAMAL_DOCKER_CALL_TIMEOUT_MS, default 60 s). */
    dockerCallTimeoutMs: e.XAMAL_DOCKER_CALL_TIMEOUT_MS,
    cacheDir: services.cacheDir,
    /** Digests of images built on this machine, beside the registry that holds them: never committed. */
    localLockPath: join(services.engineDir, 'images.lock.json'),
    redisUrl: e.XAMAL_REDIS_URL ?? ep.redisUrl,
    queuePrefix: e.XAMAL_QUEUE_PREFIX,
    concurrency: e.XAMAL_WORKER_CONCURRENCY,
    depsNetwork: e.XAMAL_DEPS_NETWORK,
    /** The only hosts the deps step reaches, through the egress proxy (XAMAL_DEPS_ALLOW). */
    depsAllow: parseAllowList(e.XAMAL_DEPS_ALLOW),
    /** Per-job scratch directories. */
    workRoot: join(services.stateDir, 'work'),
    /** How long a job's lock lives without renewal: a dead worker's job is picked up after about this. */
    lockMs: e.XAMAL_WORKER_LOCK_MS,
    /** A build's log is cut, with a marker line, beyond this many bytes (XAMAL_MAX_LOG_BYTES, default 4 MiB). */
    maxLogBytes: e.XAMAL_MAX_LOG_BYTES,
    /**
     * What every build container runs under: DEFAULT_LIMITS with the step output cap
     * (XAMAL_MAX_STEP_OUTPUT_BYTES, default 64 MiB), processes per step (XAMAL_BUILD_PIDS_LIMIT, default
     * 512) and the work directory's size (XAMAL_MAX_BUILD_DISK_BYTES, default 8 GiB).
     */
    limits: { ...DEFAULT_LIMITS, maxOutputBytes: e.XAMAL_MAX_STEP_OUTPUT_BYTES, pids: e.XAMAL_BUILD_PIDS_LIMIT, diskBytes: e.XAMAL_MAX_BUILD_DISK_BYTES } satisfies BuildLimits,
    /** The build cache is kept within XAMAL_CACHE_MAX_BYTES (default 20 GiB) and XAMAL_CACHE_MAX_AGE_DAYS of no use (default 30). */
    /** Hex and rebar3 for projects with dependencies: XAMAL_HEX_ARCHIVE / XAMAL_REBAR3 files, else HEX_BUILDS_URL (default Hex's builds); HEX_MIRROR, HEX_OFFLINE. */
    mixTools: mixToolsSettings(e),
    /** Extra Debian packages for a build's builder come from this repository on disk (XAMAL_APT_MIRROR_DIR), else Debian's archive through the egress proxy. */
    aptMirrorDir: e.XAMAL_APT_MIRROR_DIR,
    /**
     * The farm's own credentials for private repositories, per host or repository (XAMAL_GIT_CREDENTIALS_FILE):
     * the worker's fetches use them (gitRemoteEnv), and the deps step's git dependencies over ssh its deploy keys (gitDeployKeys).
     */
    ...gitCredentialsFromFile(e.XAMAL_GIT_CREDENTIALS_FILE, e.XAMAL_GIT_ALLOW_HTTP === '1' || e.XAMAL_GIT_ALLOW_HTTP === 'true'),
    /**
     * The key every artifact is signed with (XAMAL_SIGNING_KEY_FILE, from `xamal farm keys new`): a
     * 0600 ed25519 PEM, checked here. Unset: a worker refuses to start; `xamal farm up` keeps one in its state directory.
     */
    signingKey: e.XAMAL_SIGNING_KEY_FILE ? loadSigningKeyFile(e.XAMAL_SIGNING_KEY_FILE) : undefined,
    cacheEviction: { maxBytes: e.XAMAL_CACHE_MAX_BYTES, maxAgeMs: Math.round(e.XAMAL_CACHE_MAX_AGE_DAYS * 86_400_000) } satisfies EvictionPolicy,
  };
}

export type BuilderConfig = ReturnType<typeof builderConfig>;
