import { BUILD_PHASES, type BuildPhase } from '../core/contracts/build-job.ts';

/**
 * When the crash test (test/integration/faults/build-worker-crash.int.test.ts) SIGKILLs the one
 * build worker it runs: every job is given up front a phase, drawn at random from those each build
 * reports before `done`, and the worker running the job is killed as soon as the job reports that
 * phase (or a later one, should its event be missed). No clock is involved, so however fast a warm
 * build is, `kills` kills land on `kills` distinct jobs.
 *
 * The plan it replaces armed one timer for the whole queue, a random 0–3 s after a progress event,
 * and ignored events while that timer was pending: in a CI run (2026-12-05, its Redis AOF) warm
 * builds took 2.5–3.6 s, four jobs in a row completed before their timer fired (each next job armed
 * late, at `release` or after), only nine of the ten kills could land, and the test waited for the
 * tenth until its 600 s timeout although all 13 builds had completed within 78 s.
 *
 * A job is killed at most once: BullMQ fails a job that stalls more than twice (queue/consumer.ts
 * `maxStalledCount`), and a kill that lands just after its job completed stalls the next one.
 */
export const KILL_PHASES = ['source', 'deps', 'compile', 'release', 'scan', 'upload'] as const satisfies readonly BuildPhase[];
export type KillPhase = (typeof KILL_PHASES)[number];

const order = (phase: string) => (BUILD_PHASES as readonly string[]).indexOf(phase);

export interface WorkerKills {
  /** The phase each job is to be killed in. */
  readonly plan: ReadonlyMap<string, KillPhase>;
  /** Kills so far: the job the killed worker was running and the phase it had reported. */
  readonly killed: readonly { jobId: string; phase: string }[];
  /** `jobId` reported `phase` from the worker now running: true when that worker is to be killed now (recorded as a kill). */
  progress(jobId: string, phase: string): boolean;
  /** `jobId` completed or failed for good: it is no longer killed. */
  finished(jobId: string): void;
  /** Kills are still to make but every job has finished or been killed: no kill will come. */
  exhausted(): boolean;
  /** The jobs that finished without being killed. */
  unkilled(): string[];
}

/** The kill plan for `jobIds`, `kills` of them killed; `random` in [0, 1) draws each job's phase. */
export function workerKills(jobIds: readonly string[], kills: number, random: () => number = Math.random): WorkerKills {
  const plan = new Map(jobIds.map((id) => [id, KILL_PHASES[Math.floor(random() * KILL_PHASES.length)]!] as const));
  const killed: { jobId: string; phase: string }[] = [];
  const done = new Set<string>();
  const isKilled = (id: string) => killed.some((k) => k.jobId === id);
  return {
    plan,
    killed,
    progress(jobId, phase) {
      const at = plan.get(jobId);
      if (!at || killed.length >= kills || done.has(jobId) || isKilled(jobId)) return false;
      if (phase === 'done' || order(phase) < order(at)) return false;
      killed.push({ jobId, phase });
      return true;
    },
    finished: (jobId) => void done.add(jobId),
    exhausted: () => killed.length < kills && jobIds.every((id) => done.has(id) || isKilled(id)),
    unkilled: () => jobIds.filter((id) => done.has(id) && !isKilled(id)),
  };
}
