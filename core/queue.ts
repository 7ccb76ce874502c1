import { Queue, QueueEvents, UnrecoverableError, Worker, type Job, type Processor } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { XamalError } from './errors/index.ts';
import { buildJobId, BuildJobSchema, buildQueueName, type BuildJob, type BuildJobInput } from './build/job.ts';
import type { Arch } from './target/arch.ts';

/**
 * The only module that imports BullMQ: queue names, job options and connections are decided here
 * once, for the API (which enqueues) and the workers (which consume).
 */
export interface QueueSettings {
  redisUrl: string;
  /** Key prefix for every queue (tests use their own). */
  prefix?: string;
  /** Job lock lifetime for workers (default 60 s); a dead worker's job is retried after about this. */
  lockMs?: number;
  /** How long the API waits on Redis before it answers 503 (default 5 s). */
  timeoutMs?: number;
}

export type { Job };
export { UnrecoverableError };

/** Infrastructure failures are retried with exponential backoff; build failures are final. */
export const BUILD_JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 2_000 },
  removeOnComplete: { age: 7 * 24 * 3600, count: 10_000 },
  removeOnFail: { age: 30 * 24 * 3600 },
} as const;


/**
 * Connection *options* (not a client): BullMQ then owns the connection and closes it on close(), so a
 * process that closes its queues and workers can exit.
 */
export function connectionOptions(s: QueueSettings, forWorker = false): RedisOptions {
  const u = new URL(s.redisUrl);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    ...(forWorker ? { maxRetriesPerRequest: null } : { maxRetriesPerRequest: 1 }),
  };
}

/**
 * A plain client on the queues' Redis for what the API shares across its processes (rate-limit
 * counters). The caller closes it (`quit()`).
 */
export function redisClient(s: QueueSettings): Redis {
  return new Redis({ ...connectionOptions(s), lazyConnect: false, enableOfflineQueue: true });
}

export type { Redis };

/**
 * The artifact generation: a counter in the farm's Redis that workers move after they store an
 * artifact, so every API process knows when its kept artifact listings are out of date
 * (core/build/index.ts `IndexFreshness`). Reads fail fast (no offline queue, 500 ms): while Redis
 * is away the API reads the store itself instead of waiting. At most one GET is in flight: lookups
 * that arrive meanwhile share the next one, sent when it returns (so none sees a value read before
 * it arrived): under load one round trip serves many requests.
 */
