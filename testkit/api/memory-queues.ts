import { buildJobId, BuildJobSchema, type BuildJobInput } from '../../core/contracts/build-job.ts';
import type { BuildQueues, BuildStatus } from '../../queue/index.ts';

/** Build queues in memory: enough of BuildQueues for submit, status and cancel. */
export function memoryQueues() {
  const jobs = new Map<string, BuildJobInput>();
  const cancelled: string[] = [];
  const queues: BuildQueues = {
    enqueue: async (input) => {
      const job = BuildJobSchema.parse(input);
      jobs.set(buildJobId(job), input);
      return { id: buildJobId(job), job };
    },
    status: async (id) => {
      const data = jobs.get(id);
      if (!data) return undefined;
      return { id, arch: 'x86_64', state: 'waiting', phase: undefined, attemptsMade: 0, failedReason: undefined, result: undefined, data, createdAt: 0, startedAt: undefined, finishedAt: undefined } satisfies BuildStatus;
    },
    logs: async () => undefined,
    cancel: async (id) => (jobs.has(id) ? (cancelled.push(id), 'removed') : 'unknown'),
    depth: async () => ({ x86_64: { waiting: 0, active: 0, workers: 1 } }),
    list: async (q) =>
      [...jobs.entries()]
        .filter(([, d]) => (!q.app || d.app === q.app) && q.states.includes('waiting'))
        .map(([id, d]) => ({ id, arch: 'x86_64' as const, app: d.app, target: d.target, state: 'waiting' as const, phase: undefined, failedReason: undefined, createdAt: 0, finishedAt: undefined }))
        .slice(0, q.limit),
    close: async () => {},
  };
  return { queues, cancelled };
}

