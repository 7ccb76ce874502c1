import { describe, expect, it } from 'vitest';
import { canRun, parseTargetOrThrow, type ArtifactFacts, type HostFingerprint, type RejectCode } from '../../../../core/tuple/index.ts';

// Artifacts as measured in FACTS.md#where-a-release-runs: the tuple carries the builder
// image's glibc, the ELF scan found a lower floor actually needed, and these sonames.
const built: Record<'debian11' | 'debian12' | 'debian13', ArtifactFacts> = {
  debian11: {
    target: parseTargetOrThrow('linux-x86_64-gnu2.31-debian11-otp23.2.6-elixir1.10.3'),
    libcNeeded: '2.29',
    sonames: ['libtinfo.so.6', 'libz.so.1', 'libcrypto.so.1.1'],
  },
  debian12: {
    target: parseTargetOrThrow('linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0'),
    libcNeeded: '2.34',
    sonames: ['libtinfo.so.6', 'libz.so.1', 'libstdc++.so.6', 'libcrypto.so.3'],
  },
  debian13: {
    target: parseTargetOrThrow('linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3'),
    libcNeeded: '2.38',
    sonames: ['libtinfo.so.6', 'libz.so.1', 'libstdc++.so.6', 'libcrypto.so.3'],
  },
};

const host = (over: Partial<HostFingerprint>): HostFingerprint => ({
  os: 'linux',
  arch: 'x86_64',
  libc: 'gnu',
  libcVersion: '2.36',
  distro: 'debian',
  distroVersion: '12',
  libraries: ['libc.so.6', 'libtinfo.so.6', 'libz.so.1', 'libstdc++.so.6', 'libcrypto.so.3'],
  ...over,
});

const hosts: Record<'debian11' | 'debian12' | 'debian13', HostFingerprint> = {
  debian11: host({
    libcVersion: '2.31',
    distroVersion: '11',
    distroCodename: 'bullseye',
    libraries: ['libc.so.6', 'libtinfo.so.6', 'libz.so.1', 'libstdc++.so.6', 'libcrypto.so.1.1', 'libssl.so.1.1'],
  }),
  debian12: host({ libcVersion: '2.36', distroVersion: '12', distroCodename: 'bookworm' }),
  debian13: host({ libcVersion: '2.41', distroVersion: '13', distroCodename: 'trixie' }),
};

// built on ↓ / run on → — the measured matrix; [] means it runs.
const MATRIX: [keyof typeof built, keyof typeof hosts, RejectCode[], string][] = [
  ['debian11', 'debian11', [], ''],
  ['debian11', 'debian12', ['soname'], 'host lacks libcrypto.so.1.1'],
  ['debian11', 'debian13', ['soname'], 'host lacks libcrypto.so.1.1'],
  ['debian12', 'debian11', ['libc-floor', 'soname'], 'needs glibc >= 2.34, host has 2.31'],
  ['debian12', 'debian12', [], ''],
  ['debian12', 'debian13', [], ''],
  ['debian13', 'debian11', ['libc-floor', 'soname'], 'needs glibc >= 2.38, host has 2.31'],
  ['debian13', 'debian12', ['libc-floor'], 'needs glibc >= 2.38, host has 2.36'],
  ['debian13', 'debian13', [], ''],
];

describe('canRun on the measured Debian matrix', () => {
  it.each(MATRIX)('a %s build on a %s host: %j', (from, to, codes, message) => {
    const verdict = canRun(built[from], hosts[to]);
    expect(verdict.reasons.map((r) => r.code)).toEqual(codes);
    expect(verdict.ok).toBe(codes.length === 0);
    if (message) expect(verdict.reasons[0]!.message).toBe(message);
  });

  it.each(['debian11', 'debian12', 'debian13'] as const)('a Debian 11 build without :crypto runs on %s', (to) => {
    const noCrypto: ArtifactFacts = { ...built.debian11, sonames: ['libtinfo.so.6', 'libz.so.1'] };
    expect(canRun(noCrypto, hosts[to])).toEqual({ ok: true, reasons: [] });
  });

  it('names the missing libcrypto.so.3 when a Debian 12 build meets Debian 11', () => {
    const soname = canRun(built.debian12, hosts.debian11).reasons.find((r) => r.code === 'soname');
    expect(soname?.message).toBe('host lacks libcrypto.so.3');
  });
});

