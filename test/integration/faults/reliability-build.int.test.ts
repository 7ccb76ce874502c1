import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostArch } from '../../../builder/images/context.ts';
import { DEFAULT_LIMITS } from '../../../builder/plan.ts';
import { startBuildWorkers, type BuildResult, type RunningWorkers } from '../../../builder/worker.ts';
import { buildQueue, buildQueueEvents, enqueueBuild, type QueueSettings } from '../../../queue/index.ts';
import { s3Store } from '../../../store/s3.ts';
import type { ObjectStore } from '../../../store/store.ts';
import { helloRepo } from '../../../testkit/example-repo.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';
import { workerBase, type WorkerBase } from '../../../testkit/builder/worker-base.ts';
import { freePort } from '../../../testkit/redis.ts';

/** Issue #10 items 12 (build isolation) and 3 (store unavailable during upload), on examples/hello. */

const MEMORY = 768 * 1024 ** 2;

/** Module bodies run at compile time, inside the compile container: they report what they can see. */
const PROBE = (dockerSocket: string) => `defmodule Hello.IsolationProbe do
  uid = :os.cmd('id -u') |> to_string() |> String.trim()
  {:ok, ifs} = :inet.getifaddrs()
  ifaces = ifs |> Enum.map(fn {n, _} -> to_string(n) end) |> Enum.join(",")
  status = File.read!("/proc/self/status")
  [cap] = Regex.run(~r/CapEff:\\s*(\\w+)/, status, capture: :all_but_first)
  [nnp] = Regex.run(~r/NoNewPrivs:\\s*(\\d)/, status, capture: :all_but_first)
  sockets = Enum.filter(["/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock", ${JSON.stringify(dockerSocket)}], &File.exists?/1)
  # Mount points (5th field of mountinfo) that are sockets or socket directories of an engine.
  mounted = File.read!("/proc/self/mountinfo") |> String.split("\\n", trim: true) |> Enum.map(&Enum.at(String.split(&1, " "), 4)) |> Enum.filter(&(&1 =~ ~r/\\.sock$|docker\\.sock|containerd|\\/run\\/docker/)) |> length()
  limit =
    case File.read("/sys/fs/cgroup/memory/memory.limit_in_bytes") do
      {:ok, v} -> String.trim(v)
      _ -> File.read!("/sys/fs/cgroup/memory.max") |> String.trim()
    end
  IO.puts("xamal-isolation uid=#{uid} ifaces=#{ifaces} capeff=#{cap} nnp=#{nnp} sockets=#{length(sockets)} sockmounts=#{mounted} memlimit=#{limit}")
  def ok, do: true
end
`;

/** Allocates (and touches) 2 GB at compile time, past the 768 MiB limit. */
const HOG = `defmodule Hello.MemoryHog do
  big = :binary.copy("xxxxxxxx", 250_000_000)
  IO.puts("allocated #{byte_size(big)} bytes")
  def ok, do: true
end
`;

