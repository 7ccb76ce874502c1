import { Redis } from 'ioredis';
import type { Arch } from '../core/index.ts';
import { connectionOptions, type QueueSettings } from './connection.ts';
import { buildQueue, closeQueue } from './producer.ts';

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
    await closeQueue(queue);
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
