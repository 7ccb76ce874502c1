import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../core/errors/index.ts';
import { normalizeArch } from '../../../core/tuple/arch.ts';
import { parseTarget } from '../../../core/tuple/tuple.ts';
import { IMAGE_PROBE_SCRIPT, parseImageProbe, targetFromFacts, tupleFromFacts, type ImageFacts } from '../../../images/facts.ts';

// What IMAGE_PROBE_SCRIPT prints in the images measured in FACTS.md#builder-images (bookworm's is this
// machine's own output; the others differ where those distros do).

const BULLSEYE = `@@arch
x86_64
@@glibc
glibc 2.31
@@ldd
ldd (Debian GLIBC 2.31-13+deb11u11) 2.31
Copyright (C) 2020 Free Software Foundation, Inc.
@@os-release
PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"
NAME="Debian GNU/Linux"
VERSION_ID="11"
VERSION="11 (bullseye)"
VERSION_CODENAME=bullseye
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
@@otp
23.2.6
@@erts
erts-11.1.8
@@elixir
{vsn,"1.10.3"}
@@crypto-nif
libcrypto.so.1.1
@@libcrypto
libcrypto.so.1.1
@@end
`;

const BOOKWORM = `@@arch
x86_64
@@glibc
glibc 2.36
@@ldd
ldd (Debian GLIBC 2.36-9+deb12u14) 2.36
Copyright (C) 2022 Free Software Foundation, Inc.
@@os-release
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
@@otp
25.2.3
@@erts
erts-13.1.5
@@elixir
{vsn,"1.14.0"}
@@crypto-nif
libcrypto.so.3
@@libcrypto
libcrypto.so.3
@@end
`;

const TRIXIE = `@@arch
x86_64
@@glibc
glibc 2.41
@@ldd
ldd (Debian GLIBC 2.41-12) 2.41
Copyright (C) 2024 Free Software Foundation, Inc.
@@os-release
PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
DEBIAN_VERSION_FULL=13.1
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
@@otp
27.3.4.1
@@erts
erts-15.2.7
@@elixir
{vsn,"1.18.3"}
@@crypto-nif
libcrypto.so.3
@@libcrypto
libcrypto.so.3
@@end
`;

/** bookworm under qemu-user: the same packages, another machine. */
const BOOKWORM_AARCH64 = BOOKWORM.replace('@@arch\nx86_64', '@@arch\naarch64');

/** The runtime flavour: libssl but no Erlang, no Elixir. */
const BOOKWORM_RUNTIME = `@@arch
x86_64
@@glibc
glibc 2.36
@@ldd
ldd (Debian GLIBC 2.36-9+deb12u14) 2.36
Copyright (C) 2022 Free Software Foundation, Inc.
@@os-release
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
@@otp
@@erts
@@elixir
@@crypto-nif
@@libcrypto
libcrypto.so.3
@@end
`;

/** hexpm/elixir:1.17.3-erlang-27.1.2-ubuntu-jammy-20240808: OTP and Elixir built into /usr/local. */
const HEXPM_JAMMY = `@@arch
x86_64
@@glibc
glibc 2.35
@@ldd
ldd (Ubuntu GLIBC 2.35-0ubuntu3.8) 2.35
Copyright (C) 2022 Free Software Foundation, Inc.
@@os-release
PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=jammy
@@otp
27.1.2
@@erts
erts-15.1.2
@@elixir
{vsn,"1.17.3"}
@@crypto-nif
libcrypto.so.3
@@libcrypto
libcrypto.so.3
@@end
`;

/** hexpm/elixir:1.15.7-erlang-26.1.2-alpine-3.18.4: musl, no getconf answer. */
const HEXPM_ALPINE = `@@arch
x86_64
@@glibc
@@ldd
musl libc (x86_64)
Version 1.2.4
@@os-release
NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.18.4
PRETTY_NAME="Alpine Linux v3.18"
HOME_URL="https://alpinelinux.org/"
@@otp
26.1.2
@@erts
erts-14.1.1
@@elixir
{vsn,"1.15.7"}
@@crypto-nif
libcrypto.so.3
@@libcrypto
libcrypto.so.3
@@end
`;

