import { buildJobId, BuildJobSchema, type BuildJobInput } from '../../core/contracts/build-job.ts';
import { newestFirst, type BuildQueues, type BuildStatus, type ListedBuild, type ListedState } from '../../queue/index.ts';

interface MemoryJob {
  input: BuildJobInput;
  state: ListedState;
  createdAt: number;
}

/**
 * Build queues in memory: enough of BuildQueues for submit, status, list and cancel. Each job is
 * made one millisecond after the one before (from `clock`, default 1), waiting until `setState`.
 */
export function memoryQueues(clock = 1) {
  const jobs = new Map<string, MemoryJob>();
  const cancelled: string[] = [];
  const listed = (id: string, j: MemoryJob): ListedBuild => ({
    id,
    arch: 'x86_64',
    app: j.input.app,
    target: j.input.target,
    state: j.state,
    phase: undefined,
    failedReason: undefined,
    createdAt: j.createdAt,
    startedAt: undefined,
    finishedAt: undefined,
    data: j.input,
  });
  const queues: BuildQueues = {
    enqueue: async (input) => {
      const job = BuildJobSchema.parse(input);
      const id = buildJobId(job);
      if (!jobs.has(id)) jobs.set(id, { input, state: 'waiting', createdAt: clock++ });
      return { id, job };
    },
    status: async (id) => {
      const j = jobs.get(id);
      if (!j) return undefined;
      return { id, arch: 'x86_64', state: j.state, phase: undefined, attemptsMade: 0, failedReason: undefined, result: undefined, data: j.input, createdAt: j.createdAt, startedAt: undefined, finishedAt: undefined } satisfies BuildStatus;
    },
    logs: async () => undefined,
    cancel: async (id) => (jobs.has(id) ? (cancelled.push(id), 'removed') : 'unknown'),
    depth: async () => ({ x86_64: { waiting: 0, active: 0, workers: 1 } }),
    list: async (q) =>
      [...jobs.entries()]
        .map(([id, j]) => listed(id, j))
        .filter((b) => (!q.app || b.app === q.app) && q.states.includes(b.state) && (!q.where || q.where(b)))
        .sort(newestFirst)
        .slice(0, q.limit),
    close: async () => {},
  };
  /** Moves a job to another state (as a worker would). */
  const setState = (id: string, state: ListedState) => {
    const j = jobs.get(id);
    if (j) j.state = state;
  };
  return { queues, cancelled, setState };
}
