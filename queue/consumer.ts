import { UnrecoverableError, Worker, type Job, type Processor } from 'bullmq';
import { buildQueueName } from '../core/contracts/build-job.ts';
import type { Arch } from '../core/index.ts';
import { connectionOptions, type QueueSettings } from './connection.ts';

export type { Job };
export { UnrecoverableError };

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

