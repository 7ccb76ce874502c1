import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { imageLabels, finalTag } from '../../../builder/images/build.ts';
import { binfmtRegistration } from '../../../builder/emulation.ts';
import { ValidationError, XamalError } from '../../../core/errors/index.ts';
import type { Arch } from '../../../core/tuple/arch.ts';
import { DEBIAN_SUITES } from '../../../images/distros.ts';
import type { ImageFacts } from '../../../images/facts.ts';
import { buildUserEntries, FLAVOURS, recipePackages, recipePlan, rootfsCachePath, type Flavour, type RecipeInput } from '../../../images/recipes/debian.ts';

const MIRROR = 'http://deb.debian.org/debian';
const plan = (over: Partial<RecipeInput> = {}) => recipePlan({ suite: 'bookworm', arch: 'x86_64', flavour: 'builder', mirror: MIRROR, hostArch: 'x86_64', ...over });

describe('recipePlan: debootstrap', () => {
  it('bootstraps natively on the same arch: no --foreign and no second stage', () => {
    const p = plan();
    expect(p.foreign).toBe(false);
    expect(p.debootstrap('/w/rootfs').argv).toEqual([
      'debootstrap',
      '--variant=minbase',
      '--arch=amd64',
      `--include=${recipePackages('bookworm', 'builder').join(',')}`,
      'bookworm',
      '/w/rootfs',
      MIRROR,
    ]);
    expect(p.secondStage).toBeUndefined();
  });

  it('bootstraps aarch64 on an x86_64 host in two stages, the second under emulation in a chroot', () => {
    const p = plan({ arch: 'aarch64' });
    expect(p.foreign).toBe(true);
    const argv = p.debootstrap('/w/rootfs').argv;
    expect(argv).toContain('--foreign');
    expect(argv).toContain('--arch=arm64');
    expect(argv.slice(-3)).toEqual(['bookworm', '/w/rootfs', MIRROR]);
    expect(p.secondStage?.('/w/rootfs').argv).toEqual(['chroot', '/w/rootfs', '/debootstrap/debootstrap', '--second-stage']);
  });

  it('bootstraps natively on an aarch64 host and foreign for x86_64 there', () => {
    expect(plan({ arch: 'aarch64', hostArch: 'aarch64' }).secondStage).toBeUndefined();
    const p = plan({ arch: 'x86_64', hostArch: 'aarch64' });
    expect(p.foreign).toBe(true);
    expect(p.debootstrap('/r').argv).toEqual(expect.arrayContaining(['--foreign', '--arch=amd64']));
  });

  it('gives every step a label and debootstrap a time limit', () => {
    const p = plan({ arch: 'aarch64' });
    for (const c of [p.debootstrap('/r'), p.secondStage!('/r'), p.tar('/r'), p.compress, p.decompress('/c/f.tar.zst')]) expect(c.label).toBeTruthy();
    expect(p.debootstrap('/r').timeoutMs).toBeGreaterThan(0);
  });

  it('tars the rootfs with numeric owners to stdout and zstd-compresses and decompresses it', () => {
    const p = plan();
    expect(p.tar('/w/rootfs').argv).toEqual(['tar', '--numeric-owner', '--xattrs', '-C', '/w/rootfs', '-cf', '-', '.']);
    expect(p.compress.argv[0]).toBe('zstd');
    expect(p.compress.argv).toContain('-c');
    expect(p.decompress('/c/rootfs/x.tar.zst').argv).toEqual(['zstd', '-q', '-dc', '/c/rootfs/x.tar.zst']);
  });
});

describe('recipePackages', () => {
  it.each([
    ['bullseye', 'libssl1.1'],
    ['bookworm', 'libssl3'],
    ['trixie', 'libssl3t64'],
  ] as const)('gives %s both flavours %s', (suite, libssl) => {
    for (const flavour of FLAVOURS) {
      const pkgs = recipePackages(suite, flavour);
      expect(pkgs).toContain(libssl);
      expect(pkgs.filter((x) => x.startsWith('libssl'))).toEqual([libssl]);
      expect(plan({ suite, flavour }).packages).toEqual(pkgs);
    }
  });

  it.each(DEBIAN_SUITES)('gives the %s builder Elixir, the Erlang apps a build needs, git and CA certificates', (suite) => {
    expect(recipePackages(suite, 'builder')).toEqual(expect.arrayContaining(['elixir', 'erlang-crypto', 'erlang-ssl', 'erlang-public-key', 'erlang-dev', 'git', 'ca-certificates']));
  });

  it.each(DEBIAN_SUITES)('gives the %s runtime no Elixir, no Erlang and no git', (suite) => {
    const pkgs = recipePackages(suite, 'runtime');
    expect(pkgs).not.toContain('elixir');
    expect(pkgs).not.toContain('git');
    expect(pkgs.filter((x) => x.startsWith('erlang'))).toEqual([]);
    expect(pkgs).toContain('ca-certificates');
  });

  it('lists each package once', () => {
    for (const suite of DEBIAN_SUITES) for (const flavour of FLAVOURS) {
      const pkgs = recipePackages(suite, flavour);
      expect(new Set(pkgs).size).toBe(pkgs.length);
    }
  });
});

