import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../core/errors/index.ts';
import {
  formatTarget,
  parseTarget,
  parseTargetOrThrow,
  TargetSchema,
  TargetTupleSchema,
  TUPLE_MAX_LENGTH,
  type Target,
} from '../../../../core/tuple/index.ts';

type Case =
  | { name: string; input: unknown; ok: true; fields?: Partial<Target> }
  | { name: string; input: unknown; ok: false; paths: string[]; fragment: string };

const D12 = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
const valid = (name: string, input: string, fields?: Partial<Target>): Case => ({ name, input, ok: true, ...(fields ? { fields } : {}) });
const invalid = (name: string, input: unknown, paths: string[], fragment: string): Case => ({ name, input, ok: false, paths, fragment });

const CASES: Case[] = [
  // --- valid ---
  valid('accepts the Debian 11 x86_64 build', 'linux-x86_64-gnu2.31-debian11-otp23.2.6-elixir1.10.3', {
    os: 'linux',
    arch: 'x86_64',
    libc: 'gnu',
    libcVersion: '2.31',
    distro: 'debian',
    distroVersion: '11',
    otp: '23.2.6',
    elixir: '1.10.3',
    qualifiers: [],
  }),
  valid('accepts the Debian 12 x86_64 build', D12, { libcVersion: '2.36', distroVersion: '12', otp: '25.2.3', elixir: '1.14.0' }),
  valid('accepts the Debian 13 build with a four-component OTP version', 'linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3', {
    libcVersion: '2.41',
    distroVersion: '13',
    otp: '27.3.4.1',
    elixir: '1.18.3',
  }),
  valid('accepts the Debian 11 aarch64 build', 'linux-aarch64-gnu2.31-debian11-otp23.2.6-elixir1.10.3', { arch: 'aarch64' }),
  valid('accepts an Alpine musl build', 'linux-x86_64-musl1.2-alpine3.21-otp27.3.4-elixir1.18.4', {
    libc: 'musl',
    libcVersion: '1.2',
    distro: 'alpine',
    distroVersion: '3.21',
  }),
  valid('accepts an Ubuntu release with a dotted number', 'linux-x86_64-gnu2.39-ubuntu24.04-otp27.2-elixir1.18.1', {
    distro: 'ubuntu',
    distroVersion: '24.04',
    otp: '27.2',
  }),
  valid('accepts Ubuntu 22.04 with a five-component OTP patch release', 'linux-x86_64-gnu2.35-ubuntu22.04-otp25.3.2.8-elixir1.15.7', { otp: '25.3.2.8' }),
  valid('accepts an OTP release candidate written with ~', 'linux-x86_64-gnu2.41-debian13-otp27.0~rc1-elixir1.17.0', { otp: '27.0~rc1' }),
  valid('accepts an Elixir release candidate with a dotted pre-release', 'linux-x86_64-gnu2.41-debian13-otp28.0-elixir1.19.0~rc.0', { elixir: '1.19.0~rc.0' }),
  valid('accepts pre-releases of both OTP and Elixir at once', 'linux-x86_64-gnu2.36-debian12-otp26.0~rc3-elixir1.15.0~rc.2', {
    otp: '26.0~rc3',
    elixir: '1.15.0~rc.2',
  }),
  valid('accepts one qualifier', `${D12}+sslstatic`, { qualifiers: ['sslstatic'] }),
  valid('accepts sorted multiple qualifiers', `${D12}+fips+jit+sslstatic`, { qualifiers: ['fips', 'jit', 'sslstatic'] }),
  valid('accepts a qualifier with dots and a tilde', `${D12}+openssl3.0~fips`, { qualifiers: ['openssl3.0~fips'] }),
  valid('accepts darwin as an os (the builder refuses it later)', 'darwin-aarch64-gnu2.0-macos14-otp27.3-elixir1.18.3', { os: 'darwin' }),
  valid('accepts windows as an os (the builder refuses it later)', 'windows-x86_64-gnu2.0-windows11-otp27.3-elixir1.18.3', { os: 'windows' }),
  valid('accepts armv7l', 'linux-armv7l-gnu2.36-debian12-otp25.2.3-elixir1.14.0', { arch: 'armv7l' }),
  valid('accepts riscv64', 'linux-riscv64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3', { arch: 'riscv64' }),
  valid('accepts a three-component musl floor and Alpine point release', 'linux-aarch64-musl1.2.5-alpine3.21.3-otp27.3.4-elixir1.18.4', {
    libcVersion: '1.2.5',
    distroVersion: '3.21.3',
  }),
  valid('accepts RHEL 9', 'linux-x86_64-gnu2.34-rhel9-otp26.2.5-elixir1.16.3', { distro: 'rhel', distroVersion: '9' }),
  valid('accepts an old CentOS with glibc 2.17', 'linux-x86_64-gnu2.17-centos7-otp24.3-elixir1.13.4', { libcVersion: '2.17' }),
  valid('accepts Amazon Linux with a four-digit release', 'linux-aarch64-gnu2.34-amzn2023-otp26.2.1-elixir1.16.1', { distro: 'amzn', distroVersion: '2023' }),
  valid('accepts an unknown distro with musl', 'linux-x86_64-musl1.2-postmarketos24.06-otp26.2-elixir1.16.0', { distro: 'postmarketos', libc: 'musl' }),
  valid('accepts an unknown distro with gnu', 'linux-x86_64-gnu2.40-void2025-otp27.1-elixir1.17.3', { distro: 'void' }),
  valid('treats a distro named like an Object.prototype key as unknown', 'linux-x86_64-gnu2.36-constructor1-otp25.2.3-elixir1.14.0', { distro: 'constructor' }),
  valid('accepts a single-component libc floor', 'linux-x86_64-gnu2-debian12-otp25.2-elixir1.14.0', { libcVersion: '2' }),

  // --- invalid: characters and shape ---
  invalid('rejects uppercase letters', 'Linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', ['tuple'], 'unexpected character "L" at position 1 (tuples are lowercase)'),
  invalid('rejects an uppercase arch', 'linux-X86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', ['tuple'], 'tuples are lowercase'),
  invalid('rejects a slash', 'linux/amd64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', ['tuple'], 'unexpected character "/" at position 6'),
  invalid('rejects a space', 'linux-x86_64-gnu2.36-debian12-otp25.2.3 -elixir1.14.0', ['tuple'], 'unexpected character " "'),
  invalid('rejects a trailing newline', `${D12}\n`, ['tuple'], 'unexpected character "\\n"'),
  invalid('rejects a NUL byte', `${D12}\0`, ['tuple'], 'unexpected character "\\u0000"'),
  invalid('rejects a shell metacharacter', `${D12};id`, ['tuple'], 'unexpected character ";"'),
  invalid('rejects five fields', 'linux-x86_64-gnu2.36-debian12-otp25.2.3', ['tuple'], 'expected 6 fields'),
  invalid('rejects seven fields', `${D12}-extra`, ['tuple'], 'got 7'),
  invalid('rejects a single word', 'linux', ['tuple'], 'expected 6 fields'),
  invalid('rejects an Elixir pre-release written with a dash, with a hint to use ~', 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.18.0-rc.0', ['tuple'], 'pre-releases use "~"'),
  invalid('rejects an OTP pre-release written with a dash', 'linux-x86_64-gnu2.36-debian12-otp27.0-rc1-elixir1.18.0', ['tuple'], 'pre-releases use "~"'),
  invalid('rejects input longer than the limit', `${D12}+${'q'.repeat(TUPLE_MAX_LENGTH)}`, ['tuple'], `expected at most ${TUPLE_MAX_LENGTH} characters`),
  invalid('rejects the empty string', '', ['tuple'], 'got an empty string'),
  invalid('rejects a number', 42, ['tuple'], 'got number'),
  invalid('rejects null', null, ['tuple'], 'got object'),
  invalid('rejects undefined', undefined, ['tuple'], 'got undefined'),

  // --- invalid: one field ---
  invalid('rejects an unknown os', 'freebsd-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', ['os'], 'expected one of linux, darwin, windows, got "freebsd"'),
  invalid('rejects arch arm65 listing the known arches', 'linux-arm65-gnu2.36-debian12-otp25.2.3-elixir1.14.0', ['arch'], 'expected one of x86_64, aarch64, armv7l, riscv64, got "arm65"'),
  invalid('rejects the alias amd64 with a hint to write x86_64', 'linux-amd64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', ['arch'], 'got "amd64" (write "x86_64")'),
  invalid('rejects the alias arm64 with a hint to write aarch64', 'linux-arm64-gnu2.31-debian11-otp23.2.6-elixir1.10.3', ['arch'], 'got "arm64" (write "aarch64")'),
  invalid('rejects a libc without a floor', 'linux-x86_64-gnu-debian12-otp25.2.3-elixir1.14.0', ['libc'], 'expected a numeric libc floor after "gnu" (gnu2.36), got "gnu"'),
  invalid('rejects a musl without a floor', 'linux-x86_64-musl-alpine3.21-otp27.3.4-elixir1.18.4', ['libc'], 'after "musl" (musl1.2)'),
  invalid('rejects glibc as the libc family', 'linux-x86_64-glibc2.36-debian12-otp25.2.3-elixir1.14.0', ['libc'], 'expected gnu or musl followed by the libc floor (gnu2.36, musl1.2), got "glibc2.36"'),
  invalid('rejects a libc floor ending in a dot', 'linux-x86_64-gnu2.-debian12-otp25.2.3-elixir1.14.0', ['libc'], 'got "gnu2."'),
  invalid('rejects a distro codename', 'linux-x86_64-gnu2.36-debianbookworm-otp25.2.3-elixir1.14.0', ['distro'], 'never a codename or date, got "debianbookworm"'),
  invalid('rejects a distro date', 'linux-x86_64-gnu2.36-debian20241016-otp25.2.3-elixir1.14.0', ['distro'], 'got "debian20241016"'),
  invalid('rejects a distro without a release', 'linux-x86_64-gnu2.36-debian-otp25.2.3-elixir1.14.0', ['distro'], 'expected a distro name and release number'),
  invalid('rejects a distro release that starts with the number', 'linux-x86_64-gnu2.36-12debian-otp25.2.3-elixir1.14.0', ['distro'], 'got "12debian"'),
  invalid('rejects Alpine with gnu libc', 'linux-x86_64-gnu2.36-alpine3.21-otp27.3.4-elixir1.18.4', ['libc'], 'expected musl for alpine, got "gnu"'),
  invalid('rejects Debian with musl libc', 'linux-x86_64-musl1.2-debian12-otp25.2.3-elixir1.14.0', ['libc'], 'expected gnu for debian, got "musl"'),
  invalid('rejects otp without a version', 'linux-x86_64-gnu2.36-debian12-otp-elixir1.14.0', ['otp'], 'expected "otp" and the full OTP version (otp27.3.4, otp27.0~rc1), got "otp"'),
  invalid('rejects an OTP major alone', 'linux-x86_64-gnu2.41-debian13-otp27-elixir1.18.3', ['otp'], 'got "otp27"'),
  invalid('rejects an OTP version without the otp prefix', 'linux-x86_64-gnu2.36-debian12-25.2.3-elixir1.14.0', ['otp'], 'got "25.2.3"'),
  invalid('rejects an Elixir major alone', 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1', ['elixir'], 'expected "elixir" and the full Elixir version'),
  invalid('rejects an Elixir version without its prefix', 'linux-x86_64-gnu2.36-debian12-otp25.2.3-ex1.14.0', ['elixir'], 'got "ex1.14.0"'),
  invalid('rejects an empty pre-release after ~', 'linux-x86_64-gnu2.36-debian12-otp27.0~-elixir1.14.0', ['otp'], 'got "otp27.0~"'),
  invalid('rejects unsorted qualifiers naming the sorted order', `${D12}+sslstatic+fips`, ['qualifiers'], 'expected sorted, unique qualifiers (+fips+sslstatic), got +sslstatic+fips'),
  invalid('rejects duplicate qualifiers', `${D12}+fips+fips`, ['qualifiers'], 'expected sorted, unique qualifiers (+fips)'),
  invalid('rejects an empty qualifier', `${D12}+`, ['qualifiers/0'], 'after "+", got ""'),
  invalid('rejects an empty qualifier between two others', `${D12}+a++b`, ['qualifiers/1', 'qualifiers'], 'after "+", got ""'),
  invalid('rejects a qualifier with an underscore', `${D12}+ssl_static`, ['qualifiers/0'], 'got "ssl_static"'),
  invalid('rejects a qualifier starting with a dot', `${D12}+.hidden`, ['qualifiers/0'], 'got ".hidden"'),

  // --- invalid: several fields at once ---
  invalid('reports every bad field at once', 'linux-arm65-glibc2.36-debianbookworm-otp27-elixir1.18', ['arch', 'libc', 'distro', 'otp'], 'expected one of x86_64'),
];

const VALID = CASES.filter((c): c is Extract<Case, { ok: true }> => c.ok);
const INVALID = CASES.filter((c): c is Extract<Case, { ok: false }> => !c.ok);

describe('parseTarget', () => {
  it('has a table of at least 45 valid and invalid tuples', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(45);
    expect(VALID.length).toBeGreaterThanOrEqual(15);
    expect(INVALID.length).toBeGreaterThanOrEqual(30);
  });

  it.each(CASES)('$name', (c) => {
    const r = parseTarget(c.input);
    if (c.ok) {
      if (!r.ok) throw new Error(`expected ${JSON.stringify(c.input)} to parse, got ${JSON.stringify(r.issues)}`);
      expect(r.value).toMatchObject(c.fields ?? {});
      // every accepted tuple is a valid Target by the schema too
      expect(TargetSchema.parse(r.value)).toEqual(r.value);
    } else {
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.issues.map((i) => i.path)).toEqual(c.paths);
      expect(r.issues[0]!.message).toContain(c.fragment);
      for (const issue of r.issues) expect(issue.message.length).toBeGreaterThan(10);
    }
  });

  it('reports several bad fields as several issues', () => {
    const r = parseTarget('linux-arm65-glibc2.36-debianbookworm-otp27-elixir1.18');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.length).toBeGreaterThan(1);
    expect(r.issues.map((i) => i.path)).toEqual(['arch', 'libc', 'distro', 'otp']);
    expect(r.issues.find((i) => i.path === 'libc')!.message).toContain('got "glibc2.36"');
    expect(r.issues.find((i) => i.path === 'distro')!.message).toContain('got "debianbookworm"');
  });

  it('accepts a tuple of exactly the maximum length and refuses one character more', () => {
    const pad = (n: number) => `${D12}+${'q'.repeat(n - D12.length - 1)}`;
    expect(pad(TUPLE_MAX_LENGTH)).toHaveLength(TUPLE_MAX_LENGTH);
    expect(parseTarget(pad(TUPLE_MAX_LENGTH)).ok).toBe(true);
    expect(parseTarget(pad(TUPLE_MAX_LENGTH + 1)).ok).toBe(false);
  });
});

