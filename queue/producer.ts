import type { EventEmitter } from 'node:events';
import { Queue, QueueEvents } from 'bullmq';
import { buildJobId, BuildJobSchema, buildQueueName, type BuildJob, type BuildJobInput } from '../core/contracts/build-job.ts';
import type { Arch } from '../core/index.ts';
import { connectionOptions, type QueueSettings } from './connection.ts';

/**
 * Infrastructure failures are retried with exponential backoff; build failures are final. Finished
 * jobs (each with its live log, up to XAMAL_MAX_LOG_BYTES) are kept for a while and to a count, so
 * Redis stays within its maxmemory: the stored log in the object store outlives them.
 */
export const BUILD_JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 2_000 },
  removeOnComplete: { age: 7 * 24 * 3600, count: 10_000 },
  removeOnFail: { age: 30 * 24 * 3600, count: 1_000 },
} as const;


/**
 * A producer queue. `failFast` (the API's): no offline queue, so while Redis is down a call fails at
 * once instead of waiting — and is never carried out later, after its caller was told 503.
 */
export function buildQueue(s: QueueSettings, arch: Arch, failFast = false): Queue {
  const connection = { ...connectionOptions(s), ...(failFast ? { enableOfflineQueue: false } : {}) };
  return new Queue(buildQueueName(arch), { connection, ...(s.prefix ? { prefix: s.prefix } : {}) });
}

/**
 * Closes a queue at once, also while its connection is still starting (what waits on that start is
 * then never carried out: the API's contract after a 503). BullMQ's close() drops the connection's
 * error listeners, and a start that fails after that escapes as an unhandled rejection
 * (taskforcesh/bullmq#3546; seen here once when the API dropped its queues during a Redis restart):
 * a listener is put back on that connection once it is closed.
 */
export async function closeQueue(q: Queue): Promise<void> {
  const connection = (q as unknown as { connection?: EventEmitter }).connection;
  try {
    await q.close();
  } finally {
    connection?.on('error', () => {});
  }
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