/** A pre-release: OTP_VERSION and elixir.app write "-rc", tuples "~rc". */
const BOOKWORM_RC = BOOKWORM.replace('@@otp\n25.2.3', '@@otp\n27.0-rc3').replace('erts-13.1.5', 'erts-15.0').replace('{vsn,"1.14.0"}', '{vsn,"1.17.0-rc.1"}');

const facts = (over: Partial<ImageFacts>): ImageFacts => ({
  os: 'linux',
  arch: 'x86_64',
  libc: 'gnu',
  libcVersion: '2.36',
  distro: 'debian',
  distroVersion: '12',
  ...over,
});

/** The ValidationError `fn` throws. */
function validationError(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

function probeIssues(text: string): { path: string; message: string }[] {
  const err = validationError(() => parseImageProbe(text));
  expect(err.message).toMatch(/^image probe failed\n/);
  return [...err.issues];
}

describe('parseImageProbe', () => {
  it.each([
    [
      'bullseye',
      BULLSEYE,
      facts({ libcVersion: '2.31', distroVersion: '11', otp: '23.2.6', erts: '11.1.8', elixir: '1.10.3', libcrypto: 'libcrypto.so.1.1' }),
    ],
    ['bookworm', BOOKWORM, facts({ otp: '25.2.3', erts: '13.1.5', elixir: '1.14.0', libcrypto: 'libcrypto.so.3' })],
    [
      'trixie',
      TRIXIE,
      facts({ libcVersion: '2.41', distroVersion: '13', otp: '27.3.4.1', erts: '15.2.7', elixir: '1.18.3', libcrypto: 'libcrypto.so.3' }),
    ],
    ['bookworm on aarch64', BOOKWORM_AARCH64, facts({ arch: 'aarch64', otp: '25.2.3', erts: '13.1.5', elixir: '1.14.0', libcrypto: 'libcrypto.so.3' })],
    ['a bookworm runtime image', BOOKWORM_RUNTIME, facts({ libcrypto: 'libcrypto.so.3' })],
    [
      'a hexpm ubuntu jammy image',
      HEXPM_JAMMY,
      facts({ libcVersion: '2.35', distro: 'ubuntu', distroVersion: '22.04', otp: '27.1.2', erts: '15.1.2', elixir: '1.17.3', libcrypto: 'libcrypto.so.3' }),
    ],
    [
      'a hexpm alpine image',
      HEXPM_ALPINE,
      facts({ libc: 'musl', libcVersion: '1.2.4', distro: 'alpine', distroVersion: '3.18', otp: '26.1.2', erts: '14.1.1', elixir: '1.15.7', libcrypto: 'libcrypto.so.3' }),
    ],
    ['an OTP and Elixir pre-release', BOOKWORM_RC, facts({ otp: '27.0~rc3', erts: '15.0', elixir: '1.17.0~rc.1', libcrypto: 'libcrypto.so.3' })],
  ])('reads the facts of %s', (_name, output, expected) => {
    expect(parseImageProbe(output)).toEqual(expected);
  });

  it('gives a runtime image no OTP, ERTS or Elixir', () => {
    const f = parseImageProbe(BOOKWORM_RUNTIME);
    expect(f).not.toHaveProperty('otp');
    expect(f).not.toHaveProperty('erts');
    expect(f).not.toHaveProperty('elixir');
  });

  it('reads Windows line endings and indented lines', () => {
    expect(parseImageProbe(TRIXIE.replaceAll('\n', '\r\n'))).toEqual(parseImageProbe(TRIXIE));
    expect(parseImageProbe(TRIXIE.replaceAll('\n', '\n  '))).toEqual(parseImageProbe(TRIXIE));
  });

  it('prefers the soname the crypto NIF links against over the ones installed', () => {
    const both = BULLSEYE.replace('@@libcrypto\nlibcrypto.so.1.1', '@@libcrypto\nlibcrypto.so.1.1\nlibcrypto.so.3');
    expect(parseImageProbe(both).libcrypto).toBe('libcrypto.so.1.1');
  });

  it('falls back to the newest installed libcrypto when there is no crypto NIF', () => {
    const text = BOOKWORM_RUNTIME.replace('@@libcrypto\nlibcrypto.so.3', '@@libcrypto\nlibcrypto.so.3\nlibcrypto.so.1.1');
    expect(parseImageProbe(text).libcrypto).toBe('libcrypto.so.3');
  });

  it('has no libcrypto fact when the image has none', () => {
    expect(parseImageProbe(BOOKWORM_RUNTIME.replace('@@libcrypto\nlibcrypto.so.3', '@@libcrypto'))).not.toHaveProperty('libcrypto');
  });

  it('lists arch, libc and distro when the output is not a probe at all', () => {
    const issues = probeIssues('/bin/sh: 1: exec format error\n');
    expect(issues.map((i) => i.path)).toEqual(['arch', 'libc', 'distro', 'distroVersion']);
    expect(issues[0]!.message).toBe('unknown machine ""');
  });

  it('names an unknown machine', () => {
    expect(probeIssues(BOOKWORM.replace('@@arch\nx86_64', '@@arch\nsparc64'))).toEqual([{ path: 'arch', message: 'unknown machine "sparc64"' }]);
  });

  it('refuses a distro without VERSION_ID (testing, sid)', () => {
    const sid = BOOKWORM.replace('VERSION_ID="12"\n', '');
    expect(probeIssues(sid)).toEqual([{ path: 'distroVersion', message: 'no usable VERSION_ID in /etc/os-release ("")' }]);
  });

  it('refuses an unreadable OTP_VERSION', () => {
    expect(probeIssues(BOOKWORM.replace('@@otp\n25.2.3', '@@otp\ncat: OTP_VERSION: Permission denied'))).toEqual([
      { path: 'otp', message: 'unreadable OTP_VERSION "cat: OTP_VERSION: Permission denied"' },
    ]);
  });

  it('reports an os-release ID that a tuple cannot carry as a validation error, not a crash', () => {
    const leap = BOOKWORM.replace('ID=debian', 'ID="opensuse-leap"');
    expect(probeIssues(leap).map((i) => i.path)).toEqual(['distro']);
  });
});

describe('tupleFromFacts', () => {
  it.each([
    [BULLSEYE, 'linux-x86_64-gnu2.31-debian11-otp23.2.6-elixir1.10.3'],
    [BOOKWORM, 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0'],
    [TRIXIE, 'linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3'],
    [BOOKWORM_AARCH64, 'linux-aarch64-gnu2.36-debian12-otp25.2.3-elixir1.14.0'],
    [HEXPM_JAMMY, 'linux-x86_64-gnu2.35-ubuntu22.04-otp27.1.2-elixir1.17.3'],
    [HEXPM_ALPINE, 'linux-x86_64-musl1.2-alpine3.18-otp26.1.2-elixir1.15.7'],
    [BOOKWORM_RC, 'linux-x86_64-gnu2.36-debian12-otp27.0~rc3-elixir1.17.0~rc.1'],
  ])('gives the probed image its tuple %#: %s', (output, tuple) => {
    const t = tupleFromFacts(parseImageProbe(output));
    expect(t).toBe(tuple);
    expect(parseTarget(t).ok).toBe(true);
  });

  it('makes the three suites differ in glibc floor, OTP and libcrypto as the distros do', () => {
    const all = [BULLSEYE, BOOKWORM, TRIXIE].map(parseImageProbe);
    expect(new Set(all.map((f) => f.libcVersion)).size).toBe(3);
    expect(new Set(all.map((f) => f.otp)).size).toBe(3);
    expect(all.map((f) => f.libcrypto)).toEqual(['libcrypto.so.1.1', 'libcrypto.so.3', 'libcrypto.so.3']);
  });

  it('keeps the libc floor to major.minor', () => {
    expect(targetFromFacts(facts({ libcVersion: '2.36.1', otp: '25.2.3', elixir: '1.14.0' })).libcVersion).toBe('2.36');
  });

  it('refuses a runtime image, naming otp and elixir', () => {
    const err = validationError(() => targetFromFacts(parseImageProbe(BOOKWORM_RUNTIME)));
    expect(err.issues.map((i) => i.path)).toEqual(['otp', 'elixir']);
    expect(err.message).toContain('is it a builder image?');
    expect(() => tupleFromFacts(parseImageProbe(BOOKWORM_RUNTIME))).toThrow(ValidationError);
  });

  it('refuses facts that make no valid tuple (an OTP_VERSION of just "26")', () => {
    const f = parseImageProbe(BOOKWORM.replace('@@otp\n25.2.3', '@@otp\n26'));
    expect(f.otp).toBe('26');
    const err = validationError(() => tupleFromFacts(f));
    expect(err.message).toMatch(/^cannot derive a target tuple\notp: expected a full OTP version/);
    expect(err.issues.map((i) => i.path)).toEqual(['otp']);
  });
});

describe('IMAGE_PROBE_SCRIPT', () => {
  it('prints the sections parseImageProbe reads, in order', () => {
    const names = [...IMAGE_PROBE_SCRIPT.matchAll(/^echo @@([a-z-]+)/gm)].map((m) => m[1]);
    expect(names).toEqual(['arch', 'glibc', 'ldd', 'os-release', 'otp', 'erts', 'elixir', 'crypto-nif', 'libcrypto', 'end']);
  });

  it("looks in hexpm's /usr/local before Debian's /usr/lib", () => {
    for (const what of ['erlang', 'elixir']) {
      const local = IMAGE_PROBE_SCRIPT.indexOf(`/usr/local/lib/${what}`);
      expect(local).toBeGreaterThan(-1);
      expect(local).toBeLessThan(IMAGE_PROBE_SCRIPT.indexOf(`/usr/lib/${what}`));
    }
  });

  it('is the same bytes for every image (nothing interpolated)', () => {
    expect(IMAGE_PROBE_SCRIPT).not.toMatch(/\$\{|undefined/);
  });

  it.skipIf(process.platform !== 'linux')('reads this machine when run with /bin/sh', () => {
    const out = execFileSync('/bin/sh', ['-c', IMAGE_PROBE_SCRIPT], { encoding: 'utf8', timeout: 30_000 });
    const f = parseImageProbe(out);
    expect(f.arch).toBe(normalizeArch(process.arch));
    expect(f.arch).toBe('x86_64');
    const osRelease = readFileSync('/etc/os-release', 'utf8');
    expect(f.distro).toBe(/^ID="?([a-z]+)"?$/m.exec(osRelease)?.[1]);
    expect(f.distro).toBe('debian');
    expect(f.libc).toBe('gnu');
    // OTP is installed here with elixir: the probe finds the same release the file system has.
    const otpFile = ['/usr/local/lib/erlang', '/usr/lib/erlang']
      .flatMap((root) => (existsSync(join(root, 'releases')) ? readdirSync(join(root, 'releases')).map((r) => join(root, 'releases', r, 'OTP_VERSION')) : []))
      .find((p) => existsSync(p));
    if (otpFile) expect(f.otp).toBe(readFileSync(otpFile, 'utf8').trim().replace('-rc', '~rc'));
    else expect(f).not.toHaveProperty('otp');
    if (f.otp && f.elixir) expect(parseTarget(tupleFromFacts(f)).ok).toBe(true);
  });
});
