import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../api/app.ts';
import { listen } from '../api/server.ts';
import { buildService } from '../api/services/builds.ts';
import { healthService } from '../api/services/health.ts';
import { storeBackedServices } from '../api/services/store-backed.ts';
import { builderConfig } from '../builder/config.ts';
import { dockerEngine } from '../builder/docker.ts';
import { buildImage } from '../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../builder/images/context.ts';
import { DEFAULT_LIMITS } from '../builder/plan.ts';
import { startBuildWorkers, type RunningWorkers } from '../builder/worker.ts';
import { LocalExecutor, XamalError, type Arch } from '../core/index.ts';
import type { DownloadSettings } from '../api/downloads.ts';
import { artifactGeneration, buildQueues, type BuildQueues, type QueueSettings } from '../queue/index.ts';
import type { ServiceEndpoints } from '../localservices/index.ts';
import { s3Store } from '../store/s3.ts';
import type { ObjectStore } from '../store/store.ts';
import { farmClient, type FarmClient } from '../deployer/farm-client.ts';
import type { DebianSuite } from '../images/distros.ts';
import { readLock } from '../images/lock.ts';

/**
 * A real farm for tests and benchmarks: the API (builds, resolve, download links it signs itself),
 * a BullMQ build worker for this machine's arch and an S3 store (s3rver), all on the real local
 * services, listening where test hosts reach it (the lab bridge's gateway address).
 */
export interface TestFarm {
  /** The API's base URL (as hosts reach it). */
  url: string;
  token: string;
  client: FarmClient;
  store: ObjectStore;
  /** Builds `commit` of the git repo at `url` for `suite`'s builder image; resolves with the artifact's tuple. */
  build(app: string, source: { url: string; commit: string }, suite: DebianSuite): Promise<{ tuple: string; sha256: string }>;
  close(): Promise<void>;
}

export interface TestFarmOptions {
  services: ServiceEndpoints;
  /** Queue and S3 key prefix no other run shares. */
  prefix: string;
  /** Address the API listens on (a lab's gateway). */
  host: string;
  token: string;
  /** Build work directory (deleted by the caller). */
  workDir: string;
  /** Build cache (deps, _build): shared across runs like a farm's cache. */
  cacheDir: string;
  /** How long download links live (s). */
  linkTtlSeconds?: number;
}

/** How a farm in this process is wired: the same pieces as `xamal farm up`, on the given services. */
export interface FarmWiring {
  settings: QueueSettings;
  store: ObjectStore;
  dockerSocket: string;
  /** Build cache (deps, _build). */
  cacheDir: string;
  /** Build work directories. */
  workRoot: string;
  token: string;
  /** Address the API listens on (port chosen by the system). */
  host: string;
  /** Builds at once on the one worker (this machine's arch). */
  concurrency: number;
  downloads?: Partial<DownloadSettings>;
  /** Platform queues the API enqueues to (default: this machine's arch). */
  queueArches?: Arch[];
}

export interface WiredFarm {
  url: string;
  app: FastifyInstance;
  queues: BuildQueues;
  close(): Promise<void>;
}

/**
 * A build worker for this machine's arch and the API over the same queues, store and artifact
 * generation, listening on `host`. What tests' and benchmarks' farms share (testkit `startTestFarm`,
 * bench/farm.ts `startFarm`).
 */
export async function wireFarm(w: FarmWiring): Promise<WiredFarm> {
  const arch = hostArch();
  const lockPath = builderConfig().localLockPath;
  const locks = async () => [await readLock(lockPath)];
  const exec = new LocalExecutor();
  const queues: BuildQueues = buildQueues(w.settings, w.queueArches ?? [arch]);
  const generation = artifactGeneration(w.settings);
  let workers: RunningWorkers | undefined;
  let api: FastifyInstance | undefined;
  const close = async () => {
    await api?.close();
    await workers?.close();
    await queues.close();
    await generation.close();
  };
  try {
    workers = await startBuildWorkers(
      w.settings,
      [arch],
      { docker: dockerEngine(w.dockerSocket), exec, store: w.store, locks, cacheDir: w.cacheDir, workRoot: w.workRoot, limits: DEFAULT_LIMITS, depsNetwork: 'host', hostArch: arch },
      w.concurrency,
    );
    api = await buildApp({
      token: w.token,
      logLevel: 'silent',
      services: { health: healthService({}), ...storeBackedServices(w.store, generation), builds: buildService({ queues, store: w.store, locks, exec }) },
      ...(w.downloads ? { downloads: w.downloads } : {}),
    });
    const url = await listen(api, w.host, 0);
    return { url, app: api, queues, close };
  } catch (err) {
    await close();
    throw err;
  }
}

export async function startTestFarm(opts: TestFarmOptions): Promise<TestFarm> {
  const arch = hostArch();
  const cfg = { ...builderConfig(), dockerSocket: opts.services.dockerSocket, registry: opts.services.registry };
  const store = s3Store({ ...opts.services.s3, prefix: `${opts.prefix}/` });
  const farm = await wireFarm({
    settings: { redisUrl: opts.services.redisUrl, prefix: opts.prefix },
    store,
    dockerSocket: opts.services.dockerSocket,
    cacheDir: opts.cacheDir,
    workRoot: join(opts.workDir, 'work'),
    token: opts.token,
    host: opts.host,
    concurrency: 2,
    downloads: { mode: 'api', ttlSeconds: opts.linkTtlSeconds ?? 300 },
  });
  const { url, close } = farm;
  try {
    const client = farmClient(url, opts.token);
    const images = imageBuildDeps(cfg, () => {});
    return {
      url,
      token: opts.token,
      client,
      store,
      async build(app, source, suite) {
        // The builder image (cached after the first time) decides the tuple.
        const image = await buildImage(images, { suite, arch, flavour: 'builder' });
        const tuple = image.entry.tuple!;
        const submitted = await client.submit({ app, source: { git: source.url, commit: source.commit }, targets: [tuple] });
        const b = submitted.body.builds[0];
        if (!b) throw new XamalError('external', `farm: build of ${app} for ${tuple} not accepted: ${JSON.stringify(submitted.body.unresolved)}`);
        if (b.status === 'done') return { tuple, sha256: (await client.downloadLink(app, source.commit, tuple)).sha256 };
        const deadline = Date.now() + 900_000;
        for (;;) {
          const st = await client.status(b.id);
          if (st.state === 'completed' && st.result) return { tuple: st.result.tuple, sha256: st.result.sha256 };
          if (st.state === 'failed') throw new XamalError('build_failed', `farm: build ${b.id} of ${app} for ${tuple} failed: ${st.failedReason ?? ''}\n${(await client.logs(b.id)).slice(-2000)}`);
          if (Date.now() > deadline) throw new XamalError('external', `farm: build ${b.id} still ${st.state} after 15 min`);
          await new Promise((r) => setTimeout(r, 250));
        }
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
