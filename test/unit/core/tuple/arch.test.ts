import { describe, expect, it } from 'vitest';
import { ARCHES, ARCH_TABLE, ArchSchema, archFromDocker, dockerArchitecture, dockerPlatform, isArch, normalizeArch } from '../../../../core/tuple/arch.ts';

describe('normalizeArch', () => {
  it.each([
    ['x86_64', 'x86_64'],
    ['amd64', 'x86_64'],
    ['x64', 'x86_64'],
    ['x86-64', 'x86_64'],
    ['aarch64', 'aarch64'],
    ['arm64', 'aarch64'],
    ['arm64/v8', 'aarch64'],
    ['armv8', 'aarch64'],
    ['armv7l', 'armv7l'],
    ['armhf', 'armv7l'],
    ['armv7', 'armv7l'],
    ['arm/v7', 'armv7l'],
    ['riscv64', 'riscv64'],
    [' AMD64 ', 'x86_64'],
    ['ARM64', 'aarch64'],
  ])('maps %j to %s', (input, arch) => {
    expect(normalizeArch(input)).toBe(arch);
  });

  it.each(['arm65', 'sparc', 'i386', 'i686', 's390x', 'ppc64le', 'mips', '', 'aarch64_be'])('knows no arch for %j', (input) => {
    expect(normalizeArch(input)).toBeUndefined();
  });

  it('maps each canonical name to itself and isArch agrees', () => {
    for (const a of ARCHES) {
      expect(normalizeArch(a)).toBe(a);
      expect(isArch(a)).toBe(true);
    }
    expect(isArch('amd64')).toBe(false);
  });

  it('has no alias shared by two arches', () => {
    const all = ARCH_TABLE.flatMap((r) => [r.arch, ...r.aliases]);
    expect(new Set(all).size).toBe(all.length);
  });
});

describe('dockerPlatform', () => {
  it.each([
    ['x86_64', 'linux/amd64'],
    ['aarch64', 'linux/arm64/v8'],
    ['armv7l', 'linux/arm/v7'],
    ['riscv64', 'linux/riscv64'],
  ] as const)('gives %s as %s', (arch, platform) => {
    expect(dockerPlatform(arch)).toBe(platform);
  });

  it('uses the os given', () => {
    expect(dockerPlatform('x86_64', 'windows')).toBe('windows/amd64');
  });
});

describe('archFromDocker', () => {
  it.each(ARCHES)('round-trips %s through its Docker platform', (arch) => {
    expect(archFromDocker(dockerPlatform(arch))).toBe(arch);
  });

  it.each(ARCHES)('round-trips %s through its image-config architecture and variant', (arch) => {
    const { architecture, variant } = dockerArchitecture(arch);
    expect(archFromDocker(architecture, variant)).toBe(arch);
  });

  it.each([
    ['linux/arm64', 'aarch64'],
    ['arm64', 'aarch64'],
    ['linux/amd64', 'x86_64'],
    ['LINUX/AMD64', 'x86_64'],
    ['arm/v7', 'armv7l'],
    ['linux/arm', 'armv7l'],
  ])('reads %s as %s', (platform, arch) => {
    expect(archFromDocker(platform)).toBe(arch);
  });

  it('reads an arm64 without a variant as aarch64', () => {
    expect(archFromDocker('linux/arm64')).toBe('aarch64');
    expect(archFromDocker('arm64', undefined)).toBe('aarch64');
  });

  it.each(['linux/arm/v6', 'linux/386', 'linux/s390x', 'linux/ppc64le', 'linux/arm64/v9'])('knows no arch for %s', (platform) => {
    expect(archFromDocker(platform)).toBeUndefined();
  });

  it('takes the variant argument for a bare architecture', () => {
    expect(archFromDocker('arm', 'v7')).toBe('armv7l');
    expect(archFromDocker('arm', 'v6')).toBeUndefined();
  });
});

describe('dockerArchitecture', () => {
  it('returns a copy that callers cannot use to change the table', () => {
    const d = dockerArchitecture('aarch64');
    expect(d).toEqual({ architecture: 'arm64', variant: 'v8' });
    d.architecture = 'mutated';
    expect(dockerArchitecture('aarch64').architecture).toBe('arm64');
  });
});

describe('ArchSchema', () => {
  it('takes every canonical arch and refuses an alias', () => {
    for (const a of ARCHES) expect(ArchSchema.parse(a)).toBe(a);
    expect(ArchSchema.safeParse('amd64').success).toBe(false);
  });
});
