import { describe, expect, it } from 'vitest';
import { builderConfig, type BuilderConfig } from '../../../builder/config.ts';
import { dockerEngine } from '../../../builder/docker.ts';
import { buildImage, type ImageBuildDeps } from '../../../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../../../builder/images/context.ts';
import { ensurePinnedImage } from '../../../builder/images/ensure.ts';
import { imageRows } from '../../../builder/images/list.ts';
import { pinLocal, verifyLocks } from '../../../builder/images/pin.ts';
import { parseTarget } from '../../../core/index.ts';
import { COMMITTED_LOCK_PATH, readCatalog } from '../../../images/catalog.ts';
import { readToolchainCatalog } from '../../../images/toolchains.ts';
import { readLock, requirePinned, splitRef } from '../../../images/lock.ts';
import { services } from '../../../testkit/integration.ts';

function deps(): { cfg: BuilderConfig; deps: ImageBuildDeps } {
  const ep = services();
  const cfg = { ...builderConfig(), dockerSocket: ep.dockerSocket, registry: ep.registry };
  return { cfg, deps: imageBuildDeps(cfg, (l) => process.stderr.write(`[images] ${l}\n`)) };
}

// Cold (no rootfs cache): about a minute per suite natively, several under emulation; warm: seconds.
const BUILD_TIMEOUT = 20 * 60_000;

describe('builder images built from Debian suites', () => {
  it('builds bookworm for this machine: probed tuple, pushed, pinned, and pulled back by digest after deletion', { timeout: BUILD_TIMEOUT }, async () => {
    const { cfg, deps: d } = deps();
    const arch = hostArch();
    const r = await buildImage(d, { suite: 'bookworm', arch, flavour: 'builder' });
    expect(r.entry.tuple).toBe(`linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`);
    expect(r.entry.facts).toMatchObject({ libcVersion: '2.36', otp: '25.2.3', erts: '13.1.5', elixir: '1.14.0', libcrypto: 'libcrypto.so.3' });
    expect(r.entry.digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    // Pinning against the registry records the same digest; verify agrees.
    const pinned = await pinLocal({ docker: d.docker, say: () => {} }, cfg.localLockPath);
    const mine = pinned.find((e) => e.ref === r.entry.ref)!;
    expect(mine.digest).toBe(r.entry.digest);
    const verified = await verifyLocks({ docker: d.docker, say: () => {} }, [await readLock(cfg.localLockPath)]);
    expect(verified.find((v) => v.ref === r.entry.ref)).toMatchObject({ ok: true, actual: r.entry.digest });

    // The image labels carry the probed facts.
    const ref = `${splitRef(r.entry.ref).repository}@${r.entry.digest}`;
    const info = await d.docker.inspectImage(ref);
    expect(info?.labels['org.xamal.tuple']).toBe(r.entry.tuple);
    expect(info?.labels['org.xamal.libcrypto']).toBe('libcrypto.so.3');

    // Delete it from the engine; a job asking for it gets it back by digest, same image.
    const before = info!.id;
    await d.docker.removeImage(ref);
    expect(await d.docker.inspectImage(ref)).toBeUndefined();
    const locks = [await readLock(cfg.localLockPath)];
    const ensured = await ensurePinnedImage(d.docker, locks, r.entry.ref, arch);
    expect(ensured.pulled).toBe(true);
    expect(ensured.imageId).toBe(before);

    // A digest that is not the pin, and a ref that is not pinned, are refused.
    expect(() => requirePinned(locks, r.entry.ref, `sha256:${'0'.repeat(64)}`)).toThrow(/does not match its pin/);
    await expect(ensurePinnedImage(d.docker, locks, r.entry.ref, arch, `sha256:${'1'.repeat(64)}`)).rejects.toThrow(/does not match its pin/);
    await expect(ensurePinnedImage(d.docker, locks, `${cfg.registry}/xamal/builder:not-pinned`, arch)).rejects.toThrow(/is not pinned: run `xamal farm images pin`/);
  });

  it(
    'builds bullseye, bookworm and trixie on x86_64 and bookworm on aarch64 whose probed tuples differ as the distros do',
    { timeout: BUILD_TIMEOUT },
    async () => {
      const { cfg, deps: d } = deps();
      const wanted = [
        { suite: 'bullseye', arch: 'x86_64', tuple: 'linux-x86_64-gnu2.31-debian11-otp23.2.6-elixir1.10.3', libcrypto: 'libcrypto.so.1.1' },
        { suite: 'bookworm', arch: 'x86_64', tuple: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', libcrypto: 'libcrypto.so.3' },
        { suite: 'trixie', arch: 'x86_64', tuple: /^linux-x86_64-gnu2\.41-debian13-otp27\.3\.4(\.\d+)*-elixir1\.18\.\d+$/, libcrypto: 'libcrypto.so.3' },
        { suite: 'bookworm', arch: 'aarch64', tuple: 'linux-aarch64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', libcrypto: 'libcrypto.so.3' },
      ] as const;
      for (const w of wanted) {
        const r = await buildImage(d, { suite: w.suite, arch: w.arch, flavour: 'builder' });
        if (typeof w.tuple === 'string') expect(r.entry.tuple).toBe(w.tuple);
        else expect(r.entry.tuple).toMatch(w.tuple);
        expect(r.entry.facts?.libcrypto).toBe(w.libcrypto);
        const t = parseTarget(r.entry.tuple);
        expect(t.ok).toBe(true);
        // The engine holds it with the right platform.
        const info = await d.docker.inspectImage(`${splitRef(r.entry.ref).repository}@${r.entry.digest}`);
        expect(info?.architecture).toBe(w.arch === 'x86_64' ? 'amd64' : 'arm64');
      }
      const rows = imageRows(await readCatalog(), await readLock(COMMITTED_LOCK_PATH), await readLock(cfg.localLockPath), readToolchainCatalog(), hostArch());
      const ready = rows.filter((row) => row.status === 'ready' && row.flavour === 'builder' && row.source === 'recipe');
      for (const w of wanted) {
        const row = ready.find((x) => x.arch === w.arch && x.origin.includes(w.suite));
        expect(row?.digest).toMatch(/^sha256:/);
        expect(row?.platform).toBe(w.arch === 'x86_64' ? 'linux/amd64' : 'linux/arm64/v8');
      }
      // glibc floors, OTP majors and libcrypto sonames really differ.
      const floors = new Set(ready.map((x) => parseTarget(x.tuple).ok && (parseTarget(x.tuple) as { value: { libcVersion: string } }).value.libcVersion));
      expect(floors).toEqual(new Set(['2.31', '2.36', '2.41']));
    },
  );

  it('the engine used for images is the harness engine', async () => {
    expect(await dockerEngine(services().dockerSocket).ping()).toBe(true);
  });
});