describe('recipePlan: rootfs cache', () => {
  const combos = DEBIAN_SUITES.flatMap((suite) => (['x86_64', 'aarch64'] as Arch[]).flatMap((arch) => FLAVOURS.map((flavour) => ({ suite, arch, flavour }))));

  it('gives every suite, arch and flavour its own cache key', () => {
    const keys = combos.map((c) => plan(c).cacheKey);
    expect(new Set(keys).size).toBe(combos.length);
    for (const k of keys) expect(k).toMatch(/^[0-9a-f]{16}$/);
  });

  it('gives the same input the same key, every time', () => {
    expect(plan({ suite: 'trixie', arch: 'aarch64' }).cacheKey).toBe(plan({ suite: 'trixie', arch: 'aarch64' }).cacheKey);
  });

  it('keys only the rootfs content: another mirror or build host reuses the cache', () => {
    const key = plan({ arch: 'aarch64' }).cacheKey;
    expect(plan({ arch: 'aarch64', mirror: 'http://mirror.example/debian' }).cacheKey).toBe(key);
    expect(plan({ arch: 'aarch64', hostArch: 'aarch64' }).cacheKey).toBe(key);
  });

  it.each(combos)('names the cached tarball after $suite, $arch and $flavour', ({ suite, arch, flavour }) => {
    const p = plan({ suite, arch, flavour });
    expect(p.cacheFile).toBe(`${suite}-${arch}-${flavour}-${p.cacheKey}.tar.zst`);
    expect(rootfsCachePath('/var/cache/xamal', p)).toBe(`/var/cache/xamal/rootfs/${p.cacheFile}`);
  });
});

describe('recipePlan: the imported image', () => {
  it('sets a UTF-8 locale, PATH, the build home and a shell', () => {
    expect(plan().changes).toEqual(['ENV LANG=C.UTF-8', 'ENV LC_ALL=C.UTF-8', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'ENV HOME=/home/build', 'CMD ["/bin/sh"]']);
  });

  it.each([
    ['builder', 'xamal/builder:staging-bookworm-aarch64'],
    ['runtime', 'xamal/runtime:staging-bookworm-aarch64'],
  ] as const)('stages the %s image as %s', (flavour, tag) => {
    expect(plan({ arch: 'aarch64', flavour }).stagingTag).toBe(tag);
  });
});

describe('buildUserEntries', () => {
  it('adds the build user as uid and gid 1000 with a locked password', () => {
    expect(buildUserEntries()).toEqual({
      passwd: 'build:x:1000:1000::/home/build:/bin/sh\n',
      group: 'build:x:1000:\n',
      shadow: 'build:!:19000:0:99999:7:::\n',
    });
  });

  it('writes lines with the field counts of passwd (7), group (4) and shadow (9)', () => {
    const u = buildUserEntries();
    expect(u.passwd.trimEnd().split(':')).toHaveLength(7);
    expect(u.group.trimEnd().split(':')).toHaveLength(4);
    expect(u.shadow.trimEnd().split(':')).toHaveLength(9);
  });
});

const BOOKWORM_FACTS: ImageFacts = {
  os: 'linux',
  arch: 'x86_64',
  libc: 'gnu',
  libcVersion: '2.36',
  distro: 'debian',
  distroVersion: '12',
  otp: '25.2.3',
  erts: '13.1.5',
  elixir: '1.14.0',
  libcrypto: 'libcrypto.so.3',
};
const { otp: _o, erts: _e, elixir: _x, ...RUNTIME_FACTS } = BOOKWORM_FACTS;
const BOOKWORM_TUPLE = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';

describe('imageLabels', () => {
  it('labels a builder image with every probed fact, its recipe and its tuple', () => {
    const p = plan();
    expect(imageLabels(BOOKWORM_FACTS, p, BOOKWORM_TUPLE)).toEqual({
      'org.xamal.arch': 'x86_64',
      'org.xamal.libc': 'gnu2.36',
      'org.xamal.distro': 'debian12',
      'org.xamal.recipe': `debian-bookworm-builder-${p.cacheKey}`,
      'org.xamal.flavour': 'builder',
      'org.xamal.otp': '25.2.3',
      'org.xamal.erts': '13.1.5',
      'org.xamal.elixir': '1.14.0',
      'org.xamal.libcrypto': 'libcrypto.so.3',
      'org.xamal.tuple': BOOKWORM_TUPLE,
    });
  });

  it('labels a runtime image without OTP, Elixir or a tuple', () => {
    const p = plan({ flavour: 'runtime' });
    const labels = imageLabels(RUNTIME_FACTS, p, undefined);
    expect(Object.keys(labels).sort()).toEqual(['org.xamal.arch', 'org.xamal.distro', 'org.xamal.flavour', 'org.xamal.libc', 'org.xamal.libcrypto', 'org.xamal.recipe']);
    expect(labels['org.xamal.recipe']).toBe(`debian-bookworm-runtime-${p.cacheKey}`);
  });
});

