import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BuildDeps } from '../../builder/apply.ts';
import { builderConfig } from '../../builder/config.ts';
import { dockerEngine, type ContainerResult, type DockerEngine } from '../../builder/docker.ts';
import { buildImage } from '../../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../../builder/images/context.ts';
import { LocalExecutor } from '../../core/index.ts';
import { readLock } from '../../images/lock.ts';
import type { ObjectStore } from '../../store/store.ts';
import { services } from '../integration.ts';
import { testSigner } from '../signing.ts';

/** What a test's build worker runs on, but for the store and limits each test picks. */
export type WorkerBase = Omit<BuildDeps, 'store' | 'limits'>;

/**
 * For integration tests that run builds in their own worker: this machine's bookworm builder image
 * (built once, cached), a fresh temporary directory (`xamal-<tag>-…`, the caller removes it) and the
 * worker's engine, locks, cache and work directories in it; the deps step has no network.
 */
export async function workerBase(tag: string): Promise<{ tmp: string; base: WorkerBase }> {
  const ep = services();
  const cfg = { ...builderConfig(), dockerSocket: ep.dockerSocket, registry: ep.registry };
  await buildImage(imageBuildDeps(cfg, (l) => process.stderr.write(`[images] ${l}\n`)), { suite: 'bookworm', arch: hostArch(), flavour: 'builder' });
  const tmp = await mkdtemp(join(tmpdir(), `xamal-${tag}-`));
  const base: WorkerBase = {
    docker: dockerEngine(ep.dockerSocket),
    exec: new LocalExecutor(),
    locks: async () => [await readLock(cfg.localLockPath)],
    cacheDir: join(tmp, 'cache'),
    workRoot: join(tmp, 'work'),
    depsNetwork: 'none',
    signer: testSigner(),
  };
  return { tmp, base };
}

/** Unpacks a stored release tarball into `dir` (created); resolves with `dir`. */
export async function unpackStoredRelease(store: ObjectStore, tarballKey: string, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const tarball = `${dir}.tar.gz`;
  await writeFile(tarball, (await store.get(tarballKey))!);
  execFileSync('tar', ['-xzf', tarball, '-C', dir]);
  return dir;
}

/**
 * The builder image a release was built in, by digest, pulled when this engine lacks it: the worker
 * pulls by digest, so the image's tag may be absent here (a fresh engine).
 */
export async function builtInImage(docker: DockerEngine, image: { ref: string; digest: string }): Promise<string> {
  const pinned = `${image.ref.slice(0, image.ref.lastIndexOf(':'))}@${image.digest}`;
  if (!(await docker.inspectImage(pinned))) await docker.pull(pinned);
  return pinned;
}

/** `bin/<release> eval EXPR` of an unpacked release in `image`, as the build user, with no network. */
export function evalRelease(docker: DockerEngine, image: string, releaseDir: string, release: string, expr: string): Promise<ContainerResult> {
  return docker.run({
    image,
    cmd: [`/rel/bin/${release}`, 'eval', expr],
    env: { RELEASE_TMP: '/tmp', RELEASE_DISTRIBUTION: 'none', HOME: '/tmp' },
    networkMode: 'none',
    binds: [`${releaseDir}:/rel:ro`],
    user: '1000:1000',
    tmpfs: { '/tmp': 'rw,size=64m' },
    timeoutMs: 120_000,
  });
}
