import { join } from 'node:path';
import { builderConfig } from '../builder/config.ts';
import { buildImage } from '../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../builder/images/context.ts';
import { PREPARE_WAIT_MS } from '../builder/images/prepare.ts';
import { mirrorSources } from '../builder/images/toolchain.ts';
import { withFileLock } from '../localservices/fs-lock.ts';
import type { DebianSuite } from '../images/distros.ts';
import { pickSource, readToolchainCatalog } from '../images/toolchains.ts';

/** The OTP + Elixir the suite compiles from source (at most one OTP: a fresh machine compiles it once, ~15 min). */
export const TEST_TOOLCHAINS: readonly { suite: DebianSuite; otp: string; elixir: string }[] = [{ suite: 'bookworm', otp: '27.3.4.1', elixir: '1.18.3' }];

/** The origin the lab fetches toolchain sources from: Debian's archive (GitHub, upstream's, is out of its reach). */
export const LAB_TOOLCHAIN_ORIGIN = 'debian';

/** Where the suite's local toolchain mirror lives: `<cache>/toolchain-mirror/<origin>/<path>`. */
export const toolchainMirrorDir = () => join(builderConfig().cacheDir, 'toolchain-mirror');

/**
 * Fills the suite's local mirror with the sources of TEST_TOOLCHAINS (fetched once from the lab's
 * origin, checked against their pins), so tests fetch them from loopback (testkit/static-files.ts),
 * as an offline farm fetches from its own mirror. Idempotent: files already there with their sha256 stay.
 */
export async function prepareToolchainMirror(say: (line: string) => void): Promise<void> {
  const catalog = readToolchainCatalog();
  const picks = TEST_TOOLCHAINS.flatMap((t) => [
    pickSource('OTP', catalog.otp.find((e) => e.version === t.otp)!, [LAB_TOOLCHAIN_ORIGIN]),
    pickSource('Elixir', catalog.elixir.find((e) => e.version === t.elixir)!, [LAB_TOOLCHAIN_ORIGIN]),
  ]);
  const written = await mirrorSources(imageBuildDeps(builderConfig(), say), toolchainMirrorDir(), picks);
  if (written.length) say(`toolchain mirror: ${written.length} source(s) written to ${toolchainMirrorDir()}`);
}

/**
 * The suite's from-source builders, from the mirror's sources, into the machine's lock like every
 * suite image; warm: found current at once. The suite starts this beside the other images and runs
 * the tests without waiting (on a fresh machine the OTP compile then overlaps the debootstraps and
 * the first tests); the tests that need a from-source builder call it and wait. Under a file lock:
 * callers in any process share one preparation (the OTP compile takes tens of minutes).
 */
export async function prepareTestToolchains(say: (line: string) => void): Promise<void> {
  const cfg = builderConfig();
  await withFileLock(join(cfg.cacheDir, 'prepare', 'test-toolchains.lock'), 'the test toolchains', async () => {
    await prepareToolchainMirror(say);
    const deps = { ...imageBuildDeps(cfg, say), toolchainPrefer: [LAB_TOOLCHAIN_ORIGIN] };
    for (const t of TEST_TOOLCHAINS) await buildImage(deps, { suite: t.suite, arch: hostArch(), flavour: 'builder', toolchain: { otp: t.otp, elixir: t.elixir } });
  }, PREPARE_WAIT_MS);
}