describe('finalTag', () => {
  const DOCKER_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

  it('tags a builder image with its probed tuple', () => {
    expect(finalTag(BOOKWORM_FACTS, 'builder')).toBe(BOOKWORM_TUPLE);
    expect(finalTag({ ...BOOKWORM_FACTS, arch: 'aarch64' }, 'builder')).toBe('linux-aarch64-gnu2.36-debian12-otp25.2.3-elixir1.14.0');
  });

  it('tags a runtime image with its distro release and arch', () => {
    expect(finalTag(RUNTIME_FACTS, 'runtime')).toBe('debian12-x86_64');
    expect(finalTag({ ...RUNTIME_FACTS, distroVersion: '13', arch: 'aarch64' }, 'runtime')).toBe('debian13-aarch64');
  });

  it.each<[string, ImageFacts, Flavour]>([
    ['bullseye builder', { ...BOOKWORM_FACTS, libcVersion: '2.31', distroVersion: '11', otp: '23.2.6', elixir: '1.10.3' }, 'builder'],
    ['trixie builder', { ...BOOKWORM_FACTS, libcVersion: '2.41', distroVersion: '13', otp: '27.3.4.1', elixir: '1.18.3' }, 'builder'],
    ['bookworm runtime', RUNTIME_FACTS, 'runtime'],
  ])('gives the %s a valid Docker tag', (_what, facts, flavour) => {
    expect(finalTag(facts, flavour)).toMatch(DOCKER_TAG);
  });

  it('refuses to tag a runtime image as a builder (no tuple without OTP and Elixir)', () => {
    expect(() => finalTag(RUNTIME_FACTS, 'builder')).toThrow(ValidationError);
  });
});

/** binfmt_misc's magic/mask text (`\xNN` escapes and plain characters, as in `\x7fELF`) → bytes. */
const bytes = (escaped: string) => [...escaped.matchAll(/\\x([0-9a-f]{2})|([^\\])/g)].map((m) => (m[1] ? parseInt(m[1], 16) : m[2]!.charCodeAt(0)));

/** Whether a file starting with `header` runs under the rule, as binfmt_misc decides: (byte ^ magic) & mask == 0. */
function ruleMatches(line: string, header: readonly number[]): boolean {
  const [, , , , magic, mask] = line.split(':');
  const m = bytes(magic!);
  const k = bytes(mask!);
  return m.every((b, i) => ((header[i]! ^ b) & k[i]!) === 0);
}

describe('binfmtRegistration', () => {
  it('registers aarch64 as qemu-aarch64 with the ELF magic as escaped text, the interpreter and flags P and F', () => {
    const r = binfmtRegistration('aarch64', '/x/aarch64-binfmt-P');
    expect(r.name).toBe('qemu-aarch64');
    expect(r.line.startsWith(':qemu-aarch64:M::\\x7fELF\\x02')).toBe(true);
    expect(r.line.endsWith(':/x/aarch64-binfmt-P:PF')).toBe(true);
    expect(r.line).not.toMatch(/[\x00-\x1f\x7f]/);
  });

  it.each([
    ['aarch64', 'qemu-aarch64', 2, 0xb7],
    ['armv7l', 'qemu-arm', 1, 0x28],
    ['riscv64', 'qemu-riscv64', 2, 0xf3],
    ['x86_64', 'qemu-x86_64', 2, 0x3e],
  ] as const)('matches %s ELF executables (name %s, class %i, machine %i)', (arch, name, elfClass, machine) => {
    const { name: got, line } = binfmtRegistration(arch, `/q/${arch}-binfmt-P`);
    expect(got).toBe(name);
    const fields = line.split(':');
    expect(fields).toEqual(['', name, 'M', '', expect.any(String), expect.any(String), `/q/${arch}-binfmt-P`, 'PF']);
    const magic = bytes(fields[4]!);
    const mask = bytes(fields[5]!);
    expect(magic).toHaveLength(20);
    expect(mask).toHaveLength(20);
    expect(magic.slice(0, 5)).toEqual([0x7f, 0x45, 0x4c, 0x46, elfClass]);
    expect(magic[18]).toBe(machine);
    // Static (ET_EXEC) and PIE (ET_DYN) executables of that machine, and no other machine's.
    const exec = [...magic];
    const pie = magic.map((b, i) => (i === 16 ? 3 : b));
    const other = magic.map((b, i) => (i === 18 ? (machine === 0x3e ? 0xb7 : 0x3e) : b));
    expect([ruleMatches(line, exec), ruleMatches(line, pie), ruleMatches(line, other)]).toEqual([true, true, false]);
  });

  it.skipIf(process.arch !== 'x64')("matches this machine's own /bin/sh with the x86_64 rule, and not with aarch64's", () => {
    const header = [...readFileSync('/bin/sh').subarray(0, 20)];
    const matches = (arch: Arch) => ruleMatches(binfmtRegistration(arch, '/q').line, header);
    expect(matches('x86_64')).toBe(true);
    expect(matches('aarch64')).toBe(false);
    expect(matches('armv7l')).toBe(false);
  });

  it('refuses an arch it has no rule for', () => {
    expect(() => binfmtRegistration('mips64' as Arch, '/q')).toThrow(XamalError);
  });
});
