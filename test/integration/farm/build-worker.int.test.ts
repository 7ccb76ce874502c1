import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBuild, type BuildDeps } from '../../../builder/apply.ts';
import { builderConfig } from '../../../builder/config.ts';
import { dockerEngine, type DockerEngine } from '../../../builder/docker.ts';
import { egressProxy } from '../../../builder/egress.ts';
import { buildImage } from '../../../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../../../builder/images/context.ts';
import { DEFAULT_LIMITS } from '../../../builder/plan.ts';
import { startBuildWorkers, type BuildResult, type RunningWorkers } from '../../../builder/worker.ts';
import { LocalExecutor, parseTargetOrThrow } from '../../../core/index.ts';
import { ManifestSchema } from '../../../core/contracts/manifest.ts';
import { buildQueue, buildQueueEvents, cancelBuild, enqueueBuild } from '../../../queue/index.ts';
import { s3Store } from '../../../store/s3.ts';
import type { ObjectStore } from '../../../store/store.ts';
import { readLock, splitRef, type LockEntry } from '../../../images/lock.ts';
import { git, helloRepo } from '../../../testkit/example-repo.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';
import { testSigner } from '../../../testkit/signing.ts';

/** A docker engine that counts the containers it starts, run at once or held for a later step (to prove cached builds start none). */
function counting(engine: DockerEngine): DockerEngine & { runs: number } {
  const c = Object.assign(Object.create(null), engine, { runs: 0 }) as DockerEngine & { runs: number };
  c.run = async (spec, signal, options) => {
    c.runs++;
    return engine.run(spec, signal, options);
  };
  c.startHeld = async (spec) => {
    c.runs++;
    return engine.startHeld(spec);
  };
  return c;
}