describe('canRun', () => {
  it('reports every reason at once: arch, libc floor and soname', () => {
    const arm13: ArtifactFacts = { ...built.debian13, target: { ...built.debian13.target, arch: 'aarch64' } };
    const verdict = canRun(arm13, hosts.debian11);
    expect(verdict.ok).toBe(false);
    expect(verdict.reasons).toEqual([
      { code: 'arch', message: 'built for aarch64, host is x86_64' },
      { code: 'libc-floor', message: 'needs glibc >= 2.38, host has 2.31' },
      { code: 'soname', message: 'host lacks libcrypto.so.3' },
    ]);
  });

  it('lists every missing soname in one reason', () => {
    const verdict = canRun({ ...built.debian12, sonames: ['libcrypto.so.3', 'libssl.so.3', 'libz.so.1'] }, hosts.debian11);
    expect(verdict.reasons.find((r) => r.code === 'soname')!.message).toBe('host lacks libcrypto.so.3, libssl.so.3');
  });

  it('adds a distro reason when the same distro release is required', () => {
    expect(canRun(built.debian12, hosts.debian13).ok).toBe(true);
    const verdict = canRun(built.debian12, hosts.debian13, { requireSameDistro: true });
    expect(verdict).toEqual({ ok: false, reasons: [{ code: 'distro', message: 'built on debian12, host runs debian13' }] });
    expect(canRun(built.debian12, hosts.debian12, { requireSameDistro: true }).ok).toBe(true);
  });

  it('refuses a musl artifact on a glibc host with a libc reason (and no floor comparison across families)', () => {
    const alpine: ArtifactFacts = { target: parseTargetOrThrow('linux-x86_64-musl1.2-alpine3.21-otp27.3.4-elixir1.18.4') };
    const verdict = canRun(alpine, hosts.debian12);
    expect(verdict.reasons).toEqual([{ code: 'libc', message: 'built against musl libc, host has gnu' }]);
  });

  it('refuses a glibc artifact on a musl host with a libc reason', () => {
    const alpineHost = host({ libc: 'musl', libcVersion: '1.2.5', distro: 'alpine', distroVersion: '3.21.3', libraries: ['libc.musl-x86_64.so.1'] });
    expect(canRun({ target: built.debian12.target }, alpineHost).reasons.map((r) => r.code)).toEqual(['libc']);
  });

  it('refuses another os', () => {
    const mac: ArtifactFacts = { target: { ...built.debian12.target, os: 'darwin' } };
    expect(canRun(mac, hosts.debian12).reasons).toContainEqual({ code: 'os', message: 'built for darwin, host runs linux' });
  });

  it('uses the tuple\'s floor when there are no manifest facts', () => {
    const tupleOnly12: ArtifactFacts = { target: built.debian12.target };
    expect(canRun(tupleOnly12, hosts.debian12).ok).toBe(true);
    expect(canRun(tupleOnly12, host({ libcVersion: '2.35' })).reasons).toEqual([{ code: 'libc-floor', message: 'needs glibc >= 2.36, host has 2.35' }]);
    // the Debian 13 tuple says 2.41, so without the ELF scan's 2.38 it is refused on 2.40 too
    const tupleOnly13: ArtifactFacts = { target: built.debian13.target };
    expect(canRun(tupleOnly13, host({ libcVersion: '2.40' })).reasons.map((r) => r.code)).toEqual(['libc-floor']);
    expect(canRun(built.debian13, host({ libcVersion: '2.40' })).ok).toBe(true);
  });

  it('compares glibc versions numerically (2.9 < 2.10)', () => {
    const old: ArtifactFacts = { target: { ...built.debian12.target, libcVersion: '2.9' } };
    expect(canRun(old, host({ libcVersion: '2.10' })).ok).toBe(true);
  });

  it('does not check sonames when the host listed no libraries', () => {
    expect(canRun(built.debian11, host({ libraries: [] })).ok).toBe(true);
  });

  it('is pure: the same inputs give the same verdict and are not changed', () => {
    const a = structuredClone(built.debian12);
    const h = structuredClone(hosts.debian11);
    const first = canRun(a, h);
    expect(canRun(a, h)).toEqual(first);
    expect(a).toEqual(built.debian12);
    expect(h).toEqual(hosts.debian11);
  });
});
