import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { debianArch, type Arch, type Command } from '../../core/index.ts';
import type { DebianSuite } from '../distros.ts';

export const FLAVOURS = ['builder', 'runtime'] as const;
export type Flavour = (typeof FLAVOURS)[number];
/** A rootfs the recipes make: an image flavour, or the base OTP and Elixir are compiled on (builder/images/toolchain.ts). */
export type RootfsKind = Flavour | 'toolchain-base';

/** Bump when the recipe changes in a way that must invalidate cached rootfs tarballs. */
export const RECIPE_VERSION = 1;

/** The OpenSSL runtime library each suite ships (bookworm's minbase has none; FACTS.md#builder-images). */
const LIBSSL: Record<DebianSuite, string> = { bullseye: 'libssl1.1', bookworm: 'libssl3', trixie: 'libssl3t64' };

/**
 * Packages on top of minbase. Builder: Erlang/Elixir from the suite (erlang-dev: erl_nif.h), git
 * (git deps), CA certificates, and what dependencies with C NIFs build with (gcc, make, libc6-dev;
 * adding them measured no slower a debootstrap, 77 s either way: BENCHMARKS.md). Runtime: only what a release bundling ERTS needs from a server (libssl for :crypto).
 * Toolchain base: what compiling OTP and Elixir from source needs (C and C++ compilers, make,
 * autoconf, OpenSSL and ncurses headers, xz for the sources), and what a builder image made from it
 * keeps for the app's own build (git, CA certificates; the compilers serve C NIFs).
 */
export function recipePackages(suite: DebianSuite, kind: RootfsKind): string[] {
  if (kind === 'toolchain-base') return ['gcc', 'g++', 'make', 'autoconf', 'libc6-dev', 'libncurses-dev', 'libssl-dev', LIBSSL[suite], 'git', 'ca-certificates', 'xz-utils'];
  return kind === 'builder'
    ? ['elixir', 'erlang-crypto', 'erlang-public-key', 'erlang-ssl', 'erlang-inets', 'erlang-dev', 'git', 'ca-certificates', LIBSSL[suite], ...BUILD_TOOLS]
    : [LIBSSL[suite], 'ca-certificates', 'curl'];
}

/** What dependencies with native code build with in every builder (the toolchain base has them too, its list unchanged so its key is). */
export const BUILD_TOOLS = ['gcc', 'make', 'libc6-dev'];

/** Trimmed after debootstrap: package caches and documentation. */
export const SLIM_PATHS = ['var/lib/apt/lists', 'var/cache/apt', 'var/cache/debconf/templates.dat-old', 'usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/locale', 'var/log'];

/** The unprivileged user builds run as. */
export const BUILD_USER = { name: 'build', uid: 1000, gid: 1000, home: '/home/build' } as const;

export interface RecipeInput {
  suite: DebianSuite;
  arch: Arch;
  flavour: RootfsKind;
  /** Debian mirror URL for debootstrap. */
  mirror: string;
  /** This machine's arch: anything else is built with --foreign + a second stage under qemu. */
  hostArch: Arch;
}

export interface RecipePlan {
  input: RecipeInput;
  packages: string[];
  /** Content key of the rootfs: suite, arch, flavour, packages, recipe version. */
  cacheKey: string;
  /** File name of the cached rootfs tarball under `<cache>/rootfs/`. */
  cacheFile: string;
  foreign: boolean;
  debootstrap: (dir: string) => Command;
  secondStage: ((dir: string) => Command) | undefined;
  tar: (dir: string) => Command;
  /** Compresses stdin to stdout. */
  compress: Command;
  decompress: (file: string) => Command;
  /** Dockerfile-style instructions for `docker import`. */
  changes: string[];
  /** The registry repository and tag the image is pushed under before its tuple is known. */
  stagingTag: string;
}

export const REPOSITORY: Record<RootfsKind, string> = { builder: 'xamal/builder', runtime: 'xamal/runtime', 'toolchain-base': 'xamal/toolchain-base' };

/** Pure: everything needed to build one image, as data. */
export function recipePlan(input: RecipeInput): RecipePlan {
  const packages = recipePackages(input.suite, input.flavour);
  const cacheKey = createHash('sha256')
    .update(JSON.stringify({ v: RECIPE_VERSION, suite: input.suite, arch: input.arch, flavour: input.flavour, packages, slim: SLIM_PATHS, user: BUILD_USER }))
    .digest('hex')
    .slice(0, 16);
  const foreign = input.arch !== input.hostArch;
  const deb = debianArch(input.arch);
  return {
    input,
    packages,
    cacheKey,
    cacheFile: `${input.suite}-${input.arch}-${input.flavour}-${cacheKey}.tar.zst`,
    foreign,
    debootstrap: (dir) => ({
      argv: ['debootstrap', '--variant=minbase', `--arch=${deb}`, `--include=${packages.join(',')}`, ...(foreign ? ['--foreign'] : []), input.suite, dir, input.mirror],
      label: `debootstrap ${input.suite} ${input.arch}`,
      timeoutMs: 900_000,
    }),
    secondStage: foreign ? (dir) => ({ argv: ['chroot', dir, '/debootstrap/debootstrap', '--second-stage'], label: 'debootstrap second stage', timeoutMs: 1_800_000 }) : undefined,
    tar: (dir) => ({ argv: ['tar', '--numeric-owner', '--xattrs', '-C', dir, '-cf', '-', '.'], label: 'tar rootfs' }),
    compress: { argv: ['zstd', '-q', '-10', '-T0', '-c'], label: 'zstd rootfs' },
    decompress: (file) => ({ argv: ['zstd', '-q', '-dc', file], label: 'unzstd rootfs' }),
    changes: [
      'ENV LANG=C.UTF-8',
      'ENV LC_ALL=C.UTF-8',
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      `ENV HOME=${BUILD_USER.home}`,
      'CMD ["/bin/sh"]',
    ],
    stagingTag: `${REPOSITORY[input.flavour]}:staging-${input.suite}-${input.arch}`,
  };
}

/** Lines added to the rootfs for the build user (files edited directly: no chroot, works for any arch). */
export function buildUserEntries(): { passwd: string; group: string; shadow: string } {
  const u = BUILD_USER;
  return {
    passwd: `${u.name}:x:${u.uid}:${u.gid}::${u.home}:/bin/sh\n`,
    group: `${u.name}:x:${u.gid}:\n`,
    shadow: `${u.name}:!:19000:0:99999:7:::\n`,
  };
}

export function rootfsCachePath(cacheDir: string, plan: RecipePlan): string {
  return join(cacheDir, 'rootfs', plan.cacheFile);
}

/**
 * Pure: the plan of a builder image whose OTP and Elixir are compiled from source: the toolchain
 * base's rootfs with both installs added (builder/images/toolchain.ts), cached and staged under
 * names of its own; `imageKey` is its content key (images/toolchains.ts toolchainKeys).
 */
export function toolchainImagePlan(base: RecipePlan, toolchain: { otp: string; elixir: string }, imageKey: string): RecipePlan {
  const { suite, arch } = base.input;
  const name = `otp${toolchain.otp}-elixir${toolchain.elixir}`;
  return {
    ...base,
    input: { ...base.input, flavour: 'builder' },
    cacheKey: imageKey,
    cacheFile: `${suite}-${arch}-builder-${name}-${imageKey}.tar.zst`,
    stagingTag: `${REPOSITORY.builder}:staging-${suite}-${arch}-${name}`,
  };
}
