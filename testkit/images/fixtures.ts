import type { Arch } from '../../core/tuple/arch.ts';
import type { LockEntry, LockFile } from '../../images/lock.ts';

/** Lock entries as `xamal farm images build` and `pin` write them, for the images measured in FACTS.md#builder-images. */

export const REGISTRY = '127.0.0.1:5000';
export const RESOLVED_AT = '2025-06-01T12:00:00.000Z';

/** A well-formed digest made of one repeated hex character. */
export const digest = (c: string): string => `sha256:${c.repeat(64)}`;

export const TUPLES = {
  bullseye: 'linux-x86_64-gnu2.31-debian11-otp23.2.6-elixir1.10.3',
  bookworm: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0',
  trixie: 'linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3',
  bookwormArm: 'linux-aarch64-gnu2.36-debian12-otp25.2.3-elixir1.14.0',
} as const;

export const HEXPM_REF = 'hexpm/elixir:1.17.3-erlang-27.1.2-debian-bookworm-20241016-slim';

function recipeBuilder(suite: 'bullseye' | 'bookworm' | 'trixie', arch: Arch, tuple: string, d: string): LockEntry {
  return {
    ref: `${REGISTRY}/xamal/builder:${tuple}`,
    digest: d,
    platforms: [{ arch, digest: d }],
    resolvedAt: RESOLVED_AT,
    source: 'recipe',
    flavour: 'builder',
    tuple,
    recipe: { suite, arch, flavour: 'builder', key: `key-${suite}-${arch}` },
  };
}

export const ENTRIES = {
  bullseye: recipeBuilder('bullseye', 'x86_64', TUPLES.bullseye, digest('1')),
  bookworm: recipeBuilder('bookworm', 'x86_64', TUPLES.bookworm, digest('2')),
  trixie: recipeBuilder('trixie', 'x86_64', TUPLES.trixie, digest('3')),
  bookwormArm: recipeBuilder('bookworm', 'aarch64', TUPLES.bookwormArm, digest('4')),
  runtime: {
    ref: `${REGISTRY}/xamal/runtime:debian12-x86_64`,
    digest: digest('5'),
    platforms: [{ arch: 'x86_64', digest: digest('5') }],
    resolvedAt: RESOLVED_AT,
    source: 'recipe',
    flavour: 'runtime',
    recipe: { suite: 'bookworm', arch: 'x86_64', flavour: 'runtime', key: 'key-bookworm-runtime' },
  },
  /** A hexpm pin before its platforms were probed: an index digest and the per-platform digests from its manifest list. */
  hexpm: {
    ref: HEXPM_REF,
    digest: digest('a'),
    platforms: [
      { arch: 'x86_64', digest: digest('b') },
      { arch: 'aarch64', digest: digest('c') },
    ],
    resolvedAt: RESOLVED_AT,
    source: 'hexpm',
    flavour: 'builder',
  },
} satisfies Record<string, LockEntry>;

/** The machine's lock: everything built here. */
export const LOCAL_LOCK: LockFile = {
  version: 1,
  images: [ENTRIES.bullseye, ENTRIES.bookworm, ENTRIES.trixie, ENTRIES.bookwormArm, ENTRIES.runtime],
};

/** The committed lock: hexpm pins only. */
export const COMMITTED_LOCK: LockFile = { version: 1, images: [ENTRIES.hexpm] };