export function artifactGeneration(s: QueueSettings): { generation(): Promise<string | undefined>; bump(): Promise<void>; close(): Promise<void> } {
  const key = `${s.prefix ?? 'bull'}:xamal:artifacts:generation`;
  const redis = new Redis({ ...connectionOptions(s), enableOfflineQueue: false, commandTimeout: 500 });
  // ioredis reconnects by itself; while it cannot, generation() answers undefined.
  redis.on('error', () => {});
  let inFlight: Promise<string | undefined> | undefined;
  let next: Promise<string | undefined> | undefined;
  const read = () =>
    redis.get(key).then(
      (v) => v ?? '0',
      () => undefined,
    ).finally(() => {
      inFlight = undefined;
    });
  return {
    generation() {
      if (redis.status !== 'ready') return Promise.resolve(undefined);
      if (!inFlight) return (inFlight = read());
      next ??= inFlight.then(() => {
        next = undefined;
        return (inFlight = read());
      });
      return next;
    },
    async bump() {
      await redis.incr(key);
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/**
 * A producer queue. `failFast` (the API's): no offline queue, so while Redis is down a call fails at
 * once instead of waiting — and is never carried out later, after its caller was told 503.
 */
export function buildQueue(s: QueueSettings, arch: Arch, failFast = false): Queue {
  const connection = { ...connectionOptions(s), ...(failFast ? { enableOfflineQueue: false } : {}) };
  return new Queue(buildQueueName(arch), { connection, ...(s.prefix ? { prefix: s.prefix } : {}) });
}

export function buildQueueEvents(s: QueueSettings, arch: Arch): QueueEvents {
  return new QueueEvents(buildQueueName(arch), { connection: connectionOptions(s, true), ...(s.prefix ? { prefix: s.prefix } : {}) });
}

/** Enqueues a validated job under its input-derived ID: an identical request attaches to the same job. */
export async function enqueueBuild(queue: Queue, input: BuildJobInput): Promise<{ id: string; job: BuildJob }> {
  const job = BuildJobSchema.parse(input);
  const id = buildJobId(job);
  await queue.add('build', input, { ...BUILD_JOB_OPTIONS, jobId: id });
  return { id, job };
}

export function createWorker<R>(s: QueueSettings, arch: Arch, processor: Processor<unknown, R>, concurrency: number): Worker<unknown, R> {
  return new Worker(buildQueueName(arch), processor, {
    connection: connectionOptions(s, true),
    concurrency,
    ...(s.prefix ? { prefix: s.prefix } : {}),
    // A worker that dies mid-build loses its lock; another picks the job up.
    lockDuration: s.lockMs ?? 60_000,
    stalledInterval: Math.max(500, Math.floor((s.lockMs ?? 60_000) / 2)),
    maxStalledCount: 2,
  });
}

const cancelChannel = (s: QueueSettings) => `${s.prefix ?? 'bull'}:xamal:cancel`;

export type CancelOutcome = 'removed' | 'signalled' | 'finished' | 'unknown';

/**
 * Cancels a build: a queued job is removed; a running one is signalled to every worker (Redis
 * pub/sub), and the worker running it kills its container; a finished one is left as it is.
 */
export async function cancelBuild(s: QueueSettings, arch: Arch, jobId: string): Promise<CancelOutcome> {
  const queue = buildQueue(s, arch, true);
  try {
    const job = await queue.getJob(jobId);
    if (!job) return 'unknown';
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') return 'finished';
    if (state === 'active') {
      const pub = new Redis({ ...connectionOptions(s), lazyConnect: true, enableOfflineQueue: false });
      pub.on('error', () => {});
      try {
        await pub.connect();
        await pub.publish(cancelChannel(s), jobId);
      } finally {
        pub.disconnect();
      }
      return 'signalled';
    }
    await job.remove();
    return 'removed';
  } finally {
    await queue.close();
  }
}

/** Calls `onCancel(jobId)` for every cancel request published for these settings. */
export async function subscribeCancels(s: QueueSettings, onCancel: (jobId: string) => void): Promise<{ close(): Promise<void> }> {
  const sub = new Redis(connectionOptions(s, true));
  // ioredis reconnects (and resubscribes) by itself; without a listener each failed attempt is printed.
  sub.on('error', () => {});
  await sub.subscribe(cancelChannel(s));
  sub.on('message', (_channel: string, jobId: string) => onCancel(jobId));
  return {
    async close() {
      sub.disconnect();
    },
  };
}

export interface BuildStatus {
  id: string;
  arch: Arch;
  /** waiting | active | completed | failed | delayed | prioritized | waiting-children | unknown */
  state: string;
  phase: string | undefined;
  attemptsMade: number;
  failedReason: string | undefined;
  result: unknown;
  data: unknown;
  createdAt: number;
  startedAt: number | undefined;
  finishedAt: number | undefined;
}

/**
 * What the API needs of the build queues: enqueue, status, logs and cancel, across the per-platform
 * queues (a job ID is unique across them: it hashes the target, which names the arch).
 */
/** Errors of the Redis connection itself (not of a command): the queue is unreachable, not broken. */
const CONNECTION_ERROR = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|EPIPE|Connection is closed|max retries per request|Stream isn't writeable|enableOfflineQueue|connect ETIMEDOUT/i;

/**
 * Runs one queue operation for the API within `timeoutMs`: an unreachable or silent Redis becomes
 * `unavailable` (503) naming where Redis was expected, never a hang or a 500.
 */
export async function withRedis<T>(s: QueueSettings, what: string, fn: () => Promise<T>): Promise<T> {
  const u = new URL(s.redisUrl);
  const where = `Redis at ${u.hostname}:${u.port || 6379}`;
  const ms = s.timeoutMs ?? 5_000;
  let timer: NodeJS.Timeout | undefined;
  const work = fn();
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new XamalError('unavailable', `build queue unavailable: ${where} did not answer ${what} within ${ms} ms; try again shortly`)), ms);
  });
  work.catch(() => {});
  try {
    return await Promise.race([work, late]);
  } catch (err) {
    if (err instanceof XamalError) throw err;
    const e = err as Error;
    if (e?.name === 'MaxRetriesPerRequestError' || CONNECTION_ERROR.test(e?.message ?? '')) {
      throw new XamalError('unavailable', `build queue unavailable: ${where} is unreachable (${what}: ${e.message}); try again shortly`, { cause: err });
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

export function buildQueues(s: QueueSettings, arches: readonly Arch[]) {
  const queues = new Map<Arch, Queue>();
  const queue = (arch: Arch) => {
    let q = queues.get(arch);
    if (!q) queues.set(arch, (q = buildQueue(s, arch, true)));
    return q;
  };
  const find = async (id: string): Promise<{ arch: Arch; job: Job } | undefined> => {
    for (const arch of arches) {
      const job = await queue(arch).getJob(id);
      if (job) return { arch, job };
    }
    return undefined;
  };
  /**
   * A BullMQ Queue created while Redis is down never recovers (its connection promise stays
   * rejected): after a connection failure the cached queues are dropped and made again on next use.
   */
  const guarded = <T>(what: string, fn: () => Promise<T>): Promise<T> =>
    withRedis(s, what, fn).catch((err: unknown) => {
      if (err instanceof XamalError && err.code === 'unavailable') {
        for (const q of queues.values()) void q.close().catch(() => {});
        queues.clear();
      }
      throw err;
    });
  return {
    enqueue: (input: BuildJobInput, arch: Arch) => guarded('enqueue', () => enqueueBuild(queue(arch), input)),
    status: (id: string): Promise<BuildStatus | undefined> => guarded('status', async () => {
      const found = await find(id);
      if (!found) return undefined;
      const { job, arch } = found;
      const progress = job.progress as { phase?: string } | number | undefined;
      return {
        id,
        arch,
        state: await job.getState(),
        phase: typeof progress === 'object' && progress ? progress.phase : undefined,
        attemptsMade: job.attemptsMade,
        failedReason: job.failedReason || undefined,
        result: job.returnvalue ?? undefined,
        data: job.data,
        createdAt: job.timestamp,
        startedAt: job.processedOn ?? undefined,
        finishedAt: job.finishedOn ?? undefined,
      };
    }),
    logs: (id: string, start = 0): Promise<{ lines: string[]; count: number } | undefined> => guarded('logs', async () => {
      const found = await find(id);
      if (!found) return undefined;
      const r = await queue(found.arch).getJobLogs(id, start, -1, true);
      return { lines: r.logs, count: r.count };
    }),
    cancel: (id: string): Promise<CancelOutcome> => guarded('cancel', async () => {
      const found = await find(id);
      return found ? cancelBuild(s, found.arch, id) : 'unknown';
    }),
    /** Jobs waiting per platform (and whether any worker is connected to serve them). */
    depth: (): Promise<Record<string, { waiting: number; active: number; workers: number }>> => guarded('depth', async () => {
      const out: Record<string, { waiting: number; active: number; workers: number }> = {};
      for (const arch of arches) {
        const q = queue(arch);
        const counts = await q.getJobCounts('waiting', 'active', 'prioritized', 'delayed');
        out[arch] = { waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0), active: counts.active ?? 0, workers: (await q.getWorkers()).length };
      }
      return out;
    }),
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  };
}
export type BuildQueues = ReturnType<typeof buildQueues>;

/** A finished build as the metrics see it. */
export interface FinishedBuild {
  id: string;
  arch: Arch;
  outcome: 'completed' | 'failed';
  /** From the worker picking the job up to its end (the last attempt). */
  durationMs: number | undefined;
  /** The build's result said the artifact was already stored (no container ran). */
  cached: boolean | undefined;
  finishedAt: number;
}

export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
  prioritized: number;
  completed: number;
  failed: number;
  workers: number;
}

