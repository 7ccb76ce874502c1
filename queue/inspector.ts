import type { Job } from 'bullmq';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { Arch } from '../core/index.ts';
import type { QueueSettings } from './connection.ts';
import { buildQueue, closeQueue } from './producer.ts';

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
      await Promise.all(queues.map(({ queue }) => closeQueue(queue)));
    },
  };
}
export type QueueInspector = ReturnType<typeof queueInspector>;
