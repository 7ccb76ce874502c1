import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { TokenEntry } from '../api/auth.ts';
import type { AppRegistry } from '../api/schemas/apps.ts';
import type { GitDeployKeys } from '../core/contracts/git-credentials.ts';
import type { BuildAssets } from '../core/contracts/build-settings.ts';
import type { DownloadSettings } from '../api/downloads.ts';
import { builderConfig } from '../builder/config.ts';
import { buildImage } from '../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../builder/images/context.ts';
import { XamalError, type Arch } from '../core/index.ts';
import { farmClient, type FarmClient } from '../deployer/farm-client.ts';
import type { AllowEntry } from '../builder/egress.ts';
import type { ArtifactSigner } from '../builder/provenance.ts';
import { buildDeps, farmLockPaths } from '../farm/build-deps.ts';
import { startFarm } from '../farm/farm.ts';
import { LOCAL_SOURCES } from './example-repo.ts';
import type { DebianSuite } from '../images/distros.ts';
import type { ServiceEndpoints } from '../localservices/index.ts';
import type { BuildQueues, QueueSettings } from '../queue/index.ts';
import { s3Store } from '../store/s3.ts';
import type { ObjectStore } from '../store/store.ts';
import { testSigner } from './signing.ts';

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
  /** Builds `commit` of the git repo at `url` for `suite`'s builder image (with the build's own `env`); resolves with the artifact's tuple. */
  build(app: string, source: { url: string; commit: string }, suite: DebianSuite, settings?: { env?: Record<string, string>; assets?: BuildAssets }): Promise<{ tuple: string; sha256: string }>;
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
  /** More tokens beside the admin `token`, each with its scopes (as XAMAL_FARM_TOKENS gives them). */
  tokens?: TokenEntry[];
  /** Hosts the deps and assets steps may reach through the egress proxy (default: the product's list). */
  depsAllow?: AllowEntry[];
  /** Rotated-out public keys the API lists beside the test kit's signing key (as XAMAL_SIGNING_KEYS_RETIRED gives them). */
  retiredKeys?: string[];
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
  /** Hosts the deps step may reach through the egress proxy (default: the product's default list). */
  depsAllow?: AllowEntry[];
  /** The key build secrets are sealed with (default: a fresh one, as `xamal farm up` makes). */
  secretsKey?: Buffer;
  /** More tokens beside the admin `token`. */
  tokens?: TokenEntry[];
  /** What the worker signs with (default: the test kit's kept key, testkit/signing.ts). */
  signer?: ArtifactSigner;
  /** Rotated-out public keys the API lists beside the signer's (XAMAL_SIGNING_KEYS_RETIRED). */
  retiredKeys?: string[];
  /** The farm's ssh deploy keys for the deps step's git over ssh (XAMAL_GIT_CREDENTIALS_FILE; default none). */
  gitDeployKeys?: GitDeployKeys;
  /** Apps and their owners (XAMAL_APPS_FILE; default none: an open farm). */
  apps?: AppRegistry;
}

export interface WiredFarm {
  url: string;
  app: FastifyInstance;
  queues: BuildQueues;
  close(): Promise<void>;
}

/**
 * A build worker for this machine's arch and the API over the same queues, store and artifact
 * generation, listening on `host`: the farm's composition root (farm/farm.ts `startFarm`) with the
 * test kit's defaults (silent log, short drain). What tests' and benchmarks' farms share (testkit
 * `startTestFarm`, bench/farm.ts `startBenchFarm`).
 */
export async function wireFarm(w: FarmWiring): Promise<WiredFarm> {
  const arch = hostArch();
  const lockPaths = farmLockPaths(builderConfig());
  const farm = await startFarm({
    settings: w.settings,
    store: w.store,
    lockPaths,
    drainMs: 10_000,
    secretsKey: w.secretsKey ?? randomBytes(32),
    workers: {
      arches: [arch],
      concurrency: w.concurrency,
      deps: buildDeps({ dockerSocket: w.dockerSocket, store: w.store, cacheDir: w.cacheDir, workRoot: w.workRoot, lockPaths, signer: w.signer ?? testSigner(), ...(w.depsAllow ? { depsAllow: w.depsAllow } : {}), ...(w.gitDeployKeys ? { gitDeployKeys: w.gitDeployKeys } : {}) }),
    },
    // Tests and benchmarks build from file:// repositories they make (testkit/example-repo.ts).
    api: { host: w.host, port: 0, token: w.token, logLevel: 'silent', queueArches: w.queueArches ?? [arch], gitUrls: LOCAL_SOURCES, ...(w.downloads ? { downloads: w.downloads } : {}), ...(w.tokens ? { tokens: w.tokens } : {}), ...(w.retiredKeys ? { signingKeys: { retired: w.retiredKeys } } : {}), ...(w.apps ? { apps: w.apps } : {}) },
  });
  return { url: farm.url!, app: farm.app!, queues: farm.queues!, close: async () => void (await farm.close()) };
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
    ...(opts.tokens ? { tokens: opts.tokens } : {}),
    ...(opts.depsAllow ? { depsAllow: opts.depsAllow } : {}),
    ...(opts.retiredKeys ? { retiredKeys: opts.retiredKeys } : {}),
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
      async build(app, source, suite, settings = {}) {
        // The builder image (cached after the first time) decides the tuple.
        const image = await buildImage(images, { suite, arch, flavour: 'builder' });
        const tuple = image.entry.tuple!;
        const submitted = await client.submit({ app, source: { git: source.url, commit: source.commit }, targets: [tuple], ...(settings.env ? { env: settings.env } : {}), ...(settings.assets ? { assets: settings.assets } : {}) });
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
