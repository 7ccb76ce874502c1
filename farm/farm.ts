import { buildApp, DEFAULT_DELIVERY_TTL_SECONDS, type AppOptions } from '../api/app.ts';
import { listen } from '../api/server.ts';

/** The API's fastify instance (for in-process requests: `inject`). */
type FastifyInstance = Awaited<ReturnType<typeof buildApp>>;
import { buildService, type BuildServiceDeps } from '../api/services/builds.ts';
import { registryProblems } from '../api/owners.ts';
import type { AppRegistry } from '../api/schemas/apps.ts';
import { healthService, type HealthCheck } from '../api/services/health.ts';
import { storeBackedServices } from '../api/services/store-backed.ts';
import type { BuildDeps } from '../builder/apply.ts';
import { startBuildWorkers } from '../builder/worker.ts';
import { LocalExecutor, PROBE_KEY, ValidationError, XamalError, type Arch, type Logger } from '../core/index.ts';
import { readLock } from '../images/lock.ts';
import { REMOTE_GIT_ONLY, type GitUrlPolicy } from '../core/contracts/git-url.ts';
import { artifactGeneration, buildQueues, deliveryLedger, queueInspector, redisClient, type BuildQueues, type QueueSettings } from '../queue/index.ts';
import type { ObjectStore } from '../store/store.ts';
import { shutdown, type Closable, type ShutdownReport } from './shutdown.ts';

/** The farm's HTTP API, as one process serves it. */
export interface FarmApiOptions extends Pick<AppOptions, 'token' | 'tokens' | 'githubHooks' | 'githubDeliveryTtlSeconds' | 'downloads' | 'logLevel' | 'maxStreamsPerToken' | 'cliPackage'> {
  /** Apps and their owners (XAMAL_APPS_FILE); absent: every build token builds and cancels every app. */
  apps?: AppRegistry;
  host: string;
  /** 0: the system picks one. */
  port: number;
  /** Platform queues the API enqueues to and reports on; none: a lookup-only API (no builds, no queues). */
  queueArches: readonly Arch[];
  /** POST requests per token and window, counted in the queues' Redis; absent = no limit. */
  rateLimit?: { max: number; windowMs: number };
  /** Which git URLs builds may name (default: https and ssh only; api/config.ts XAMAL_GIT_ALLOW_LOCAL, XAMAL_GIT_ALLOW_HTTP). */
  gitUrls?: GitUrlPolicy;
  /** The farm's credentials for private git repositories (api/config.ts XAMAL_GIT_CREDENTIALS_FILE). */
  gitRemoteEnv?: BuildServiceDeps['gitRemoteEnv'];
  /** Readiness checks besides the store's (e.g. the embedded services'). */
  checks?: Record<string, HealthCheck>;
  /** Builders the catalog names that no lock holds yet: accepted, and prepared by the worker first (images/preparable.ts). */
  preparable?: BuildServiceDeps['preparable'];
  /**
   * The public keys GET /v1/keys lists: the current one (default: this process's workers' signing
   * key) and rotated-out ones still published (XAMAL_SIGNING_KEYS_RETIRED).
   */
  signingKeys?: { current?: string; retired?: readonly string[] };
}

/** Build workers, as one process runs them. */
export interface FarmWorkerOptions {
  arches: readonly Arch[];
  /** Builds at once per platform queue. */
  concurrency: number;
  deps: BuildDeps;
}

export interface FarmOptions {
  /** Redis and key prefix of the queues (needed by workers and by an API with queues). */
  settings?: QueueSettings;
  store: ObjectStore;
  /** The image lock files the API matches build requests against. */
  lockPaths: readonly string[];
  api?: FarmApiOptions;
  workers?: FarmWorkerOptions;
  /** How long `close()` lets builds and requests in flight finish before it forces (farm/config.ts). */
  drainMs: number;
  logger?: Logger;
  /** The key build secrets are sealed with (farm/config.ts buildSecretsKey): given to the API and the workers. */
  secretsKey?: Buffer;
}

export interface Farm {
  /** The API's base URL, when this process serves it. */
  url: string | undefined;
  app: FastifyInstance | undefined;
  /** The API's view of the build queues, when it has one. */
  queues: BuildQueues | undefined;
  /** The one shutdown path: bounded by `drainMs` (+ a short force), whatever state Redis, the store or the engine are in. */
  close(): Promise<ShutdownReport>;
}

/**
 * The farm's one composition root: the API (store-backed lookups, builds over the platform queues,
 * metrics and the queue board, rate limits shared in Redis) and/or build workers, over one store and
 * one Redis. `xamal farm up`, `xamal farm worker`, the test kit and the benchmarks all start a farm
 * through it; each part is optional, so any number of API and worker processes share one farm.
 */
