import { z } from 'zod';

/**
 * The one table of CPU architectures: canonical names (as `uname -m` prints them on Linux), the
 * aliases other ecosystems use, Docker platform strings, Debian's and qemu's names. Everything that
 * converts between them reads this table.
 */
export const ARCH_TABLE = [
  { arch: 'x86_64', aliases: ['amd64', 'x64', 'x86-64'], docker: { architecture: 'amd64', variant: undefined }, debian: 'amd64', qemu: 'x86_64' },
  { arch: 'aarch64', aliases: ['arm64', 'arm64/v8', 'armv8'], docker: { architecture: 'arm64', variant: 'v8' }, debian: 'arm64', qemu: 'aarch64' },
  { arch: 'armv7l', aliases: ['armhf', 'armv7', 'arm', 'arm/v7'], docker: { architecture: 'arm', variant: 'v7' }, debian: 'armhf', qemu: 'arm' },
  { arch: 'riscv64', aliases: [], docker: { architecture: 'riscv64', variant: undefined }, debian: 'riscv64', qemu: 'riscv64' },
] as const;

export type Arch = (typeof ARCH_TABLE)[number]['arch'];
export const ARCHES: readonly Arch[] = ARCH_TABLE.map((a) => a.arch);
/** A canonical arch name, as every schema takes it. */
export const ArchSchema = z.enum(ARCHES as [Arch, ...Arch[]]);

export function isArch(value: string): value is Arch {
  return (ARCHES as readonly string[]).includes(value);
}

/** Canonical arch for a canonical name or alias (`amd64` → `x86_64`), or undefined. */
export function normalizeArch(value: string): Arch | undefined {
  const v = value.trim().toLowerCase();
  const row = ARCH_TABLE.find((a) => a.arch === v || (a.aliases as readonly string[]).includes(v));
  return row?.arch;
}

/** `linux/amd64`, `linux/arm64/v8`, … for an arch. */
export function dockerPlatform(arch: Arch, os = 'linux'): string {
  const row = ARCH_TABLE.find((a) => a.arch === arch)!;
  return [os, row.docker.architecture, row.docker.variant].filter(Boolean).join('/');
}

/** Docker's `{architecture, variant}` (as in an image config or manifest list) for an arch. */
export function dockerArchitecture(arch: Arch): { architecture: string; variant: string | undefined } {
  return { ...ARCH_TABLE.find((a) => a.arch === arch)!.docker };
}

/**
 * Arch for a Docker platform (`linux/arm64/v8`, `linux/arm64`, `arm64`) or an image config's
 * architecture + variant.
 */
export function archFromDocker(platformOrArchitecture: string, variant?: string): Arch | undefined {
  const parts = platformOrArchitecture.toLowerCase().split('/');
  const [architecture, v] = parts.length >= 2 && parts[0] === 'linux' ? [parts[1], parts[2]] : [parts[0], parts[1] ?? variant];
  const row = ARCH_TABLE.find(
    (a) => a.docker.architecture === architecture && (v === undefined || a.docker.variant === undefined || a.docker.variant === v),
  );
  return row?.arch;
}

/** Debian's name for an arch (`amd64`, `arm64`), as debootstrap and dpkg want it. */
export function debianArch(arch: Arch): string {
  return ARCH_TABLE.find((a) => a.arch === arch)!.debian;
}

/** qemu-user's name for an arch (`aarch64`), as binfmt handlers are named. */
export function qemuArch(arch: Arch): string {
  return ARCH_TABLE.find((a) => a.arch === arch)!.qemu;
}
