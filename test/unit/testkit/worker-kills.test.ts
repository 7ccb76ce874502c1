import { describe, expect, it } from 'vitest';
import { KILL_PHASES, workerKills } from '../../../testkit/worker-kills.ts';

/** What every warm build of the crash test reports, in order. */
const BUILD = ['source', 'deps', 'compile', 'release', 'scan', 'upload', 'done'];

/** A seeded draw in [0, 1) (Park–Miller): the same plan on every run. */
function seeded(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 48271) % 2147483647) / 2147483647;
}

/**
 * One worker at a time over a FIFO queue, as the crash test runs them: a killed job goes back to the
 * front of the queue (BullMQ moves a stalled job to the head of `wait`) and the next worker starts.
 * Builds take no time at all here: there is no clock for a kill to lose a race against.
 */
function runQueue(ids: string[], kills: ReturnType<typeof workerKills>): { workers: number; stalls: Map<string, number> } {
  const wait = [...ids];
  const stalls = new Map<string, number>();
  let workers = 1;
  while (wait.length) {
    const job = wait.shift()!;
    const killedAt = BUILD.find((phase) => kills.progress(job, phase));
    if (killedAt) {
      stalls.set(job, (stalls.get(job) ?? 0) + 1);
      wait.unshift(job);
      workers++;
    } else {
      kills.finished(job);
    }
  }
  return { workers, stalls };
}

const jobs = (n: number) => Array.from({ length: n }, (_, i) => `b${i}`);

describe('the crash test kills its worker as a job reports the phase drawn for it', () => {
  it('10 kills land on 10 distinct jobs of 13 however fast the builds are, each at its drawn phase; every job completes', () => {
    for (const seed of [1, 7, 42, 2026]) {
      const ids = jobs(13);
      const kills = workerKills(ids, 10, seeded(seed));
      const { workers, stalls } = runQueue(ids, kills);
      expect(kills.killed).toHaveLength(10);
      expect(new Set(kills.killed.map((k) => k.jobId)).size).toBe(10);
      for (const k of kills.killed) expect(k.phase).toBe(kills.plan.get(k.jobId));
      expect(workers).toBe(11);
      expect(Math.max(...stalls.values())).toBe(1);
      expect(kills.exhausted()).toBe(false);
      expect(kills.unkilled()).toEqual(ids.filter((id) => !stalls.has(id)));
    }
  });

  it('draws every job a phase a build reports before done, all six of them over enough jobs', () => {
    const kills = workerKills(jobs(200), 10, seeded(3));
    expect(new Set(kills.plan.values())).toEqual(new Set(KILL_PHASES));
  });

  it('kills at a later phase when the drawn one was not reported, never at done, never a job twice or one that finished', () => {
    const kills = workerKills(['a', 'b', 'c'], 3, () => KILL_PHASES.indexOf('deps') / KILL_PHASES.length);
    expect(kills.progress('a', 'source')).toBe(false);
    expect(kills.progress('a', 'compile')).toBe(true);
    expect(kills.progress('a', 'compile')).toBe(false);
    expect(kills.progress('b', 'done')).toBe(false);
    kills.finished('b');
    expect(kills.progress('b', 'upload')).toBe(false);
    expect(kills.progress('x', 'upload')).toBe(false);
    expect(kills.killed).toEqual([{ jobId: 'a', phase: 'compile' }]);
  });

  it('stops killing once the count is reached', () => {
    const kills = workerKills(['a', 'b'], 1, () => 0);
    expect(kills.progress('a', 'source')).toBe(true);
    expect(kills.progress('b', 'source')).toBe(false);
    expect(kills.killed).toHaveLength(1);
  });

  it('is exhausted, naming the unkilled jobs, once every job finished or was killed with kills still to make', () => {
    const kills = workerKills(['a', 'b', 'c'], 3, () => 0.99);
    expect(kills.progress('a', 'upload')).toBe(true);
    kills.finished('b');
    expect(kills.exhausted()).toBe(false);
    kills.finished('c');
    expect(kills.exhausted()).toBe(true);
    expect(kills.unkilled()).toEqual(['b', 'c']);
  });
});
