import { formatTarget, type Arch, type Issue } from '../core/index.ts';
import type { Catalog } from './catalog.ts';
import type { DebianSuite } from './distros.ts';
import type { LockFile } from './lock.ts';
import { toolchainProblems, type ToolchainCatalog } from './toolchains.ts';

/**
 * Builder images the farm can prepare on demand: every builder the catalog names (a Debian suite's,
 * or one with OTP and Elixir from source) that no lock holds yet, with the tuple it will probe as.
 * A request for such a tuple is accepted and queued; the worker prepares the image first (phase
 * `image`), and the probe must then confirm the tuple.
 */

/**
 * What a suite gives a builder image: the release number and glibc its tuples carry, and the OTP and
 * Elixir its packages install (probed on the images this farm builds; FACTS.md#builder-images).
 */
export const SUITE_FACTS: Readonly<Record<DebianSuite, { release: string; glibc: string; otp: string; elixir: string }>> = {
  bullseye: { release: '11', glibc: '2.31', otp: '23.2.6', elixir: '1.10.3' },
  bookworm: { release: '12', glibc: '2.36', otp: '25.2.3', elixir: '1.14.0' },
  trixie: { release: '13', glibc: '2.41', otp: '27.3.4.1', elixir: '1.18.3' },
};

export interface PreparableImage {
  /** The tuple the image will probe as. */
  tuple: string;
  arch: Arch;
  /** What `buildImage` is asked for. */
  request: { suite: DebianSuite; arch: Arch; flavour: 'builder'; toolchain?: { otp: string; elixir: string } };
  /** Why this machine cannot prepare it (empty: it can). */
  problems: Issue[];
}

/** Pure: the tuple a builder of `suite` on `arch` with these versions probes as. */
export function predictedTuple(suite: DebianSuite, arch: Arch, otp: string, elixir: string): string {
  const f = SUITE_FACTS[suite];
  return formatTarget({ os: 'linux', arch, libc: 'gnu', libcVersion: f.glibc, distro: 'debian', distroVersion: f.release, otp, elixir, qualifiers: [] });
}

/** Pure: every catalog builder no lock holds yet, with its predicted tuple and whether `hostArch` can prepare it. */
export function preparableImages(catalog: Catalog, toolchains: ToolchainCatalog, locks: readonly LockFile[], hostArch: Arch, prefer?: readonly string[]): PreparableImage[] {
  const pinned = new Set(locks.flatMap((l) => l.images.map((e) => e.tuple)).filter(Boolean));
  const out: PreparableImage[] = [];
  for (const c of catalog.images) {
    if (c.source === 'hexpm' || (c.source === 'recipe' && !c.flavours.includes('builder'))) continue;
    for (const arch of c.arches) {
      const toolchain = c.source === 'toolchain' ? { otp: c.otp, elixir: c.elixir } : undefined;
      const f = SUITE_FACTS[c.suite];
      const tuple = predictedTuple(c.suite, arch, toolchain?.otp ?? f.otp, toolchain?.elixir ?? f.elixir);
      if (pinned.has(tuple)) continue;
      const problems = toolchain ? toolchainProblems(toolchains, c.suite, toolchain.otp, toolchain.elixir, { arch, hostArch, ...(prefer ? { prefer } : {}) }) : [];
      out.push({ tuple, arch, request: { suite: c.suite, arch, flavour: 'builder', ...(toolchain ? { toolchain } : {}) }, problems });
    }
  }
  return out;
}

/** The API's view: what a farm whose workers run on `hostArch` (fetching sources from `prefer`) can prepare, given the locks of the moment. */
export function preparableOn(catalog: Catalog, toolchains: ToolchainCatalog, hostArch: Arch, prefer?: readonly string[]): (locks: readonly LockFile[]) => PreparableImage[] {
  return (locks) => preparableImages(catalog, toolchains, locks, hostArch, prefer);
}
