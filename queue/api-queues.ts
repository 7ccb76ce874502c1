import type { Job, Queue } from 'bullmq';
import { XamalError, type Arch } from '../core/index.ts';
import type { BuildJobInput } from '../core/contracts/build-job.ts';
import { withRedis, type QueueSettings } from './connection.ts';
import { cancelBuild, type CancelOutcome } from './cancel.ts';
import { buildQueue, closeQueue, enqueueBuild } from './producer.ts';

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

/** The job states a listing reads (BullMQ's lists). */
export const LISTED_STATES = ['waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized'] as const;
export type ListedState = (typeof LISTED_STATES)[number];

/** One build as a listing shows it (its target as the job holds it). */
export interface ListedBuild {
  id: string;
  arch: Arch;
  app: string;
  target: unknown;
  state: ListedState;
  phase: string | undefined;
  failedReason: string | undefined;
  createdAt: number;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  /** The job's input as enqueued (the caller reads what it shows of it). */
  data: unknown;
}

export interface ListQuery {
  app?: string | undefined;
  states: readonly ListedState[];
  limit: number;
  /** How deep each state list is read from its newest end (default 500). */
  scan?: number;
  /** Only the builds this keeps (applied before `limit`: a commit, a tuple, older than a cursor). */
  where?: (b: ListedBuild) => boolean;
}

/** Newest first: by creation time, then by id (so a page boundary between builds made in the same millisecond is exact). */
export const newestFirst = (a: { createdAt: number; id: string }, b: { createdAt: number; id: string }): number =>
  b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/**
 * The newest builds across the platform queues, newest first: at most `limit`, of `app` and in
 * `states` when given; each state list is read from its newest end, `scan` jobs deep at most.
 */
async function listBuilds(queue: (arch: Arch) => Queue, arches: readonly Arch[], q: ListQuery): Promise<ListedBuild[]> {
  const out: ListedBuild[] = [];
  for (const arch of arches) {
    for (const state of q.states) {
      for (const job of await queue(arch).getJobs([state], 0, (q.scan ?? 500) - 1, false)) {
        const data = job.data as { app?: string; target?: unknown } | undefined;
        if (!job.id || (q.app && data?.app !== q.app)) continue;
        const progress = job.progress as { phase?: string } | number | undefined;
        const listed: ListedBuild = {
          id: job.id,
          arch,
          app: data?.app ?? '',
          target: data?.target,
          state,
          phase: typeof progress === 'object' && progress ? progress.phase : undefined,
          failedReason: job.failedReason || undefined,
          createdAt: job.timestamp,
          startedAt: job.processedOn ?? undefined,
          finishedAt: job.finishedOn ?? undefined,
          data: job.data,
        };
        if (!q.where || q.where(listed)) out.push(listed);
      }
    }
  }
  return out.sort(newestFirst).slice(0, q.limit);
}

/**
 * What the API needs of the build queues: enqueue, status, logs and cancel, across the per-platform
 * queues (a job ID is unique across them: it hashes the target, which names the arch).
 */
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
        for (const q of queues.values()) void closeQueue(q).catch(() => {});
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
    /**
     * The newest builds across the platform queues, newest first: at most `limit`, of `app` and in
     * `states` when given; each state list is read from its newest end, `scan` jobs deep at most.
     */
    list: (q: ListQuery): Promise<ListedBuild[]> => guarded('list', () => listBuilds(queue, arches, q)),
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
      await Promise.all([...queues.values()].map(closeQueue));
    },
  };
}
export type BuildQueues = ReturnType<typeof buildQueues>;
