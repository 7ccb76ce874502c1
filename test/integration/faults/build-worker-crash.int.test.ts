import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { builderConfig } from '../../../builder/config.ts';
import { dockerEngine } from '../../../builder/docker.ts';
import { hostArch } from '../../../builder/images/context.ts';
import type { BuildResult } from '../../../builder/worker.ts';
import { ManifestSchema } from '../../../core/contracts/manifest.ts';
import { buildQueue, buildQueueEvents, enqueueBuild } from '../../../queue/index.ts';
import { PROJECT_ROOT } from '../../../localservices/config.ts';
import { s3Store } from '../../../store/s3.ts';
import { helloRepo } from '../../../testkit/example-repo.ts';
import { cliEntry, services, testPrefix } from '../../../testkit/integration.ts';
import { testSigningKey, testSigningKeyPath } from '../../../testkit/signing.ts';
import { workerKills } from '../../../testkit/worker-kills.ts';

/** A real worker process (`xamal farm worker`) on this test's queue prefix and S3 prefix. */
function workerProcess(queuePrefix: string, s3Prefix: string): ChildProcess {
  const s3 = services().s3;
  testSigningKey(); // made on first use: a worker refuses to start without its signing key
  return spawn(process.execPath, [cliEntry(), 'farm', 'worker'], {
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
      XAMAL_SIGNING_KEY_FILE: testSigningKeyPath(),
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
  const procs: ChildProcess[] = [];
  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all(procs.map(exited));
  });

  it('10 workers SIGKILLed in a row, each as its job reports a phase drawn at random: all 13 builds complete, every manifest has its complete tarball, no container or work dir is left', { timeout: 600_000 }, async () => {
    const arch = hostArch();
    const dir = await mkdtemp(join(tmpdir(), 'xamal-crash10-'));
    const KILLS = 10;
    const queuePrefix = testPrefix('crash10-q');
    const s3Prefix = `${testPrefix('crash10-s3')}/`;
    const store = s3Store({ ...services().s3, prefix: s3Prefix });
    const settings = { redisUrl: services().redisUrl, prefix: queuePrefix };
    const queue = buildQueue(settings, arch);
    const events = buildQueueEvents(settings, arch);
    // Every job is awaited at once below (13 waits, each listening for the queue's close).
    queue.setMaxListeners(KILLS + 10);
    events.setMaxListeners(KILLS + 10);
    const docker = dockerEngine(services().dockerSocket);
    const t0 = Date.now();
    try {
      await events.waitUntilReady();
      const tuple = `linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`;
      const ids: string[] = [];
      // More jobs than kills: the last three build untouched.
      for (let i = 0; i < KILLS + 3; i++) {
        const src = await helloRepo(join(dir, `r${i}`), { [`lib/crash${i}.ex`]: `defmodule Hello.Crash${i} do\nend\n` });
        ids.push((await enqueueBuild(queue, { app: 'hello', source: { kind: 'git', ...src }, target: tuple })).id);
      }
      // One worker at a time (concurrency 1): the job it reports progress on is the one it runs. Each
      // job has a phase drawn at random (testkit/worker-kills.ts); the worker is killed as its job
      // reports it, so each kill lands on a job not killed before, however fast the builds are. Should
      // every job finish or be killed with kills still to make, the loop stops (and the count fails).
      const kills = workerKills(ids, KILLS);
      const reported = new Map<string, string>();
      // A failure (a timeout too) says where each job is: its state, the last phase it reported, its kill.
      onTestFailed(async () => {
        const rows = await Promise.all(ids.map(async (id) => {
          const state = await queue.getJob(id).then((j) => j?.getState()).catch(() => 'unknown (queue closed)');
          const killed = kills.killed.find((k) => k.jobId === id);
          return `${id}: ${state}, last phase ${reported.get(id) ?? 'none'}, ${killed ? `killed at ${killed.phase}` : `not killed (planned: ${kills.plan.get(id)})`}`;
        }));
        console.log(`build-worker-crash: the jobs when the test failed\n${rows.join('\n')}`);
      });
      let current: ChildProcess | undefined;
      let wake: (() => void) | undefined;
      events.on('progress', ({ jobId, data }) => {
        const phase = (data as { phase?: string }).phase ?? '?';
        reported.set(jobId, phase);
        if (!current || !kills.progress(jobId, phase)) return;
        current.kill('SIGKILL');
        wake?.();
      });
      const finished = ({ jobId }: { jobId: string }) => {
        kills.finished(jobId);
        if (kills.exhausted()) wake?.();
      };
      events.on('completed', finished);
      events.on('failed', finished);
      while (kills.killed.length < KILLS && !kills.exhausted() && Date.now() - t0 < 300_000) {
        const proc = (current = workerProcess(queuePrefix, s3Prefix));
        procs.push(proc);
        await new Promise<void>((resolve) => {
          wake = resolve;
          proc.once('exit', () => resolve());
        });
        if (kills.exhausted()) break;
        await exited(proc);
        current = undefined;
      }
      const unkilled = kills.unkilled().map((id) => `${id} (planned: ${kills.plan.get(id)})`);
      expect(kills.killed, `jobs that finished unkilled: ${unkilled.join(', ')}`).toHaveLength(KILLS);
      const last = workerProcess(queuePrefix, s3Prefix);
      procs.push(last);
      const results = await Promise.all(ids.map(async (id) => ((await (await queue.getJob(id))!.waitUntilFinished(events, 480_000)) as BuildResult)));
      last.kill('SIGTERM');
      await exited(last);
      expect(last.exitCode).toBe(0);

      // Every manifest in the store names a tarball that is there, whole (its sha256).
      const manifests = (await store.list('artifacts/hello/')).filter((k) => k.endsWith('/manifest.json'));
      let complete = 0;
      for (const key of manifests) {
        const m = ManifestSchema.parse(JSON.parse((await store.get(key))!.toString('utf8')));
        const tarball = await store.get(m.tarball.key);
        if (tarball && createHash('sha256').update(tarball).digest('hex') === m.tarball.sha256) complete++;
      }
      const orphans = (await Promise.all(ids.map((id) => docker.containersWithLabel('org.xamal.job', id)))).flat();
      const workRoot = builderConfig().workRoot;
      const leftDirs = (await readdir(workRoot).catch(() => [] as string[])).filter((d) => ids.some((id) => d.startsWith(`${id}-`)));
      const phases = kills.killed.reduce<Record<string, number>>((acc, k) => ((acc[k.phase] = (acc[k.phase] ?? 0) + 1), acc), {});
      console.log(
        `reliability: worker SIGKILL x${kills.killed.length} (phases ${JSON.stringify(phases)}) → ${results.length}/${ids.length} complete, ` +
          `${manifests.length - complete} manifests without a complete artifact, ${orphans.length} orphan containers, ${leftDirs.length} work dirs left, ${Math.round((Date.now() - t0) / 1000)} s`,
      );
      expect(results.map((r) => r.tuple)).toEqual(ids.map(() => tuple));
      expect(manifests).toHaveLength(ids.length);
      expect(complete).toBe(manifests.length);
      expect(orphans).toEqual([]);
      expect(leftDirs).toEqual([]);
    } finally {
      await events.close();
      await queue.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
