import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBuild, type BuildDeps } from '../../builder/apply.ts';
import { builderConfig } from '../../builder/config.ts';
import { buildImage } from '../../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../../builder/images/context.ts';
import { DEFAULT_LIMITS } from '../../builder/plan.ts';
import { LocalExecutor, parseTargetOrThrow, type Arch } from '../../core/index.ts';
import { s3Store } from '../../core/storage/s3.ts';
import type { DebianSuite } from '../../images/distros.ts';
import { readLock, splitRef } from '../../images/lock.ts';
import { helloRepo } from './fixtures.ts';
import { services, testPrefix } from './support.ts';

/** What LAB.md measured for each suite: the tuple, and the highest GLIBC symbol the ERTS needs. */
const TARGETS: { suite: DebianSuite; arch: Arch; tuple: string; glibc: string }[] = [
  { suite: 'bullseye', arch: 'x86_64', tuple: 'linux-x86_64-gnu2.31-debian11-otp23.2.6-elixir1.10.3', glibc: '2.29' },
  { suite: 'trixie', arch: 'x86_64', tuple: 'linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3', glibc: '2.38' },
  { suite: 'bookworm', arch: 'aarch64', tuple: 'linux-aarch64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', glibc: '2.34' },
];

const BOOT = [
  'PORT=4000 RELEASE_DISTRIBUTION=none RELEASE_TMP=/tmp XAMAL_REVISION=t /rel/bin/hello start > /tmp/out.log 2>&1 &',
  'for i in $(seq 1 300); do curl -fsS http://127.0.0.1:4000/up && exit 0; sleep 0.2; done',
  'cat /tmp/out.log; exit 1',
].join('\n');

describe('build workers on every suite and on aarch64 (emulated)', () => {
  let tmp: string;
  let src: { url: string; commit: string };
  let deps: BuildDeps;
  const cfg = () => ({ ...builderConfig(), dockerSocket: services().dockerSocket, registry: services().registry });

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-targets-'));
    src = await helloRepo(join(tmp, 'repo'));
    const c = cfg();
    deps = {
      docker: imageBuildDeps(c, () => {}).docker,
      exec: new LocalExecutor(),
      store: s3Store({ ...services().s3, prefix: `${testPrefix('targets')}/` }),
      locks: async () => [await readLock(c.localLockPath)],
      cacheDir: join(tmp, 'cache'),
      workRoot: join(tmp, 'work'),
      limits: DEFAULT_LIMITS,
      depsNetwork: 'host',
      hostArch: hostArch(),
    };
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  for (const t of TARGETS) {
    it(`builds examples/hello for ${t.tuple}; it boots in a ${t.suite} ${t.arch} runtime and answers /up`, { timeout: 1_500_000 }, async () => {
      const images = imageBuildDeps(cfg(), (l) => process.stderr.write(`[images] ${l}\n`));
      const builder = await buildImage(images, { suite: t.suite, arch: t.arch, flavour: 'builder' });
      expect(builder.entry.tuple).toBe(t.tuple);
      const runtime = await buildImage(images, { suite: t.suite, arch: t.arch, flavour: 'runtime' });

      const out = await runBuild(deps, { app: 'hello', source: { kind: 'git', ...src }, target: parseTargetOrThrow(t.tuple), mixEnv: 'prod' }, { phase: () => {}, log: () => {} });
      expect(out.manifest.tuple).toBe(t.tuple);
      expect(out.manifest.glibcNeeded).toBe(t.glibc);

      const rel = join(tmp, `rel-${t.suite}-${t.arch}`);
      await mkdir(rel, { recursive: true });
      await writeFile(`${rel}.tar.gz`, (await deps.store.get(out.manifest.tarball.key))!);
      execFileSync('tar', ['-xzf', `${rel}.tar.gz`, '-C', rel]);
      const boot = await deps.docker.run({
        image: `${splitRef(runtime.entry.ref).repository}@${runtime.entry.digest}`,
        cmd: ['sh', '-c', BOOT],
        networkMode: 'none',
        binds: [`${rel}:/rel:ro`],
        timeoutMs: 180_000,
      });
      expect(boot.code, boot.stdout + boot.stderr).toBe(0);
      expect(JSON.parse(boot.stdout)).toMatchObject({ status: 'ok', app: 'hello', version: '0.1.0' });
    });
  }
});
