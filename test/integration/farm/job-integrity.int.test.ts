import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builderConfig } from '../../../builder/config.ts';
import { hostArch } from '../../../builder/images/context.ts';
import { startBuildWorkers, type RunningWorkers } from '../../../builder/worker.ts';
import { buildDeps } from '../../../farm/build-deps.ts';
import { buildQueue, buildQueueEvents, enqueueBuild, type QueueSettings } from '../../../queue/index.ts';
import { s3Store } from '../../../store/s3.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';
import { testSigner } from '../../../testkit/signing.ts';

/** Issue 18 item 3: job data rewritten in Redis after enqueue (another app's job, a swapped target). */
describe('job integrity', () => {
  let tmp: string | undefined;
  let workers: RunningWorkers | undefined;
  afterAll(async () => {
    await workers?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('3 jobs whose data was changed in Redis after enqueue: all 3 refused at once, none retried, nothing built or stored', { timeout: 120_000 }, async () => {
    const arch = hostArch();
    const ep = services();
    tmp = await mkdtemp(join(tmpdir(), 'xamal-integrity-'));
    const settings: QueueSettings = { redisUrl: ep.redisUrl, prefix: testPrefix('integrity') };
    const store = s3Store({ ...ep.s3, prefix: `${testPrefix('integrity-s3')}/` });
    const deps = buildDeps({ dockerSocket: ep.dockerSocket, store, cacheDir: join(tmp, 'cache'), workRoot: join(tmp, 'work'), lockPaths: [builderConfig().localLockPath], signer: testSigner() });
    const queue = buildQueue(settings, arch);
    const events = buildQueueEvents(settings, arch);
    try {
      const ids: string[] = [];
      for (const n of ['1', '2', '3']) {
        const { id } = await enqueueBuild(queue, {
          app: 'hello',
          source: { kind: 'git', url: `file://${join(tmp!, 'hello.git')}`, commit: n.repeat(40) },
          target: `linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`,
        });
        const job = (await queue.getJob(id))!;
        // What a process with the farm's Redis could do: point the job at another app's repository.
        // (Both URLs stay on this machine and hold nothing: were the job ever built, its fetch would fail here.)
        await job.updateData({ ...(job.data as object), app: 'victim', source: { kind: 'git', url: `file://${join(tmp!, 'other.git')}`, commit: n.repeat(40) } });
        ids.push(id);
      }
      await events.waitUntilReady();
      workers = await startBuildWorkers(settings, [arch], deps, 1);
      const outcomes = await Promise.all(ids.map(async (id) => (await queue.getJob(id))!.waitUntilFinished(events, 60_000).then(() => 'completed', (e: Error) => e.message)));
      expect(outcomes).toHaveLength(3);
      for (const [i, message] of outcomes.entries()) expect(message).toMatch(new RegExp(`build job ${ids[i]} refused: its data hashes to b[0-9a-f]{32}`));
      const jobs = await Promise.all(ids.map((id) => queue.getJob(id)));
      expect(jobs.map((j) => j?.attemptsMade)).toEqual([1, 1, 1]);
      expect([...(await store.list('artifacts/')), ...(await store.list('logs/'))]).toEqual([]);
      for (const id of ids) expect(await deps.docker.containersWithLabel('org.xamal.job', id)).toEqual([]);
    } finally {
      await events.close();
      await queue.close();
    }
  });
});
