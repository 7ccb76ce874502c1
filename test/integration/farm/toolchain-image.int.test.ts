import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildDeps } from '../../../builder/apply.ts';
import { dockerEngine } from '../../../builder/docker.ts';
import { buildImage } from '../../../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../../../builder/images/context.ts';
import { imagePreparer } from '../../../builder/images/prepare.ts';
import { DEFAULT_LIMITS } from '../../../builder/plan.ts';
import { startBuildWorkers, type BuildResult, type RunningWorkers } from '../../../builder/worker.ts';
import { LocalExecutor } from '../../../core/index.ts';
import { ManifestSchema } from '../../../core/contracts/manifest.ts';
import type { Catalog } from '../../../images/catalog.ts';
import { readLock, splitRef, type LockEntry } from '../../../images/lock.ts';
import { predictedTuple } from '../../../images/preparable.ts';
import { readToolchainCatalog } from '../../../images/toolchains.ts';
import { buildQueue, buildQueueEvents, enqueueBuild } from '../../../queue/index.ts';
import { s3Store } from '../../../store/s3.ts';
import type { ObjectStore } from '../../../store/store.ts';
import { helloRepo } from '../../../testkit/example-repo.ts';
import { services, testBuilderConfig, testPrefix } from '../../../testkit/integration.ts';
import { prepareTestToolchains, TEST_TOOLCHAINS } from '../../../testkit/toolchains.ts';
import { testSigner } from '../../../testkit/signing.ts';

/**
 * OTP 27.3.4.1 and Elixir 1.18.3 compiled from source on Debian 12 (a combination no Debian suite
 * ships), prepared on demand by the first jobs that need it. The compiled OTP and Elixir are cached
 * under the machine's cache, keyed by their inputs (a fresh machine compiles them once, tens of
 * minutes); the image itself is made again in this test's own lock and registry namespace each run,
 * so the on-demand path (import, probe, publish) always runs and moves no other test's tags.
 */
const { otp: OTP, elixir: ELIXIR } = TEST_TOOLCHAINS[0]!;