/**
 * The platform queues as the operators see them (GET /metrics, the /admin/queues board): job
 * counts per state, recently finished jobs, and bull-board adapters over the same Queue objects.
 */
export function queueInspector(s: QueueSettings, arches: readonly Arch[]) {
  const queues = arches.map((arch) => ({ arch, queue: buildQueue(s, arch) }));
  const finished = (arch: Arch, outcome: FinishedBuild['outcome'], job: Job): FinishedBuild => {
    const ret = job.returnvalue as { cached?: unknown } | null | undefined;
    return {
      id: job.id ?? '',
      arch,
      outcome,
      durationMs: job.finishedOn && job.processedOn ? job.finishedOn - job.processedOn : undefined,
      cached: ret && typeof ret === 'object' && typeof ret.cached === 'boolean' ? ret.cached : undefined,
      finishedAt: job.finishedOn ?? 0,
    };
  };
  return {
    async counts(): Promise<Record<string, QueueCounts>> {
      const out: Record<string, QueueCounts> = {};
      for (const { arch, queue } of queues) {
        const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
        out[arch] = {
          waiting: c.waiting ?? 0,
          active: c.active ?? 0,
          delayed: c.delayed ?? 0,
          prioritized: c.prioritized ?? 0,
          completed: c.completed ?? 0,
          failed: c.failed ?? 0,
          workers: (await queue.getWorkers()).length,
        };
      }
      return out;
    },
    /** The newest `limit` completed and failed jobs of each platform queue. */
    async recentlyFinished(limit = 100): Promise<FinishedBuild[]> {
      const out: FinishedBuild[] = [];
      for (const { arch, queue } of queues) {
        for (const job of await queue.getCompleted(0, limit - 1)) if (job) out.push(finished(arch, 'completed', job as Job));
        for (const job of await queue.getFailed(0, limit - 1)) if (job) out.push(finished(arch, 'failed', job as Job));
      }
      return out;
    },
    /** bull-board adapters over these queues (read-write: the board is admin-only). */
    boardAdapters: () => queues.map(({ queue }) => new BullMQAdapter(queue)),
    async close() {
      await Promise.all(queues.map(({ queue }) => queue.close()));
    },
  };
}
export type QueueInspector = ReturnType<typeof queueInspector>;
