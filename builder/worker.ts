import { formatIssues, isXamalError, issuesFromZod, XamalError, type Arch, type ErrorCode, type Logger } from '../core/index.ts';
import { buildJobId, BuildJobSchema, type BuildResult } from '../core/contracts/build-job.ts';
import { artifactGeneration, createWorker, subscribeCancels, UnrecoverableError, type Job, type QueueSettings } from '../queue/index.ts';
import { runBuild, type BuildDeps } from './apply.ts';

/** The abort reason of builds cancelled because their worker stops. */
const SHUTDOWN = 'shutdown';
/** The abort reason of a build whose job lock this worker could not renew: the job is no longer its own. */
export const LOCK_LOST = 'lock-lost';
/** The abort reason of a build cancelled on request (POST …/cancel, through queue/cancel.ts). */
export const CANCEL_REQUESTED = 'cancelled';

/**
 * Pure: the error a build stopped by its abort signal ends with, by the signal's reason; undefined
 * for a cancel requested by a user (the build's own `cancelled` error says during which step).
 */
export function interruption(reason: unknown): XamalError | undefined {
  if (reason === SHUTDOWN) return new XamalError('unavailable', 'the worker shut down during this build; it is retried');
  if (reason === LOCK_LOST) {
    return new XamalError('unavailable', "this worker lost the build's job lock in Redis (not renewed within XAMAL_WORKER_LOCK_MS: the worker or Redis stalled), so another worker may run the job; this attempt stopped its containers and ended");
  }
  return undefined;
}

/** Failures that another attempt cannot fix. */
const FINAL: readonly ErrorCode[] = ['validation', 'unsupported', 'build_failed', 'forbidden', 'usage', 'cancelled', 'conflict'];

export type { BuildResult };

/**
 * The BullMQ processor: validate the contract and the job's integrity, run the build, classify failures. `stored` runs after
 * the artifact is in the store (built or found), before the job completes.
 */
export function buildProcessor(deps: BuildDeps, logger?: Logger, stored?: () => Promise<void>) {
  return async (job: Job, _token?: string, signal?: AbortSignal): Promise<BuildResult> => {
    const parsed = BuildJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid build job: ${formatIssues(issuesFromZod(parsed.error))}`);
    // A job's ID is the hash of its data (enqueueBuild): data changed in Redis after it was enqueued
    // (another app's job rewritten, a target swapped) no longer matches, and is never built.
    const expected = buildJobId(parsed.data);
    if (job.id !== expected) {
      logger?.error({ jobId: job.id, expected }, 'build job refused: its data does not match its ID');
      throw new UnrecoverableError(`build job ${job.id} refused: its data hashes to ${expected}, so it was changed after it was enqueued`);
    }
    try {
      const out = await runBuild(deps, parsed.data, {
        phase: (phase) => job.updateProgress({ phase }),
        log: async (line) => void (await job.log(line)),
      }, signal);
      logger?.info({ jobId: job.id, tuple: out.manifest.tuple, cached: out.cached }, 'build finished');
      await stored?.();
      return { manifestKey: out.manifestKey, tuple: out.manifest.tuple, sha256: out.manifest.tarball.sha256, cached: out.cached };
    } catch (err) {
      // A worker stopping mid-build, or losing the job's lock, stops it: not the build's fault, so the job is retried.
      const interrupted = signal?.aborted ? interruption(signal.reason) : undefined;
      if (interrupted) {
        logger?.warn({ jobId: job.id, reason: signal?.reason }, `build interrupted: ${interrupted.message}`);
        throw interrupted;
      }
      const cause = (err as Error).cause;
      logger?.warn({ jobId: job.id, err: (err as Error).message, ...(cause instanceof Error ? { cause: cause.message } : {}) }, 'build failed');
      if (isXamalError(err) && FINAL.includes(err.code)) throw new UnrecoverableError(err.message);
      throw err;
    } finally {
      // After each build the cache goes back within its size and age limits, without holding up the job.
      void deps.cacheKeeper?.sweep(logger);
    }
  };
}

export interface RunningWorkers {
  /** Stops taking jobs and waits for the builds in flight to finish. */
  close(): Promise<void>;
  /**
   * Stops now: builds in flight are cancelled (their containers killed) and the workers close without
   * waiting for them; each job stays active in the queue until its lock expires, then another
   * worker picks it up.
   */
  force(): Promise<void>;
}

/** Consumes the per-platform queues of the arches this machine can build; honours cancel requests. */
export async function startBuildWorkers(settings: QueueSettings, arches: readonly Arch[], deps: BuildDeps, concurrency: number, logger?: Logger): Promise<RunningWorkers> {
  // API processes keep artifact listings until this moves: moved after every artifact, also one found
  // already stored (its first worker may have died between the manifest and the move).
  const generation = artifactGeneration(settings);
  const stored = () => generation.bump().catch((err: Error) => logger?.warn({ err: err.message }, 'artifact generation not moved (API listings refresh within 30 s)'));
  const processor = buildProcessor(deps, logger, stored);
  // Entries left unused or over the limit while no worker ran go now, without delaying the start.
  void deps.cacheKeeper?.sweep(logger);
  const workers = arches.map((arch) => createWorker(settings, arch, processor, concurrency));
  // Redis going away is reported here (BullMQ reconnects by itself); unlistened, it goes to console.error.
  for (const w of workers) w.on('error', (err) => logger?.warn({ err: err.message }, 'build queue connection error'));
  const cancels = await subscribeCancels(settings, (jobId) => {
    for (const w of workers) if (w.cancelJob(jobId, CANCEL_REQUESTED)) logger?.info({ jobId }, 'build cancel requested');
  });
  // BullMQ keeps running a job whose lock it could not renew (it aborts nothing); the job may be
  // another worker's by now, whose attempt removes this one's containers: stop it here first.
  for (const w of workers) {
    w.on('lockRenewalFailed', (jobIds) => {
      for (const jobId of jobIds) if (w.cancelJob(jobId, LOCK_LOST)) logger?.warn({ jobId }, 'build stopped: its job lock could not be renewed');
    });
  }
  const closeAll = async (force: boolean) => {
    await cancels.close();
    await Promise.all(workers.map((w) => w.close(force)));
    await generation.close();
  };
  return {
    close: () => closeAll(false),
    async force() {
      for (const w of workers) w.cancelAllJobs(SHUTDOWN);
      await closeAll(true);
    },
  };
}