describe('a builder with OTP and Elixir from source, prepared on demand', () => {
  const arch = hostArch();
  const tuple = predictedTuple('bookworm', arch, OTP, ELIXIR);
  let tmp: string;
  let store: ObjectStore;
  let runtime: LockEntry;
  let workers: RunningWorkers | undefined;

  beforeAll(async () => {
    const ep = services();
    const cfg = testBuilderConfig();
    runtime = (await buildImage(imageBuildDeps(cfg, () => {}), { suite: 'bookworm', arch, flavour: 'runtime' })).entry;
    tmp = await mkdtemp(join(tmpdir(), 'xamal-toolchain-'));
    store = s3Store({ ...ep.s3, prefix: `${testPrefix('toolchain')}/` });
  }, 600_000);

  afterAll(async () => {
    await workers?.close();
    // The builder this test prepared lives under its own namespace: removed, so runs do not pile images up in the engine.
    const prepared = tmp ? await readLock(join(tmp, 'images.lock.json')).catch(() => undefined) : undefined;
    const docker = dockerEngine(services().dockerSocket);
    for (const e of prepared?.images ?? []) await docker.removeImage(`${splitRef(e.ref).repository}@${e.digest}`).catch(() => false);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it(`two jobs for ${OTP} + Elixir ${ELIXIR} on Debian 12, which no lock holds, share one preparation (phase image); the release runs on OTP 27 in a bookworm runtime`, { timeout: 3 * 3_600_000 }, async () => {
    const ep = services();
    const cfg = testBuilderConfig();
    const localLockPath = join(tmp, 'images.lock.json');
    const say = (l: string) => process.stderr.write(`[toolchain] ${l}\n`);
    // The compiled OTP and Elixir come from the suite's preparation (waited for here on a fresh machine), not a second compile.
    await prepareTestToolchains(say);
    const imageDeps = { ...imageBuildDeps(cfg, say), localLockPath, namespace: testPrefix('ns') };
    const catalog: Catalog = { images: [{ source: 'toolchain', suite: 'bookworm', otp: OTP, elixir: ELIXIR, arches: [arch] }] };
    const deps: BuildDeps = {
      docker: dockerEngine(ep.dockerSocket),
      exec: new LocalExecutor(),
      store,
      locks: async () => [await readLock(localLockPath)],
      cacheDir: join(tmp, 'cache'),
      workRoot: join(tmp, 'work'),
      limits: DEFAULT_LIMITS,
      depsNetwork: 'none',
      hostArch: arch,
      signer: testSigner(),
      prepareImage: imagePreparer(imageDeps, async () => catalog, readToolchainCatalog()),
    };
    const settings = { redisUrl: ep.redisUrl, prefix: testPrefix('toolchain-q') };
    workers = await startBuildWorkers(settings, [arch], deps, 2);
    const queue = buildQueue(settings, arch);
    const events = buildQueueEvents(settings, arch);
    const phases = new Map<string, string[]>();
    events.on('progress', ({ jobId, data }) => {
      const phase = (data as { phase?: string }).phase;
      if (phase && phases.get(jobId)?.at(-1) !== phase) phases.set(jobId, [...(phases.get(jobId) ?? []), phase]);
    });
    try {
      await events.waitUntilReady();
      const a = await helloRepo(join(tmp, 'a'));
      const b = await helloRepo(join(tmp, 'b'), { 'lib/hello/b.ex': 'defmodule Hello.B do\nend\n' });
      const jobs = await Promise.all([a, b].map((src) => enqueueBuild(queue, { app: 'hello', source: { kind: 'git', ...src }, target: tuple })));
      const results = await Promise.all(jobs.map(async (j) => (await (await queue.getJob(j.id))!.waitUntilFinished(events, 3 * 3_600_000)) as BuildResult));
      expect(results.map((r) => r.tuple)).toEqual([tuple, tuple]);

      const manifests = await Promise.all(results.map(async (r) => ManifestSchema.parse(JSON.parse((await store.get(r.manifestKey))!.toString('utf8')))));
      const logs = await Promise.all(manifests.map(async (m) => (await store.get(m.logKey))!.toString('utf8')));
      for (const j of jobs) expect(phases.get(j.id)?.slice(0, 2)).toEqual(['image', 'source']);
      expect(logs.filter((l) => /image: prepared /.test(l))).toHaveLength(1);
      expect(logs.filter((l) => /image: .* was prepared by another job/.test(l))).toHaveLength(1);
      const lock = await readLock(localLockPath);
      expect(lock.images.map((e) => [e.tuple, e.recipe?.toolchain])).toEqual([[tuple, { otp: OTP, elixir: ELIXIR }]]);

      // Where it is meant to run: Debian 12's runtime (no Erlang, no Elixir), from the tarball alone.
      const rel = join(tmp, 'rel');
      await mkdir(rel, { recursive: true });
      await writeFile(join(tmp, 'rel.tar.gz'), (await store.get(manifests[0]!.tarball.key))!);
      execFileSync('tar', ['-xzf', join(tmp, 'rel.tar.gz'), '-C', rel]);
      const script = 'RELEASE_DISTRIBUTION=none RELEASE_TMP=/tmp /rel/bin/hello eval \'IO.puts(["otp=", :erlang.system_info(:otp_release), " elixir=", System.version()])\'';
      const boot = await deps.docker.run({ image: `${splitRef(runtime.ref).repository}@${runtime.digest}`, cmd: ['sh', '-c', script], networkMode: 'none', binds: [`${rel}:/rel:ro`], timeoutMs: 120_000 });
      expect(boot.code, boot.stdout + boot.stderr).toBe(0);
      expect(boot.stdout.trim()).toBe(`otp=27 elixir=${ELIXIR}`);
      console.log(`toolchain: ${tuple} prepared on demand for 2 jobs (1 preparation), release runs "${boot.stdout.trim()}" in the bookworm runtime; glibc needed ${manifests[0]!.glibcNeeded}`);
    } finally {
      await events.close();
      await queue.close();
    }
  });
});
