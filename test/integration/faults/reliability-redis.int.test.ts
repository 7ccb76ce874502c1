import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { buildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { builderConfig } from '../../../builder/config.ts';
import { dockerEngine } from '../../../builder/docker.ts';
import { hostArch } from '../../../builder/images/context.ts';
import { DEFAULT_LIMITS } from '../../../builder/plan.ts';
import { startBuildWorkers, type RunningWorkers } from '../../../builder/worker.ts';
import { LocalExecutor } from '../../../core/index.ts';
import { buildQueue, buildQueueEvents, buildQueues, enqueueBuild, type QueueSettings } from '../../../queue/index.ts';
import { s3Store } from '../../../store/s3.ts';
import { readLock } from '../../../images/lock.ts';
import { helloRepo, LOCAL_SOURCES } from '../../../testkit/example-repo.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';
import { startOwnRedis, type OwnRedis } from '../../../testkit/redis.ts';
import { testSigner } from '../../../testkit/signing.ts';

/** Issue #10 item 2: a Redis restart (AOF) with builds queued and running, on the test's own redis-server. */

const TOKEN = 'reliability-token-0123456789abcdef';

describe('a Redis restart with builds queued and running', () => {
  let tmp: string | undefined;
  let redis: OwnRedis | undefined;
  let workers: RunningWorkers | undefined;
  let app: FastifyInstance | undefined;
  afterAll(async () => {
    await app?.close();
    await workers?.close();
    await redis?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('loses no job: all complete after the restart; meanwhile the API answers 503 naming Redis within its timeout, then recovers by itself', { timeout: 600_000 }, async () => {
    const arch = hostArch();
    const tuple = `linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`;
    tmp = await mkdtemp(join(tmpdir(), 'xamal-redis-'));
    // The farm's own redis flags (AOF, noeviction), on this test's port and directory.
    redis = await startOwnRedis(tmp);

    const settings: QueueSettings = { redisUrl: redis.url, prefix: testPrefix('redis-q'), timeoutMs: 5_000 };
    const cfg = builderConfig();
    const store = s3Store({ ...services().s3, prefix: `${testPrefix('redis-s3')}/` });
    const locks = async () => [await readLock(cfg.localLockPath)];
    const queues = buildQueues(settings, [arch]);
    app = await buildApp({ token: TOKEN, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(store), builds: buildService({ queues, store, locks, exec: new LocalExecutor(), gitUrls: LOCAL_SOURCES }) } });
    const get = (id: string) => app!.inject({ method: 'GET', url: `/v1/builds/${id}`, headers: { authorization: `Bearer ${TOKEN}` } });

    const queue = buildQueue(settings, arch);
    const events = buildQueueEvents(settings, arch);
    await events.waitUntilReady();
    const ids: string[] = [];
    // The first compiles for 10 s (the restart lands inside it); two more wait behind it.
    const extras: Record<string, string>[] = [{ 'lib/slow.ex': 'defmodule Hello.Slow do\n  Process.sleep(10_000)\n  def ok, do: true\nend\n' }, { 'lib/q1.ex': 'defmodule Hello.Q1 do\nend\n' }, { 'lib/q2.ex': 'defmodule Hello.Q2 do\nend\n' }];
    for (const [i, extra] of extras.entries()) {
      const src = await helloRepo(join(tmp, `repo${i}`), extra);
      ids.push((await enqueueBuild(queue, { app: 'hello', source: { kind: 'git', ...src }, target: tuple })).id);
    }
    const compiling = new Promise<void>((resolve) =>
      events.on('progress', ({ jobId, data }) => {
        if (jobId === ids[0] && (data as { phase?: string }).phase === 'compile') resolve();
      }),
    );
    workers = await startBuildWorkers(
      settings,
      [arch],
      { docker: dockerEngine(services().dockerSocket), exec: new LocalExecutor(), store, locks, cacheDir: join(tmp, 'cache'), workRoot: join(tmp, 'work'), limits: DEFAULT_LIMITS, depsNetwork: 'none', signer: testSigner() },
      1,
    );
    await compiling;
    await events.close();
    await queue.close();

    // Restart: SIGTERM (Redis writes its AOF and exits), a few seconds down, then the same directory again.
    await redis.stop();
    const downAnswers: { status: number; ms: number; message: string }[] = [];
    for (const id of [ids[0]!, ids[2]!]) {
      const t0 = Date.now();
      const r = await get(id);
      downAnswers.push({ status: r.statusCode, ms: Date.now() - t0, message: r.json().message });
    }
    // A cancel refused with 503 must not be carried out later, when Redis is back (it was, once).
    const t1 = Date.now();
    const cancel = await app.inject({ method: 'DELETE', url: `/v1/builds/${ids[2]}`, headers: { authorization: `Bearer ${TOKEN}` } });
    downAnswers.push({ status: cancel.statusCode, ms: Date.now() - t1, message: cancel.json().message });
    await new Promise((r) => setTimeout(r, 2_000));
    await redis.restart();

    // Nothing restarted but Redis: the API and the worker find it again by themselves.
    const deadline = Date.now() + 300_000;
    const states = new Map<string, string>();
    while (Date.now() < deadline) {
      for (const id of ids) {
        const r = await get(id);
        states.set(id, r.statusCode === 200 ? r.json().state : `http ${r.statusCode}`);
      }
      // 404: the job is gone (lost) — no point waiting for it.
      if ([...states.values()].every((s) => s === 'completed' || s === 'failed' || s === 'http 404')) break;
      await new Promise((r) => setTimeout(r, 1_000));
    }
    const completed = [...states.values()].filter((s) => s === 'completed').length;
    console.log(
      `reliability: Redis restart (AOF) with 1 running + 2 queued → ${completed}/${ids.length} completed, ${ids.length - completed} lost; ` +
        `API while down: ${downAnswers.map((a) => `${a.status} in ${a.ms} ms`).join(', ')} ("${downAnswers[0]?.message}")`,
    );
    for (const a of downAnswers) {
      expect(a.status).toBe(503);
      expect(a.message).toMatch(new RegExp(`build queue unavailable: Redis at 127\\.0\\.0\\.1:${redis.port}`));
      expect(a.ms).toBeLessThan(6_000);
    }
    expect(Object.fromEntries(states)).toEqual(Object.fromEntries(ids.map((id) => [id, 'completed'])));
  });
});
