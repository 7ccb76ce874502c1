import { execFile } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostArch } from '../../../builder/images/context.ts';
import { DEFAULT_LIMITS, type BuildLimits } from '../../../builder/plan.ts';
import { startBuildWorkers, type BuildResult, type RunningWorkers } from '../../../builder/worker.ts';
import { buildQueue, buildQueueEvents, enqueueBuild, type QueueSettings } from '../../../queue/index.ts';
import { s3Store } from '../../../store/s3.ts';
import { helloRepo } from '../../../testkit/example-repo.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';
import { workerBase, type WorkerBase } from '../../../testkit/builder/worker-base.ts';

/** Issue #18 item 6 (limits): a build that prints without end, and a fork bomb, on examples/hello. */

const execFileAsync = promisify(execFile);

/** Prints 1 GiB (1024 × 1 MiB) at compile time, inside the compile container. */
const CHATTY = `defmodule Hello.Chatty do
  line = String.duplicate("x", 1023) <> "\\n"
  chunk = String.duplicate(line, 1024)
  for _ <- 1..1024, do: IO.write(chunk)
  def ok, do: true
end
`;

/** A fork bomb at compile time; its complaints go nowhere, so only the process limit and the clock stop it. */
const FORK_BOMB = `defmodule Hello.ForkBomb do
  :os.cmd('sh -c "f(){ f | f & }; f" >/dev/null 2>&1; sleep 3600')
  def ok, do: true
end
`;

/** Processes on this machine now. */
async function processCount(): Promise<number> {
  const { stdout } = await execFileAsync('ps', ['-e', '--no-headers', '-o', 'pid']);
  return stdout.split('\n').filter(Boolean).length;
}

/** Samples `f` every `ms` until `stop()`; the largest value seen. */
function sampleMax(f: () => Promise<number> | number, ms: number): { stop(): Promise<number> } {
  let max = 0;
  let done = false;
  const loop = (async () => {
    while (!done) {
      max = Math.max(max, await f());
      await new Promise((r) => setTimeout(r, ms));
    }
  })();
  return {
    async stop() {
      done = true;
      await loop;
      return max;
    },
  };
}

describe('limits on what a build may use (issue #18)', () => {
  const arch = hostArch();
  const tuple = `linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`;
  let tmp: string;
  let repoDir: string;
  let base: WorkerBase;
  let running: RunningWorkers[] = [];

  beforeAll(async () => {
    ({ tmp, base } = await workerBase('limits'));
    repoDir = join(tmp, 'repos');
    await mkdir(repoDir, { recursive: true });
  }, 1_800_000);

  afterAll(async () => {
    for (const w of running) await w.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  let n = 0;
  const source = async (extra: Record<string, string>) => ({ kind: 'git' as const, ...(await helloRepo(join(repoDir, `r${n++}`), extra)) });

  /** A worker in this process with `limits`, its queue and events; closed after `body`. */
  async function withWorker(name: string, limits: BuildLimits, body: (q: { queue: ReturnType<typeof buildQueue>; events: ReturnType<typeof buildQueueEvents> }) => Promise<void>) {
    const settings: QueueSettings = { redisUrl: services().redisUrl, prefix: testPrefix(`${name}-q`) };
    const store = s3Store({ ...services().s3, prefix: `${testPrefix(`${name}-s3`)}/` });
    const w = await startBuildWorkers(settings, [arch], { ...base, store, limits }, 1);
    running.push(w);
    const queue = buildQueue(settings, arch);
    const events = buildQueueEvents(settings, arch);
    try {
      await events.waitUntilReady();
      await body({ queue, events });
    } finally {
      await events.close();
      await queue.close();
      await w.close();
      running = running.filter((x) => x !== w);
    }
  }

  it('a compile step printing 1 GiB is killed at the 64 MiB cap with an error saying so, and the worker\'s memory stays bounded', { timeout: 400_000 }, async () => {
    await withWorker('chatty', DEFAULT_LIMITS, async ({ queue, events }) => {
      const src = await source({ 'lib/chatty.ex': CHATTY });
      global.gc?.();
      const before = process.memoryUsage().rss;
      const rss = sampleMax(() => process.memoryUsage().rss, 50);
      const started = Date.now();
      const job = await enqueueBuild(queue, { app: 'hello', source: src, target: tuple });
      const err = await (await queue.getJob(job.id))!.waitUntilFinished(events, 300_000).then(() => undefined, (e: Error) => e);
      const seconds = (Date.now() - started) / 1000;
      const peak = await rss.stop();
      expect(err?.message).toMatch(/^step compile printed more than 64 MiB of output; killed \(XAMAL_MAX_STEP_OUTPUT_BYTES\)/);
      expect((await queue.getJob(job.id))!.attemptsMade).toBe(1);
      expect(await base.docker.containersWithLabel('org.xamal.job', job.id)).toEqual([]);
      const grewMiB = Math.round((peak - before) / 1024 ** 2);
      console.log(`reliability: 1 GiB of compile output → killed at the cap after ${seconds.toFixed(1)} s ("${err!.message.split('\n')[0]}"); worker RSS ${Math.round(before / 1024 ** 2)} MiB before, peak ${Math.round(peak / 1024 ** 2)} MiB (+${grewMiB} MiB)`);
      expect(grewMiB).toBeLessThan(256);
    });
  });

  it('a fork bomb in a build is held at the process limit and fails the build; the machine keeps forking and the worker builds the next job', { timeout: 600_000 }, async () => {
    const limits = { ...DEFAULT_LIMITS, pids: 256, stepTimeoutMs: 25_000 };
    await withWorker('forkbomb', limits, async ({ queue, events }) => {
      const baseline = await processCount();
      const bombSrc = await source({ 'lib/fork_bomb.ex': FORK_BOMB });
      const procs = sampleMax(processCount, 500);
      // The machine stays usable: a fork here, every second, answers within a second.
      const slowest = sampleMax(async () => {
        const t = Date.now();
        await execFileAsync('true', [], { timeout: 10_000 });
        return Date.now() - t;
      }, 1000);
      const bomb = await enqueueBuild(queue, { app: 'hello', source: bombSrc, target: tuple });
      const err = await (await queue.getJob(bomb.id))!.waitUntilFinished(events, 300_000).then(() => undefined, (e: Error) => e);
      const most = await procs.stop();
      const slowestFork = await slowest.stop();
      expect(err?.message).toMatch(/^compile (exceeded its time limit of 25000 ms|failed with exit code \d+)/);
      expect(await base.docker.containersWithLabel('org.xamal.job', bomb.id)).toEqual([]);

      const next = await enqueueBuild(queue, { app: 'hello', source: await source({}), target: tuple });
      const result = (await (await queue.getJob(next.id))!.waitUntilFinished(events, 300_000)) as BuildResult;
      console.log(
        `reliability: fork bomb (PidsLimit 256) → "${err!.message.split('\n')[0]}"; processes on the machine ${baseline} before, at most ${most} during (+${most - baseline}); ` +
          `slowest fork on the machine ${slowestFork} ms; next build ${result.tuple} completed`,
      );
      expect(most - baseline).toBeLessThan(256 + 200);
      expect(slowestFork).toBeLessThan(1000);
    });
  });
});
