/**
 * The farm as the benchmarks use it: testkit's `wireFarm` (the pieces `xamal farm up` wires: real
 * Redis queues, a real build worker on the project's dockerd, the fastify app listening on loopback)
 * with the embedded default store (files on disk) under a directory of the benchmark's own, and a
 * queue prefix of its own.
 * Plus the small helpers every benchmark prints with.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { builderConfig } from '../builder/config.ts';
import type { AllowEntry } from '../builder/egress.ts';
import { buildImage } from '../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../builder/images/context.ts';
import type { Command } from '../core/index.ts';
import type { BuildAssets } from '../core/contracts/build-settings.ts';
import type { BuildQueues, QueueSettings } from '../queue/index.ts';
import { serviceEndpoints, servicesDown, servicesUp, type ServiceName } from '../localservices/index.ts';
import { localStore } from '../store/local.ts';
import type { ObjectStore } from '../store/store.ts';
import type { DebianSuite } from '../images/distros.ts';
import type { LockEntry } from '../images/lock.ts';
import { wireFarm } from '../testkit/farm.ts';

export const TOKEN = 'bench-token-0123456789abcdef0123';
export const AUTH = { authorization: `Bearer ${TOKEN}` };

/** The x86_64 tuples of the three Debian builder images (README: "What the Debian suites really give"). */
export const TUPLES: Record<'bullseye' | 'bookworm' | 'trixie', string> = {
  bullseye: 'linux-x86_64-gnu2.31-debian11-otp23.2.6-elixir1.10.3',
  bookworm: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0',
  trixie: 'linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3',
};

export const say = (line: string) => process.stderr.write(`${line}\n`);

const startedServices: ServiceName[] = [];

/** Stops the services `prepare` started (none when they were up already); take the engine lock around it. */
export async function stopStartedServices(): Promise<void> {
  if (startedServices.length) await servicesDown(builderConfig().services, startedServices.splice(0), say);
}

/** Brings up the services a farm needs (a no-op when they run) and makes sure the builder images exist. */
export async function prepare(suites: readonly DebianSuite[]): Promise<Map<DebianSuite, LockEntry>> {
  const cfg = builderConfig();
  startedServices.push(...(await servicesUp(cfg.services, ['redis', 'dockerd', 'registry'], say)).started);
  const images = imageBuildDeps(cfg, say);
  const out = new Map<DebianSuite, LockEntry>();
  for (const suite of suites) out.set(suite, (await buildImage(images, { suite, arch: hostArch(), flavour: 'builder' })).entry);
  return out;
}

export interface BenchFarm {
  url: string;
  app: FastifyInstance;
  store: ObjectStore;
  queues: BuildQueues;
  /** The worker's mix cache (deps/, _build): remove it for a cold build. */
  cacheDir: string;
  dockerSocket: string;
  /** Redis and key prefix of this farm's queues (and artifact generation). */
  settings: QueueSettings;
  /** JSON request to the API over loopback; resolves with status and parsed body. */
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  /** POST /v1/builds, then polls the manifests until every tuple's is visible; resolves with ms from the POST. */
  build(app: string, repo: { url: string; commit: string }, tuples: readonly string[], timeoutMs?: number, settings?: { env?: Record<string, string> | undefined; assets?: BuildAssets | undefined }): Promise<number>;
  clearCache(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A farm in this process: store and caches under `dir`, `concurrency` builds at once on one worker;
 * `depsAllow`: what its deps and assets steps may reach through the egress proxy (default: the product's list).
 */
export async function startBenchFarm(dir: string, concurrency: number, depsAllow?: AllowEntry[]): Promise<BenchFarm> {
  const cfg = builderConfig();
  const ep = serviceEndpoints(cfg.services);
  const settings = { redisUrl: ep.redisUrl, prefix: `bench-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}` };
  const store = localStore(join(dir, 'store'));
  const cacheDir = join(dir, 'cache');
  const farm = await wireFarm({ settings, store, dockerSocket: ep.dockerSocket, cacheDir, workRoot: join(dir, 'work'), token: TOKEN, host: '127.0.0.1', concurrency, queueArches: ['x86_64', 'aarch64'], ...(depsAllow ? { depsAllow } : {}) });
  const { url, app, queues } = farm;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { ...AUTH, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  };
  return {
    url,
    app,
    store,
    queues,
    cacheDir,
    dockerSocket: ep.dockerSocket,
    settings,
    call,
    async build(name, repo, tuples, timeoutMs = 900_000, settings = {}) {
      const { env, assets } = settings;
      const t0 = performance.now();
      const res = await call('POST', '/v1/builds', { app: name, source: { git: repo.url, commit: repo.commit }, targets: [...tuples], ...(env ? { env } : {}), ...(assets ? { assets } : {}) });
      if (res.status !== 202 && res.status !== 200) throw new Error(`POST /v1/builds answered ${res.status}: ${JSON.stringify(res.body)}`);
      const builds = (res.body as { builds: { id: string; tuple: string }[] }).builds;
      const pending = new Set(tuples);
      while (pending.size) {
        for (const t of [...pending]) if ((await call('GET', `/v1/artifacts/${name}/${repo.commit}/${t}`)).status === 200) pending.delete(t);
        if (!pending.size) break;
        for (const b of builds) {
          const st = (await call('GET', `/v1/builds/${b.id}`)).body as { state?: string; failedReason?: string };
          if (st?.state === 'failed') throw new Error(`build ${b.tuple} failed: ${st.failedReason}`);
        }
        if (performance.now() - t0 > timeoutMs) throw new Error(`builds not done after ${timeoutMs} ms: ${[...pending].join(', ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return performance.now() - t0;
    },
    clearCache: () => rm(cacheDir, { recursive: true, force: true }),
    close: farm.close,
  };
}

/** `docker` (the engine's own CLI, from Debian's docker.io) against the project's dockerd. */
export function dockerCli(socket: string, args: readonly string[], timeoutMs = 1_200_000): Command {
  return { argv: ['/usr/bin/docker', '-H', `unix://${socket}`, ...args], timeoutMs, label: `docker ${args[0]}` };
}

const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);
export const median = (xs: readonly number[]) => {
  const s = sorted(xs);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
/** Nearest-rank percentile. */
export const percentile = (xs: readonly number[], p: number) => {
  const s = sorted(xs);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};
/** `median | min–max` cells, each value through `fmt`. */
export const cells = (xs: readonly number[], fmt: (x: number) => string) => `${fmt(median(xs))} | ${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`;
export const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
export const ratio = (x: number) => x.toFixed(2);
