import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBuild, type BuildDeps } from '../../builder/apply.ts';
import { builderConfig } from '../../builder/config.ts';
import { dockerEngine, type DockerEngine } from '../../builder/docker.ts';
import { buildImage } from '../../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../../builder/images/context.ts';
import { DEFAULT_LIMITS } from '../../builder/plan.ts';
import { startBuildWorkers, type BuildResult, type RunningWorkers } from '../../builder/worker.ts';
import { LocalExecutor } from '../../core/index.ts';
import { ManifestSchema } from '../../core/build/manifest.ts';
import { buildQueue, buildQueueEvents, enqueueBuild } from '../../core/queue.ts';
import { s3Store } from '../../core/storage/s3.ts';
import type { ObjectStore } from '../../core/storage/store.ts';
import { readLock, splitRef, type LockEntry } from '../../images/lock.ts';
import { PROJECT_ROOT } from '../../core/services/config.ts';
import { services, testPrefix } from './support.ts';

/** A docker engine that counts the containers it starts (to prove cached builds start none). */
function counting(engine: DockerEngine): DockerEngine & { runs: number } {
  const c = Object.assign(Object.create(null), engine, { runs: 0 }) as DockerEngine & { runs: number };
  c.run = async (spec) => {
    c.runs++;
    return engine.run(spec);
  };
  return c;
}

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, { cwd, encoding: 'utf8', env: { PATH: process.env.PATH, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t', HOME: cwd } }).trim();

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
    await cp(join(PROJECT_ROOT, 'examples/hello'), repo, { recursive: true, filter: (s) => !/\/(_build|deps)(\/|$)/.test(s) });
    git(repo, 'init', '-q', '-b', 'main');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'hello');
    commit = git(repo, 'rev-parse', 'HEAD');

    store = s3Store({ ...ep.s3, prefix: `${testPrefix('build')}/` });
    docker = counting(dockerEngine(ep.dockerSocket));
    deps = {
      docker,
      exec: new LocalExecutor({ PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' }),
      store,
      locks: async () => [await readLock(cfg.localLockPath)],
      cacheDir: join(tmp, 'cache'),
      workRoot: join(tmp, 'work'),
      limits: DEFAULT_LIMITS,
      depsNetwork: 'host',
    };
  }, 1_800_000);

  afterAll(async () => {
    await workers?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('builds examples/hello for bookworm through the queue; the tarball boots in a bookworm runtime and answers /up', { timeout: 600_000 }, async () => {
    const settings = { redisUrl: services().redisUrl, prefix: testPrefix('queue') };
    workers = startBuildWorkers(settings, [arch], deps, 1);
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
    } finally {
      await events.close();
      await queue.close();
    }
  });
});