describe('build workers: a real mix release in a pinned image', () => {
  const arch = hostArch();
  let tmp: string;
  let repo: string;
  let commit: string;
  let store: ObjectStore;
  let docker: DockerEngine & { runs: number };
  let deps: BuildDeps;
  let runtime: LockEntry;
  let workers: RunningWorkers | undefined;

  beforeAll(async () => {
    const ep = services();
    const cfg = { ...builderConfig(), dockerSocket: ep.dockerSocket, registry: ep.registry };
    const images = imageBuildDeps(cfg, (l) => process.stderr.write(`[images] ${l}\n`));
    await buildImage(images, { suite: 'bookworm', arch, flavour: 'builder' });
    runtime = (await buildImage(images, { suite: 'bookworm', arch, flavour: 'runtime' })).entry;

    tmp = await mkdtemp(join(tmpdir(), 'xamal-build-'));
    repo = join(tmp, 'repo');
    ({ commit } = await helloRepo(repo));

    store = s3Store({ ...ep.s3, prefix: `${testPrefix('build')}/` });
    docker = counting(dockerEngine(ep.dockerSocket));
    deps = {
      docker,
      exec: new LocalExecutor(),
      store,
      locks: async () => [await readLock(cfg.localLockPath)],
      cacheDir: join(tmp, 'cache'),
      workRoot: join(tmp, 'work'),
      limits: DEFAULT_LIMITS,
      depsNetwork: 'egress',
      signer: testSigner(),
      egress: egressProxy({ dir: join(tmp, 'egress'), allow: [] }),
    };
  }, 1_800_000);

  afterAll(async () => {
    await workers?.close();
    await deps?.egress?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('builds examples/hello for bookworm through the queue; the tarball boots in a bookworm runtime and answers /up; the next commit skips the deps step', { timeout: 600_000 }, async () => {
    const settings = { redisUrl: services().redisUrl, prefix: testPrefix('queue') };
    workers = await startBuildWorkers(settings, [arch], deps, 1);
    const queue = buildQueue(settings, arch);
    const events = buildQueueEvents(settings, arch);
    try {
      const tuple = `linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`;
      const { id } = await enqueueBuild(queue, { app: 'hello', source: { kind: 'git', url: `file://${repo}`, commit }, target: tuple });
      const job = (await queue.getJob(id))!;
      const result = (await job.waitUntilFinished(events, 480_000)) as BuildResult;
      expect(result.cached).toBe(false);

      const manifest = ManifestSchema.parse(JSON.parse((await store.get(result.manifestKey))!.toString('utf8')));
      expect(manifest).toMatchObject({ app: 'hello', release: 'hello', releaseVersion: '0.1.0', version: commit, tuple, mixEnv: 'prod' });
      expect(manifest.glibcNeeded).toBe('2.34');
      expect(manifest.sonames).toEqual(expect.arrayContaining(['libc.so.6', 'libtinfo.so.6']));
      const tarball = (await store.get(manifest.tarball.key))!;
      expect(createHash('sha256').update(tarball).digest('hex')).toBe(manifest.tarball.sha256);
      expect((await store.get(`${manifest.tarball.key}.sha256`))!.toString()).toContain(manifest.tarball.sha256);
      expect((await store.get(manifest.logKey))!.toString()).toContain('==> compile');

      // Boot it where it is meant to run: a bookworm runtime container (no Elixir, no Erlang).
      const rel = join(tmp, 'rel');
      await mkdir(rel, { recursive: true });
      await writeFile(join(tmp, 'rel.tar.gz'), tarball);
      execFileSync('tar', ['-xzf', join(tmp, 'rel.tar.gz'), '-C', rel]);
      const script = [
        'PORT=4000 RELEASE_DISTRIBUTION=none RELEASE_TMP=/tmp XAMAL_REVISION=test /rel/bin/hello start > /tmp/out.log 2>&1 &',
        'for i in $(seq 1 100); do curl -fsS http://127.0.0.1:4000/up && exit 0; sleep 0.2; done',
        'cat /tmp/out.log; exit 1',
      ].join('\n');
      const runtimeRef = `${splitRef(runtime.ref).repository}@${runtime.digest}`;
      const boot = await docker.run({ image: runtimeRef, cmd: ['sh', '-c', script], networkMode: 'none', binds: [`${rel}:/rel:ro`], timeoutMs: 120_000 });
      expect(boot.code, boot.stdout + boot.stderr).toBe(0);
      expect(JSON.parse(boot.stdout)).toMatchObject({ status: 'ok', app: 'hello', version: '0.1.0', revision: 'test' });

      // The identical request again: the same job, answered from the store, no container started.
      const before = docker.runs;
      const again = await enqueueBuild(queue, { app: 'hello', source: { kind: 'git', url: `file://${repo}`, commit }, target: tuple });
      expect(again.id).toBe(id);
      const direct = await runBuild(deps, again.job, { phase: () => {}, log: () => {} });
      expect(direct.cached).toBe(true);
      expect(direct.manifest.tarball.sha256).toBe(manifest.tarball.sha256);
      expect(docker.runs).toBe(before);

      // The next commit (same mix.exs, no mix.lock, same image): deps were fetched for exactly these
      // inputs, so only compile and smoke start containers.
      const next = await variant('next', { 'lib/hello/extra.ex': 'defmodule Hello.Extra do\n  def x, do: 1\nend\n' });
      const lines: string[] = [];
      const warm = await runBuild(deps, { app: 'hello', source: { kind: 'git', url: next.url, commit: next.commit }, target: parseTargetOrThrow(tuple), mixEnv: 'prod' }, { phase: () => {}, log: (l) => void lines.push(l) });
      expect(warm.cached).toBe(false);
      expect(lines.join('\n')).toMatch(/==> deps: skipped \(fetched before with this mix\.lock, mix\.exs and image/);
      expect(docker.runs - before).toBe(2);
    } finally {
      await events.close();
      await queue.close();
    }
  });

  /** A commit of examples/hello plus extra files, in its own repo. */
  async function variant(name: string, files: Record<string, string>): Promise<{ url: string; commit: string }> {
    const dir = join(tmp, name);
    await cp(repo, dir, { recursive: true });
    for (const [path, text] of Object.entries(files)) await writeFile(join(dir, path), text);
    git(dir, 'add', '-A');
    git(dir, 'commit', '-q', '-m', name);
    return { url: `file://${dir}`, commit: git(dir, 'rev-parse', 'HEAD') };
  }

  it('fails a build with a compile error once (no retry), with the log tail in the error, and stores nothing', { timeout: 300_000 }, async () => {
    const settings = { redisUrl: services().redisUrl, prefix: testPrefix('queue-fail') };
    const w = await startBuildWorkers(settings, [arch], deps, 1);
    const queue = buildQueue(settings, arch);
    const events = buildQueueEvents(settings, arch);
    try {
      const src = await variant('broken', { 'lib/broken.ex': 'defmodule Hello.Broken do\n  def oops(, do: :nope\nend\n' });
      const tuple = `linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`;
      const { id } = await enqueueBuild(queue, { app: 'hello', source: { kind: 'git', ...src }, target: tuple });
      const job = (await queue.getJob(id))!;
      await expect(job.waitUntilFinished(events, 240_000)).rejects.toThrow(/compile failed with exit code \d+[\s\S]*log tail[\s\S]*broken\.ex/);
      const failed = (await queue.getJob(id))!;
      expect(failed.attemptsMade).toBe(1);
      expect(await store.list(`artifacts/hello/${src.commit}/`)).toEqual([]);
    } finally {
      await events.close();
      await queue.close();
      await w.close();
    }
  });

  it('refuses a git dependency over git:// (a git daemon on this machine) with an error naming its URL: the deps step reaches nothing but the egress proxy', { timeout: 300_000 }, async () => {
    const { spawn } = await import('node:child_process');
    const { createServer } = await import('node:net');
    // The dependency: a tiny Mix project in a bare repo served by `git daemon` on loopback.
    const base = join(tmp, 'gitd');
    const greet = join(tmp, 'greet-src');
    await mkdir(join(greet, 'lib'), { recursive: true });
    await writeFile(join(greet, 'mix.exs'), 'defmodule Greet.MixProject do\n  use Mix.Project\n  def project, do: [app: :greet, version: "0.1.0", elixir: "~> 1.10", deps: []]\n  def application, do: []\nend\n');
    await writeFile(join(greet, 'lib/greet.ex'), 'defmodule Greet do\n  def hi, do: "hi from a git dep"\nend\n');
    git(greet, 'init', '-q', '-b', 'main');
    git(greet, 'add', '-A');
    git(greet, 'commit', '-q', '-m', 'greet');
    await mkdir(base, { recursive: true });
    git(tmp, 'clone', '-q', '--bare', greet, join(base, 'greet.git'));
    const probe = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => probe.once('listening', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const daemon = spawn('git', ['daemon', '--export-all', '--reuseaddr', `--base-path=${base}`, '--listen=127.0.0.1', `--port=${port}`, base], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50; i++) {
        try {
          git(tmp, 'ls-remote', `git://127.0.0.1:${port}/greet.git`);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      const mixExs = (await readFile(join(repo, 'mix.exs'), 'utf8')).replace(/deps: \[\]/, `deps: [{:greet, git: "git://127.0.0.1:${port}/greet.git", branch: "main"}]`);
      expect(mixExs).toContain(':greet');
      const src = await variant('gitdep', { 'mix.exs': mixExs, 'lib/uses_greet.ex': 'defmodule Hello.UsesGreet do\n  def hi, do: Greet.hi()\nend\n' });
      const job = { app: 'hello', source: { kind: 'git' as const, ...src }, target: parseTargetOrThrow(`linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`), mixEnv: 'prod' };
      const lines: string[] = [];
      const err = await runBuild(deps, job, { phase: () => {}, log: (l) => void lines.push(l) }).then(() => undefined, (e: Error) => e);
      expect(lines.join('\n')).toMatch(/==> deps: mix deps.get \(network egress\)/);
      expect(err?.message.split('\n')[0]).toBe(
        `deps failed with exit code 1: git dependency greet (git://127.0.0.1:${port}/greet.git) cannot be fetched: the deps step reaches the network only through the farm's HTTP(S) egress proxy, which git:// does not use; use an https:// URL whose host is in XAMAL_DEPS_ALLOW, or ssh with a deploy key in XAMAL_GIT_CREDENTIALS_FILE`,
      );
      expect(await store.list(`artifacts/hello/${src.commit}/`)).toEqual([]);
    } finally {
      daemon.kill();
    }
  });

  it('cancels a build during compile: its containers (compile, and the smoke test\'s held for later) are gone within 5 s and the job ends cancelled; a queued one is removed', { timeout: 300_000 }, async () => {
    const settings = { redisUrl: services().redisUrl, prefix: testPrefix('queue-cancel') };
    const queue = buildQueue(settings, arch);
    const events = buildQueueEvents(settings, arch);
    const tuple = `linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`;
    let w: RunningWorkers | undefined;
    try {
      await events.waitUntilReady();
      // Queued, no worker yet: removed.
      const queued = await variant('cancel-queued', { 'lib/q.ex': 'defmodule Hello.Q do\nend\n' });
      const q = await enqueueBuild(queue, { app: 'hello', source: { kind: 'git', ...queued }, target: tuple });
      expect(await cancelBuild(settings, arch, q.id)).toBe('removed');
      expect(await queue.getJob(q.id)).toBeUndefined();

      const slow = await variant('cancel-slow', { 'lib/slow.ex': 'defmodule Hello.Slow do\n  Process.sleep(30_000)\n  def ok, do: true\nend\n' });
      const { id } = await enqueueBuild(queue, { app: 'hello', source: { kind: 'git', ...slow }, target: tuple });
      const compiling = new Promise<void>((resolve) =>
        events.on('progress', ({ jobId, data }) => {
          if (jobId === id && (data as { phase?: string }).phase === 'compile') resolve();
        }),
      );
      w = await startBuildWorkers(settings, [arch], deps, 1);
      await compiling;
      await new Promise((r) => setTimeout(r, 1_500));
      // The compile container, and the smoke test's, started ahead and held for its step.
      expect(await docker.containersWithLabel('org.xamal.job', id)).toHaveLength(2);
      const t0 = Date.now();
      expect(await cancelBuild(settings, arch, id)).toBe('signalled');
      await expect((await queue.getJob(id))!.waitUntilFinished(events, 30_000)).rejects.toThrow(/cancelled/);
      while ((await docker.containersWithLabel('org.xamal.job', id)).length > 0 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 100));
      expect(await docker.containersWithLabel('org.xamal.job', id)).toEqual([]);
      expect(Date.now() - t0).toBeLessThan(5_000);
      expect(await (await queue.getJob(id))!.getState()).toBe('failed');
      expect((await queue.getJob(id))!.attemptsMade).toBe(1);
    } finally {
      await w?.close();
      await events.close();
      await queue.close();
    }
  });

  it('builds from a source archive in the store (checked against its sha256) and refuses a tampered one', { timeout: 300_000 }, async () => {
    const archive = execFileSync('tar', ['--exclude=.git', '-czf', '-', '-C', repo, '.'], { maxBuffer: 64 << 20 });
    const sha256 = createHash('sha256').update(archive).digest('hex');
    const key = `sources/${sha256}.tar.gz`;
    await store.put(key, archive);
    const target = parseTargetOrThrow(`linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`);
    const out = await runBuild(deps, { app: 'hello', source: { kind: 'archive', key, sha256 }, target, mixEnv: 'prod' }, { phase: () => {}, log: () => {} });
    expect(out.manifest.version).toBe(sha256.slice(0, 40));
    expect(out.manifest.releaseVersion).toBe('0.1.0');
    const wrong = 'f'.repeat(64);
    await store.put(`sources/${wrong}.tar.gz`, archive);
    await expect(
      runBuild(deps, { app: 'hello', source: { kind: 'archive', key: `sources/${wrong}.tar.gz`, sha256: wrong }, target, mixEnv: 'prod' }, { phase: () => {}, log: () => {} }),
    ).rejects.toThrow(/has sha256 [0-9a-f]{64}, expected f{64}/);
  });

  it('caps a chatty build\'s log at XAMAL_MAX_LOG_BYTES with one marker line and still builds it; the stored log ends with the real last output', { timeout: 300_000 }, async () => {
    const max = 16 * 1024;
    // ~300 KB of compile-time output.
    const src = await variant('chatty', {
      'lib/chatty.ex': 'defmodule Hello.Chatty do\n  for i <- 1..3000, do: IO.puts("chatty compile line #{i} " <> String.duplicate("x", 70))\n  def ok, do: true\nend\n',
    });
    const job = { app: 'hello', source: { kind: 'git' as const, ...src }, target: parseTargetOrThrow(`linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`), mixEnv: 'prod' };
    const live: string[] = [];
    const out = await runBuild({ ...deps, maxLogBytes: max }, job, { phase: () => {}, log: (l) => void live.push(l) });
    expect(out.cached).toBe(false);
    const markers = live.filter((l) => l.startsWith('[xamal] log truncated'));
    expect(markers).toEqual([expect.stringContaining(`over its limit of ${max} bytes (XAMAL_MAX_LOG_BYTES)`)]);
    expect(live.at(-1)).toBe(markers[0]);
    expect(Buffer.byteLength(live.join('\n'))).toBeLessThanOrEqual(max + 300);
    const stored = (await store.get(out.manifest.logKey))!.toString('utf8');
    expect(Buffer.byteLength(stored)).toBeLessThan(max + 40 * 1024);
    expect(stored).toMatch(/\[xamal\] log truncated: \d+ bytes dropped; the last \d+ bytes of output:/);
    expect(stored).toContain('chatty compile line 1 ');
    // The tail is the end of the build (the steps after compile), not the end of what was kept.
    const tail = stored.slice(stored.lastIndexOf('bytes of output:'));
    expect(tail).toContain('chatty compile line 3000 ');
    expect(tail).toMatch(/==> scan: \d+ ELF files/);
    expect(stored.slice(0, stored.indexOf('[xamal] log truncated'))).not.toContain('==> scan:');
  });

  it('compiles with no network: a project that opens a socket at compile time fails even though the address answers on the host', { timeout: 300_000 }, async () => {
    const { createServer } = await import('node:net');
    const server = createServer((c) => c.end()).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as { port: number }).port;
    try {
      const src = await variant('netprobe', {
        'lib/net_probe.ex': `defmodule Hello.NetProbe do\n  {:ok, sock} = :gen_tcp.connect({127, 0, 0, 1}, ${port}, [], 2000)\n  :gen_tcp.close(sock)\n  def ok, do: true\nend\n`,
      });
      const job = { app: 'hello', source: { kind: 'git' as const, ...src }, target: parseTargetOrThrow(`linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`), mixEnv: 'prod' };
      await expect(runBuild(deps, job, { phase: () => {}, log: () => {} })).rejects.toThrow(/compile failed[\s\S]*econnrefused|compile failed[\s\S]*MatchError/i);
    } finally {
      server.close();
    }
  });
});
