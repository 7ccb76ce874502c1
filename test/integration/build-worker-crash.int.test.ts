import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dockerEngine } from '../../builder/docker.ts';
import { hostArch } from '../../builder/images/context.ts';
import type { BuildResult } from '../../builder/worker.ts';
import { buildQueue, buildQueueEvents, enqueueBuild } from '../../core/queue.ts';
import { PROJECT_ROOT } from '../../core/services/config.ts';
import { s3Store } from '../../core/storage/s3.ts';
import { helloRepo } from './fixtures.ts';
import { services, testPrefix } from './support.ts';

/** A real worker process (`xamal farm worker`) on this test's queue prefix and S3 prefix. */
function workerProcess(queuePrefix: string, s3Prefix: string): ChildProcess {
  const s3 = services().s3;
  return spawn(process.execPath, [join(PROJECT_ROOT, 'bin/xamal.mjs'), 'farm', 'worker'], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: Object.fromEntries(Object.entries({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      XAMAL_STATE_DIR: process.env.XAMAL_STATE_DIR,
      XAMAL_CACHE_DIR: process.env.XAMAL_CACHE_DIR,
      XAMAL_REGISTRY_PORT: process.env.XAMAL_REGISTRY_PORT,
      XAMAL_REDIS_URL: services().redisUrl,
      XAMAL_QUEUE_PREFIX: queuePrefix,
      XAMAL_WORKER_LOCK_MS: '4000',
      XAMAL_S3_BUCKET: s3.bucket,
      XAMAL_S3_ENDPOINT: s3.endpoint,
      XAMAL_S3_ACCESS_KEY_ID: s3.accessKeyId,
      XAMAL_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      XAMAL_S3_FORCE_PATH_STYLE: '1',
      XAMAL_S3_PREFIX: s3Prefix,
      XAMAL_LOG_LEVEL: 'warn',
    }).filter(([, v]) => v !== undefined)),
  });
}

const exited = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));

describe('a worker killed mid-build', () => {
  let tmp: string | undefined;
  const procs: ChildProcess[] = [];
  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all(procs.map(exited));
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('is replaced: another worker finishes the job, no manifest exists before, no container is left after', { timeout: 600_000 }, async () => {
    const arch = hostArch();
    tmp = await mkdtemp(join(tmpdir(), 'xamal-crash-'));
    // Compiling this module takes 10 s, so the kill lands inside the compile step.
    const src = await helloRepo(join(tmp, 'repo'), { 'lib/slow.ex': 'defmodule Hello.Slow do\n  Process.sleep(10_000)\n  def ok, do: true\nend\n' });
    const queuePrefix = testPrefix('crash-q');
    const s3Prefix = `${testPrefix('crash-s3')}/`;
    const store = s3Store({ ...services().s3, prefix: s3Prefix });
    const settings = { redisUrl: services().redisUrl, prefix: queuePrefix };
    const queue = buildQueue(settings, arch);
    const events = buildQueueEvents(settings, arch);
    const docker = dockerEngine(services().dockerSocket);
    try {
      await events.waitUntilReady();
      const tuple = `linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`;
      const { id } = await enqueueBuild(queue, { app: 'hello', source: { kind: 'git', ...src }, target: tuple });
      const compiling = new Promise<void>((resolve) =>
        events.on('progress', ({ jobId, data }) => {
          if (jobId === id && (data as { phase?: string }).phase === 'compile') resolve();
        }),
      );
      const first = workerProcess(queuePrefix, s3Prefix);
      procs.push(first);
      await compiling;
      await new Promise((r) => setTimeout(r, 2_000));
      first.kill('SIGKILL');
      await exited(first);
      expect(await docker.containersWithLabel('org.xamal.job', id)).not.toEqual([]);
      expect(await store.list(`artifacts/hello/${src.commit}/`)).toEqual([]);

      const second = workerProcess(queuePrefix, s3Prefix);
      procs.push(second);
      const result = (await (await queue.getJob(id))!.waitUntilFinished(events, 480_000)) as BuildResult;
      expect(result.tuple).toBe(tuple);
      const keys = await store.list(`artifacts/hello/${src.commit}/`);
      expect(keys.some((k) => k.endsWith('/manifest.json'))).toBe(true);
      expect(keys.some((k) => k.endsWith('.tar.gz'))).toBe(true);
      expect(await docker.containersWithLabel('org.xamal.job', id)).toEqual([]);
      second.kill('SIGTERM');
      await exited(second);
      expect(second.exitCode).toBe(0);
    } finally {
      await events.close();
      await queue.close();
    }
  });
});