export async function startFarm(o: FarmOptions): Promise<Farm> {
  // Closed in this order: the API (nothing new arrives), the workers (builds in flight finish), then
  // the connections the API held — so a dead Redis delays only the last, never the builds' drain.
  const parts: Parts = { api: [], workers: [], connections: [] };
  const stop = (log?: (line: string) => void) => shutdown([...parts.api, ...parts.workers, ...parts.connections], o.drainMs, log);
  const farm: Farm = { url: undefined, app: undefined, queues: undefined, close: () => stop((line) => o.logger?.warn(line)) };
  try {
    if (o.workers) {
      const settings = queueSettings(o, 'workers');
      const deps = o.secretsKey && !o.workers.deps.secretsKey ? { ...o.workers.deps, secretsKey: o.secretsKey } : o.workers.deps;
      const workers = await startBuildWorkers(settings, o.workers.arches, deps, o.workers.concurrency, o.logger);
      parts.workers.push({ name: 'build workers', close: () => workers.close(), force: () => workers.force() });
      const egress = o.workers.deps.egress;
      if (egress) parts.workers.push({ name: 'egress proxy', close: () => egress.stop() });
    }
    if (o.api) Object.assign(farm, await startApi(o, o.api, parts));
    return farm;
  } catch (err) {
    await stop();
    throw err;
  }
}

function queueSettings(o: FarmOptions, who: string): QueueSettings {
  if (!o.settings) throw new XamalError('usage', `farm: ${who} need the queues' Redis (settings.redisUrl)`);
  return o.settings;
}

interface Parts {
  api: Closable[];
  workers: Closable[];
  connections: Closable[];
}

/** The API and the connections it holds, registered in `parts`. */
async function startApi(o: FarmOptions, a: FarmApiOptions, parts: Parts): Promise<Pick<Farm, 'url' | 'app' | 'queues'>> {
  if (a.apps) {
    const problems = registryProblems(a.apps, ['admin', ...(a.tokens ?? []).map((t) => t.name)], a.githubHooks);
    if (problems.length) throw new ValidationError(problems, 'the app registry disagrees with the other settings');
  }
  const withQueues = a.queueArches.length > 0;
  const settings = withQueues ? queueSettings(o, 'an API with build queues') : o.settings;
  // Workers move the artifact generation; while it stands still lookups use kept listings.
  const generation = settings ? artifactGeneration(settings) : undefined;
  if (generation) parts.connections.push({ name: 'artifact generation', close: () => generation.close() });
  const locks = () => Promise.all(o.lockPaths.map((p) => readLock(p)));
  let queues: BuildQueues | undefined;
  let extra = {};
  if (withQueues && settings) {
    const q = buildQueues(settings, a.queueArches);
    queues = q;
    parts.connections.push({ name: 'build queues', close: () => q.close() });
    // GET /metrics and the /admin/queues board read the same platform queues.
    const inspector = queueInspector(settings, a.queueArches);
    parts.connections.push({ name: 'queue inspector', close: () => inspector.close() });
    const builds = buildService({ queues: q, store: o.store, locks, exec: new LocalExecutor(), gitUrls: a.gitUrls ?? REMOTE_GIT_ONLY, ...(o.secretsKey ? { secretsKey: o.secretsKey } : {}), ...(a.gitRemoteEnv ? { gitRemoteEnv: a.gitRemoteEnv } : {}), ...(o.logger ? { logger: o.logger } : {}), ...(a.apps ? { apps: a.apps } : {}), ...(a.preparable ? { preparable: a.preparable } : {}) });
    extra = { builds, queues: inspector };
  }
  // Rate-limit counters and webhook deliveries live in the shared Redis, so every API process of the farm sees them.
  const redis = (a.rateLimit || a.githubHooks) && settings ? redisClient(settings) : undefined;
  if (redis) parts.connections.push({ name: 'API Redis', close: async () => void (await redis.quit()), force: async () => redis.disconnect() });
  if (redis && settings && a.githubHooks) extra = { ...extra, deliveries: deliveryLedger(settings, redis, a.githubDeliveryTtlSeconds ?? DEFAULT_DELIVERY_TTL_SECONDS) };
  const checks: Record<string, HealthCheck> = {
    ...a.checks,
    // Any answer (even "not there") proves the store is reachable; an error means it is not.
    store: async () => (await o.store.exists(PROBE_KEY), true),
  };
  const currentKey = a.signingKeys?.current ?? o.workers?.deps.signer.key.publicKey;
  const app = await buildApp({
    token: a.token,
    signingKeys: { ...(currentKey ? { current: currentKey } : {}), retired: a.signingKeys?.retired ?? [] },
    ...(a.tokens ? { tokens: a.tokens } : {}),
    ...(a.githubHooks ? { githubHooks: a.githubHooks } : {}),
    ...(a.githubDeliveryTtlSeconds ? { githubDeliveryTtlSeconds: a.githubDeliveryTtlSeconds } : {}),
    ...(a.downloads ? { downloads: a.downloads } : {}),
    ...(a.logLevel ? { logLevel: a.logLevel } : {}),
    ...(a.maxStreamsPerToken ? { maxStreamsPerToken: a.maxStreamsPerToken } : {}),
    ...(a.cliPackage ? { cliPackage: a.cliPackage } : {}),
    ...(a.rateLimit ? { rateLimit: { ...a.rateLimit, ...(redis ? { redis } : {}), ...(settings?.prefix ? { prefix: settings.prefix } : {}) } } : {}),
    services: { health: healthService(checks), ...storeBackedServices(o.store, generation), ...extra },
  });
  parts.api.push({ name: 'API', close: () => app.close() });
  const url = await listen(app, a.host, a.port);
  return { url, app, queues };
}