/** This test's own s3rver (the shared one is never stopped), on a fixed port and directory so it can come back. */
class OwnS3 {
  proc: ChildProcess | undefined;
  constructor(readonly port: number, readonly dir: string, readonly bucket: string) {}
  get endpoint() {
    return `http://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    const bin = join(process.cwd(), 'node_modules/s3rver/bin/s3rver.js');
    this.proc = spawn(process.execPath, [bin, '--address', '127.0.0.1', '--port', String(this.port), '--directory', this.dir, '--configure-bucket', this.bucket, '--silent'], { stdio: 'ignore' });
    for (let i = 0; i < 150; i++) {
      const ok = await fetch(`${this.endpoint}/${this.bucket}?location`).then((r) => r.status === 200, () => false);
      if (ok) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('own s3rver did not come up');
  }
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await gone;
  }
}

describe('reliability of builds (issue #10)', () => {
  const arch = hostArch();
  const tuple = `linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`;
  let tmp: string;
  let repoDir: string;
  let base: WorkerBase;
  let running: RunningWorkers[] = [];
  let s3: OwnS3 | undefined;

  beforeAll(async () => {
    ({ tmp, base } = await workerBase('rel'));
    repoDir = join(tmp, 'repos');
    await mkdir(repoDir, { recursive: true });
  }, 1_800_000);

  afterAll(async () => {
    for (const w of running) await w.close();
    await s3?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  let n = 0;
  const source = async (extra: Record<string, string>) => ({ kind: 'git' as const, ...(await helloRepo(join(repoDir, `r${n++}`), extra)) });

  it('isolates the compile step (non-root, no capabilities, no network, no Docker socket, memory limit) and fails a build past its memory limit with an OOM reason; the worker builds the next job', { timeout: 400_000 }, async () => {
    const settings: QueueSettings = { redisUrl: services().redisUrl, prefix: testPrefix('iso-q') };
    const store = s3Store({ ...services().s3, prefix: `${testPrefix('iso-s3')}/` });
    const w = await startBuildWorkers(settings, [arch], { ...base, store, limits: { ...DEFAULT_LIMITS, memoryBytes: MEMORY } }, 1);
    running.push(w);
    const queue = buildQueue(settings, arch);
    const events = buildQueueEvents(settings, arch);
    try {
      await events.waitUntilReady();
      const hog = await enqueueBuild(queue, { app: 'hello', source: await source({ 'lib/memory_hog.ex': HOG }), target: tuple });
      await expect((await queue.getJob(hog.id))!.waitUntilFinished(events, 240_000)).rejects.toThrow(
        /compile ran out of memory: the kernel killed it at its memory limit of 768 MiB/,
      );
      const failed = (await queue.getJob(hog.id))!;
      expect(failed.attemptsMade).toBe(1);
      expect(await base.docker.containersWithLabel('org.xamal.job', hog.id)).toEqual([]);

      // The same worker, still up, builds the next job; its compile step reports what it could reach.
      const probe = await enqueueBuild(queue, { app: 'hello', source: await source({ 'lib/isolation_probe.ex': PROBE(services().dockerSocket) }), target: tuple });
      const result = (await (await queue.getJob(probe.id))!.waitUntilFinished(events, 240_000)) as BuildResult;
      const log = (await store.get(`logs/${probe.id}.log`))!.toString('utf8');
      const line = /xamal-isolation (.*)/.exec(log)?.[1] ?? '';
      const seen = Object.fromEntries(line.split(' ').map((kv) => kv.split('=') as [string, string]));
      const checks = {
        'non-root (uid 1000)': seen.uid === '1000',
        'no network (loopback only)': seen.ifaces === 'lo',
        'no capabilities': /^0+$/.test(seen.capeff ?? ''),
        'no-new-privileges': seen.nnp === '1',
        'no Docker/containerd socket': seen.sockets === '0' && seen.sockmounts === '0',
        'memory limit 768 MiB': seen.memlimit === String(MEMORY),
      };
      console.log(`reliability: build isolation → ${Object.values(checks).filter(Boolean).length}/${Object.keys(checks).length} checks held (${line}); OOM fixture → failed once with "ran out of memory", worker then built ${result.tuple}`);
      expect(checks).toEqual(Object.fromEntries(Object.keys(checks).map((k) => [k, true])));
    } finally {
      await events.close();
      await queue.close();
      await w.close();
      running = running.filter((x) => x !== w);
    }
  });

  it('store down during upload: retried with backoff, succeeds when it returns; stays down → fails clearly with no manifest, and the retry succeeds once it is back', { timeout: 400_000 }, async () => {
    s3 = new OwnS3(await freePort(), join(tmp, 's3'), 'reliability');
    await s3.start();
    const real = s3Store({ endpoint: s3.endpoint, region: 'us-east-1', bucket: s3.bucket, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
    // Fault injection around the real store: the first upload of a job takes the store down first.
    let mode: 'back-after-failure' | 'stays-down' | 'off' = 'off';
    const attempts: number[] = [];
    const store: ObjectStore = {
      ...real,
      get: (key) => {
        if (key.endsWith('/manifest.json')) attempts.push(Date.now());
        return real.get(key);
      },
      putFile: async (key, path, type) => {
        if (mode !== 'off') {
          const m = mode;
          mode = 'off';
          await s3!.stop();
          // The upload runs against the dead store; for 'back-after-failure' it returns right after.
          try {
            return await real.putFile(key, path, type);
          } finally {
            if (m === 'back-after-failure') await s3!.start();
          }
        }
        return real.putFile(key, path, type);
      },
    };
    const settings: QueueSettings = { redisUrl: services().redisUrl, prefix: testPrefix('s3-q') };
    const w = await startBuildWorkers(settings, [arch], { ...base, store, limits: DEFAULT_LIMITS }, 1);
    running.push(w);
    const queue = buildQueue(settings, arch);
    const events = buildQueueEvents(settings, arch);
    try {
      await events.waitUntilReady();
      // A: the store is down during the upload and back right after; the next attempt (after backoff) succeeds.
      mode = 'back-after-failure';
      const a = await enqueueBuild(queue, { app: 'hello', source: await source({}), target: tuple });
      const ra = (await (await queue.getJob(a.id))!.waitUntilFinished(events, 240_000)) as BuildResult;
      const aAttempts = attempts.splice(0);
      expect(aAttempts).toHaveLength(2);
      expect(aAttempts[1]! - aAttempts[0]!).toBeGreaterThanOrEqual(2_000);
      expect(await real.exists(ra.manifestKey)).toBe(true);

      // B: the store goes down during the upload and stays down: every attempt fails, backing off.
      mode = 'stays-down';
      const bsrc = await source({ 'lib/b.ex': 'defmodule Hello.B do\nend\n' });
      const b = await enqueueBuild(queue, { app: 'hello', source: bsrc, target: tuple });
      const err = await (await queue.getJob(b.id))!.waitUntilFinished(events, 240_000).then(() => undefined, (e: Error) => e);
      expect(err?.message).toMatch(/^store: get artifacts\/hello\/[0-9a-f]{40}\/.*manifest\.json failed: .*ECONNREFUSED/);
      const failed = (await queue.getJob(b.id))!;
      expect(failed.attemptsMade).toBe(3);
      const bAttempts = attempts.splice(0);
      expect(bAttempts).toHaveLength(3);
      const gaps = bAttempts.slice(1).map((t, i) => t - bAttempts[i]!);
      expect(gaps[0]).toBeGreaterThanOrEqual(2_000);
      expect(gaps[1]).toBeGreaterThanOrEqual(4_000);

      // Back up: nothing of B is visible as an artifact (no manifest), and the retried job succeeds.
      await s3.start();
      expect((await real.list(`artifacts/hello/${bsrc.commit}/`)).filter((k) => k.endsWith('/manifest.json'))).toEqual([]);
      await failed.retry();
      const rb = (await (await queue.getJob(b.id))!.waitUntilFinished(events, 240_000)) as BuildResult;
      expect(await real.exists(rb.manifestKey)).toBe(true);
      console.log(
        `reliability: store down during upload → A: ${aAttempts.length} attempts (gap ${aAttempts[1]! - aAttempts[0]!} ms), completed; ` +
          `B stays down: failed after 3 attempts (gaps ${gaps.join(', ')} ms) "${err!.message.slice(0, 90)}…", 0 manifests visible, retry after return → completed`,
      );
    } finally {
      await events.close();
      await queue.close();
      await w.close();
      running = running.filter((x) => x !== w);
    }
  });
});
