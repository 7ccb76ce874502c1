import { describe, expect, it } from 'vitest';
import type { BuildDeps } from '../../../builder/apply.ts';
import { buildProcessor, CANCEL_REQUESTED, interruption, LOCK_LOST } from '../../../builder/worker.ts';
import { buildJobId, BuildJobSchema, type BuildJobInput } from '../../../core/contracts/build-job.ts';
import { UnrecoverableError, type Job } from '../../../queue/index.ts';

const INPUT: BuildJobInput = {
  app: 'hello',
  source: { kind: 'git', url: 'https://git.example/hello.git', commit: 'a'.repeat(40) },
  target: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0',
};

/** A job as BullMQ hands it to the processor; only what the processor reads. */
const fakeJob = (id: string, data: unknown) => ({ id, data, updateProgress: async () => {}, log: async () => 0 }) as unknown as Job;

/** Dependencies that fail the moment a build would really start (the store is the first thing it reads). */
const unreachableDeps = {
  store: {
    get: async () => {
      throw new Error('build started');
    },
  },
} as unknown as BuildDeps;

describe('the build processor', () => {
  const id = buildJobId(BuildJobSchema.parse(INPUT));

  it('refuses, for good, a job whose data no longer hashes to its ID (changed in Redis after enqueue)', async () => {
    const tampered = { ...INPUT, target: 'linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3' };
    const run = buildProcessor(unreachableDeps)(fakeJob(id, tampered));
    await expect(run).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(run).rejects.toThrow(new RegExp(`build job ${id} refused: its data hashes to b[0-9a-f]{32}, so it was changed`));
  });

  it('lets a job whose data matches its ID through to the build', async () => {
    await expect(buildProcessor(unreachableDeps)(fakeJob(id, INPUT))).rejects.toThrow('build started');
  });

  it('refuses data that is not a build job, naming the field', async () => {
    await expect(buildProcessor(unreachableDeps)(fakeJob(id, { ...INPUT, app: 'Not An App' }))).rejects.toThrow(/invalid build job: .*app/);
  });

  it('sweeps the build cache after a build, also one that failed', async () => {
    let sweeps = 0;
    const deps = { ...unreachableDeps, cacheKeeper: { hold: async () => async () => {}, sweep: async () => void sweeps++ } } as BuildDeps;
    await expect(buildProcessor(deps)(fakeJob(id, INPUT))).rejects.toThrow('build started');
    expect(sweeps).toBe(1);
  });
});

describe('a build stopped by its abort signal', () => {
  const id = buildJobId(BuildJobSchema.parse(INPUT));
  const aborted = (reason: string) => {
    const c = new AbortController();
    c.abort(reason);
    return c.signal;
  };

  it('ends, retried, saying the worker lost the job lock when that stopped it', async () => {
    const run = buildProcessor(unreachableDeps)(fakeJob(id, INPUT), 'token', aborted(LOCK_LOST));
    await expect(run).rejects.toMatchObject({ code: 'unavailable' });
    await expect(run).rejects.toThrow("this worker lost the build's job lock in Redis (not renewed within XAMAL_WORKER_LOCK_MS: the worker or Redis stalled), so another worker may run the job; this attempt stopped its containers and ended");
  });

  it('says the worker shut down when that stopped it, and leaves a requested cancel to the build\'s own error', () => {
    expect(interruption('shutdown')?.message).toBe('the worker shut down during this build; it is retried');
    expect(interruption(CANCEL_REQUESTED)).toBeUndefined();
    expect(interruption(undefined)).toBeUndefined();
  });
});
