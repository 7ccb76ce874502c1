import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBuild } from '../../../builder/apply.ts';
import { builderConfig } from '../../../builder/config.ts';
import { buildImage } from '../../../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../../../builder/images/context.ts';
import { ensurePinnedImage } from '../../../builder/images/ensure.ts';
import { hexpmTagDigest, pinHexpm, verifyLocks } from '../../../builder/images/pin.ts';
import { registryReader } from '../../../builder/registry.ts';
import { BuildJobSchema } from '../../../core/contracts/build-job.ts';
import type { Arch } from '../../../core/index.ts';
import type { Catalog } from '../../../images/catalog.ts';
import { pinnedRef, readLock, splitRef } from '../../../images/lock.ts';
import { buildDeps } from '../../../farm/build-deps.ts';
import { helloRepo } from '../../../testkit/example-repo.ts';
import { s3Store } from '../../../store/s3.ts';
import { publishHexpmIndex } from '../../../testkit/images/hexpm-mirror.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';
import { testSigner } from '../../../testkit/signing.ts';

/**
 * hexpm images the way Docker Hub serves them, in the lab: the suite's Debian 12 builders (x86_64 and
 * aarch64) are put under `hexpm/elixir:<elixir>-erlang-<otp>-debian-bookworm-<date>-slim` with a
 * two-platform index in the local registry, which the embedded engine uses as its docker.io mirror
 * (`--registry-mirror`) and XAMAL_HEXPM_REGISTRY points at. So pinning reads the index over the
 * registry API, and the engine pulls `hexpm/elixir@<platform digest>` through its real docker.io path.
 */
const REF = 'hexpm/elixir:1.14.0-erlang-25.2.3-debian-bookworm-20230227-slim';

describe('hexpm images pinned per platform and pulled by digest through the engine’s registry mirror', () => {
  const arch = hostArch();
  let tmp: string | undefined;

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('pins the index and each platform’s digest (probed: OTP 25.2.3, Elixir 1.14.0, Debian 12), builds hello in the pulled x86_64 image, and refuses the tag once it moves until it is re-pinned', { timeout: 20 * 60_000 }, async () => {
    const ep = services();
    const cfg = { ...builderConfig(), dockerSocket: ep.dockerSocket, registry: ep.registry };
    const say = (l: string) => process.stderr.write(`[hexpm] ${l}\n`);
    const imageDeps = imageBuildDeps(cfg, say);
    const docker = imageDeps.docker;
    tmp = await mkdtemp(join(tmpdir(), 'xamal-hexpm-'));
    const lockPath = join(tmp, 'images.lock.json');

    // The suite's bookworm builders, published under hexpm's name with a manifest list.
    const arches: Arch[] = ['x86_64', 'aarch64'];
    const sources = [];
    for (const a of arches) {
      const built = (await buildImage(imageDeps, { suite: 'bookworm', arch: a, flavour: 'builder' })).entry;
      sources.push({ arch: a, pinned: pinnedRef(built, a) });
    }
    const published = await publishHexpmIndex(ep.registry, REF, sources);
    // Nothing held locally under hexpm's name: every pull below goes through the engine's mirror.
    for (const p of published.platforms) await docker.removeImage(`hexpm/elixir@${p.digest}`);

    const hexpm = registryReader(`http://${ep.registry}`);
    const pinDeps = { docker, say, hexpm, ensureEmulation: imageDeps.ensureEmulation };
    const catalog: Catalog = { images: [{ source: 'hexpm', ref: REF, arches }] };
    const [entry] = await pinHexpm(pinDeps, catalog, lockPath);
    expect(entry).toMatchObject({
      ref: REF,
      digest: published.index,
      source: 'hexpm',
      platforms: [
        { arch: 'x86_64', digest: published.platforms[0]!.digest, tuple: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0' },
        { arch: 'aarch64', digest: published.platforms[1]!.digest, tuple: 'linux-aarch64-gnu2.36-debian12-otp25.2.3-elixir1.14.0' },
      ],
    });
    expect(published.index).not.toBe(published.platforms[0]!.digest);
    for (const p of published.platforms) expect((await docker.inspectImage(`hexpm/elixir@${p.digest}`))?.repoDigests).toContain(`hexpm/elixir@${p.digest}`);
    expect(await verifyLocks(pinDeps, [await readLock(lockPath)])).toEqual([{ ref: REF, locked: published.index, actual: published.index, ok: true }]);

    // A build in it (a store of its own: really built): the worker pulls the platform digest again.
    await docker.removeImage(`hexpm/elixir@${published.platforms[0]!.digest}`);
    expect(await docker.inspectImage(`hexpm/elixir@${published.platforms[0]!.digest}`)).toBeUndefined();
    const deps = buildDeps({ dockerSocket: ep.dockerSocket, store: s3Store({ ...ep.s3, prefix: `${testPrefix('hexpm')}/` }), cacheDir: join(tmp, 'cache'), workRoot: join(tmp, 'work'), lockPaths: [lockPath], depsNetwork: 'none', hexpmRegistry: `http://${ep.registry}`, signer: testSigner() });
    const src = await helloRepo(join(tmp, 'hello'));
    const tuple = `linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`;
    const job = BuildJobSchema.parse({ app: 'hello', source: { kind: 'git', ...src }, target: tuple });
    const built = await runBuild(deps, job, { phase: () => {}, log: () => {} });
    expect(built.manifest.tuple).toBe(tuple);
    expect(built.manifest.image).toEqual({ ref: REF, digest: published.platforms.find((p) => p.arch === arch)!.digest });

    // Upstream moves the tag (a new index, same platforms in another order).
    const moved = await publishHexpmIndex(ep.registry, REF, [...sources].reverse());
    expect(moved.index).not.toBe(published.index);
    const locks = [await readLock(lockPath)];
    await docker.removeImage(`hexpm/elixir@${published.platforms[0]!.digest}`);
    await expect(ensurePinnedImage(docker, locks, REF, 'x86_64', undefined, hexpmTagDigest(hexpm))).rejects.toThrow(
      `${REF} moved upstream: pinned ${published.index}, the registry now has ${moved.index}; refusing it until it is re-pinned (xamal farm images pin --hexpm)`,
    );
    expect(await docker.inspectImage(`hexpm/elixir@${published.platforms[0]!.digest}`)).toBeUndefined();
    expect(await verifyLocks(pinDeps, locks)).toEqual([{ ref: REF, locked: published.index, actual: moved.index, ok: false }]);

    // Re-pinned: the new index, the same platform images, and the pull goes through.
    const [again] = await pinHexpm(pinDeps, catalog, lockPath);
    expect(again!.digest).toBe(moved.index);
    expect(again!.platforms.map((p) => p.digest)).toEqual(published.platforms.map((p) => p.digest));
    const ensured = await ensurePinnedImage(docker, [await readLock(lockPath)], REF, 'x86_64', undefined, hexpmTagDigest(hexpm));
    expect(ensured.pinned).toBe(`hexpm/elixir@${published.platforms[0]!.digest}`);
    expect(splitRef(ensured.pinned).repository).toBe('hexpm/elixir');
  });
});
