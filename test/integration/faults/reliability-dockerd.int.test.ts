import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builderConfig } from '../../../builder/config.ts';
import { dockerEngine } from '../../../builder/docker.ts';
import { hostArch } from '../../../builder/images/context.ts';
import { DEFAULT_LIMITS } from '../../../builder/plan.ts';
import { startBuildWorkers, type BuildResult, type RunningWorkers } from '../../../builder/worker.ts';
import { LocalExecutor } from '../../../core/index.ts';
import { buildQueue, buildQueueEvents, enqueueBuild } from '../../../queue/index.ts';
import { s3Store } from '../../../store/s3.ts';
import { readLock } from '../../../images/lock.ts';
import { helloRepo } from '../../../testkit/example-repo.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';
import { testSigner } from '../../../testkit/signing.ts';

/**
 * Issue #10 item 4: dockerd restarted during a build. The test runs its own dockerd (own data root,
 * exec root, socket, pidfile; the builder image pulled into it by digest from the local registry),
 * so the shared engine is never touched.
 */
describe('a dockerd restart during a build', () => {
  let dir: string | undefined;
  let dockerd: ChildProcess | undefined;
  let workers: RunningWorkers | undefined;
  const stopDockerd = async () => {
    const p = dockerd;
    dockerd = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await gone;
  };
  afterAll(async () => {
    await workers?.close();
    await stopDockerd();
    if (dir) await rm(dir, { recursive: true, force: true }).catch(() => {});
  });

  it('ends the attempt cleanly and the retry builds it; no container or volume is left on the engine', { timeout: 600_000 }, async () => {
    const arch = hostArch();
    // Short: unix socket paths are limited to 108 bytes.
    dir = await mkdtemp('/tmp/xamal-dk-');
    const sock = join(dir, 'd.sock');
    const log = await open(join(dir, 'dockerd.log'), 'a');
    const argv = ['--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '-H', `unix://${sock}`, '--pidfile', join(dir, 'd.pid'), '--bridge=none', '--iptables=false', '--ip-masq=false', '--insecure-registry', services().registry];
    const docker = dockerEngine(sock);
    const startDockerd = async () => {
      dockerd = spawn('dockerd', argv, { stdio: ['ignore', log.fd, log.fd] });
      for (let i = 0; i < 300 && !(await docker.ping()); i++) await new Promise((r) => setTimeout(r, 100));
      expect(await docker.ping()).toBe(true);
    };
    await startDockerd();
    const cli = (...args: string[]) => execFileSync('docker', ['-H', `unix://${sock}`, ...args], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);

    const settings = { redisUrl: services().redisUrl, prefix: testPrefix('dockerd-q') };
    const store = s3Store({ ...services().s3, prefix: `${testPrefix('dockerd-s3')}/` });
    const cfg = builderConfig();
    workers = await startBuildWorkers(
      settings,
      [arch],
      { docker, exec: new LocalExecutor(), store, locks: async () => [await readLock(cfg.localLockPath)], cacheDir: join(dir, 'cache'), workRoot: join(dir, 'work'), limits: DEFAULT_LIMITS, depsNetwork: 'none', signer: testSigner() },
      1,
    );
    const queue = buildQueue(settings, arch);
    const events = buildQueueEvents(settings, arch);
    try {
      await events.waitUntilReady();
      const src = await helloRepo(join(dir, 'repo'), { 'lib/slow.ex': 'defmodule Hello.Slow do\n  Process.sleep(15_000)\n  def ok, do: true\nend\n' });
      const tuple = `linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`;
      const { id } = await enqueueBuild(queue, { app: 'hello', source: { kind: 'git', ...src }, target: tuple });
      await new Promise<void>((resolve) =>
        events.on('progress', ({ jobId, data }) => {
          if (jobId === id && (data as { phase?: string }).phase === 'compile') resolve();
        }),
      );
      await new Promise((r) => setTimeout(r, 3_000));
      // The compile container running (the smoke test's, held for later, runs beside it).
      const during = cli('ps', '-q', '--filter', `label=org.xamal.job=${id}`, '--filter', 'label=org.xamal.step=compile');
      const t0 = Date.now();
      await stopDockerd();
      const downMs = Date.now() - t0;
      await startDockerd();
      const result = await (await queue.getJob(id))!.waitUntilFinished(events, 480_000).then(
        (r) => r as BuildResult,
        (e: Error) => e,
      );
      const job = (await queue.getJob(id))!;
      const containers = cli('ps', '-aq');
      const volumes = cli('volume', 'ls', '-q');
      console.log(
        `reliability: dockerd restart during compile (${during.length} compile container running, engine down ${downMs} ms) → ` +
          `${result instanceof Error ? `failed: ${result.message.slice(0, 120)}` : 'completed'} after ${job.attemptsMade} attempts ` +
          `(first failure: ${JSON.stringify(job.stacktrace?.[0]?.split('\n')[0] ?? '')}); ${containers.length} containers, ${volumes.length} volumes left`,
      );
      expect(during).toHaveLength(1);
      expect(result).not.toBeInstanceOf(Error);
      expect(await store.exists((result as BuildResult).manifestKey)).toBe(true);
      expect(job.attemptsMade).toBeGreaterThanOrEqual(2);
      expect(containers).toEqual([]);
      expect(volumes).toEqual([]);
    } finally {
      await events.close();
      await queue.close();
      await log.close();
    }
  });
});