describe('formatTarget', () => {
  it.each(VALID)('gives back the same string for a valid tuple: $input', (c) => {
    const r = parseTarget(c.input);
    expect(r.ok).toBe(true);
    if (r.ok) expect(formatTarget(r.value)).toBe(c.input);
  });

  it('sorts and de-duplicates qualifiers into the canonical form', () => {
    const t = parseTargetOrThrow(D12);
    expect(formatTarget({ ...t, qualifiers: ['sslstatic', 'fips', 'sslstatic'] })).toBe(`${D12}+fips+sslstatic`);
  });

  it('writes no "+" when there are no qualifiers', () => {
    expect(formatTarget(parseTargetOrThrow(D12))).toBe(D12);
  });
});

describe('parseTargetOrThrow', () => {
  it('returns the parsed target for a valid tuple', () => {
    expect(parseTargetOrThrow(D12)).toEqual({
      os: 'linux',
      arch: 'x86_64',
      libc: 'gnu',
      libcVersion: '2.36',
      distro: 'debian',
      distroVersion: '12',
      otp: '25.2.3',
      elixir: '1.14.0',
      qualifiers: [],
    });
  });

  it('throws a ValidationError carrying every issue and the heading', () => {
    let caught: unknown;
    try {
      parseTargetOrThrow('linux-arm65-gnu-debian12-otp25.2.3-elixir1.14.0', 'bad tuple in request');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    const err = caught as ValidationError;
    expect(err.code).toBe('validation');
    expect(err.issues.map((i) => i.path)).toEqual(['arch', 'libc']);
    expect(err.message).toMatch(/^bad tuple in request\narch: expected one of x86_64, aarch64, armv7l, riscv64, got "arm65"\nlibc: /);
  });
});

describe('TargetTupleSchema', () => {
  it('turns a valid tuple string into the parsed target', () => {
    const r = TargetTupleSchema.safeParse('linux-x86_64-musl1.2-alpine3.21-otp27.3.4-elixir1.18.4');
    expect(r.success).toBe(true);
    expect(r.data).toEqual(parseTargetOrThrow('linux-x86_64-musl1.2-alpine3.21-otp27.3.4-elixir1.18.4'));
  });

  it('reports each bad field as its own issue prefixed with the field name', () => {
    const r = TargetTupleSchema.safeParse('linux-amd64-gnu2.36-debianbookworm-otp25.2.3-elixir1.14.0');
    expect(r.success).toBe(false);
    const messages = r.error!.issues.map((i) => i.message);
    expect(messages).toHaveLength(2);
    expect(messages[0]).toMatch(/^arch: expected one of x86_64, .* \(write "x86_64"\)$/);
    expect(messages[1]).toMatch(/^distro: /);
  });

  it('refuses a non-string with zod\'s type issue', () => {
    const r = TargetTupleSchema.safeParse(12);
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.code).toBe('invalid_type');
  });

  it('works nested in an object schema, with the field path', async () => {
    const { z } = await import('zod');
    const r = z.object({ target: TargetTupleSchema }).safeParse({ target: 'linux-x86_64-gnu2.36-debian12-otp27-elixir1.14.0' });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toEqual(['target']);
    expect(r.error!.issues[0]!.message).toContain('otp: ');
  });
});
