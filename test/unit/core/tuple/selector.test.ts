import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../core/errors/index.ts';
import {
  matchesSelector,
  formatSelectorString,
  parseSelectorString,
  parseTargetOrThrow,
  selectorMismatches,
  TargetSelectorSchema,
  type TargetSelectorInput,
} from '../../../../core/tuple/index.ts';

const deb12 = parseTargetOrThrow('linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0');
const deb13 = parseTargetOrThrow('linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3');
const deb11arm = parseTargetOrThrow('linux-aarch64-gnu2.31-debian11-otp23.2.6-elixir1.10.3');
const ubuntu = parseTargetOrThrow('linux-x86_64-gnu2.39-ubuntu24.04-otp27.0~rc1-elixir1.17.0+fips+sslstatic');
const alpine = parseTargetOrThrow('linux-x86_64-musl1.2-alpine3.21-otp27.3.4-elixir1.18.4');

const sel = (input: TargetSelectorInput) => TargetSelectorSchema.parse(input);

describe('matchesSelector', () => {
  it.each([
    ['an empty selector', deb12, {}],
    ['the issue example on Debian 13', deb13, { otp: '27', elixir: '1.18', distro: 'debian13', arch: 'x86_64' }],
    ['a distro name without a release', deb12, { distro: 'debian' }],
    ['a distro name with its release', deb12, { distro: 'debian12' }],
    ['an Ubuntu release prefix', ubuntu, { distro: 'ubuntu24' }],
    ['an exact Ubuntu release', ubuntu, { distro: 'ubuntu24.04' }],
    ['an arch alias', deb11arm, { arch: 'arm64' }],
    ['the alias amd64', deb12, { arch: 'amd64' }],
    ['a major OTP version on a four-component release', deb13, { otp: '27' }],
    ['a major OTP version on a release candidate', ubuntu, { otp: '27' }],
    ['a major.minor OTP version on a release candidate', ubuntu, { otp: '27.0' }],
    ['the exact OTP version', deb13, { otp: '27.3.4.1' }],
    ['libc musl', alpine, { libc: 'musl' }],
    ['one qualifier the target has', ubuntu, { qualifiers: ['fips'] }],
    ['every qualifier the target has', ubuntu, { qualifiers: ['sslstatic', 'fips'] }],
    ['os linux', deb12, { os: 'linux' }],
  ] as const)('matches %s', (_what, target, input) => {
    const s = sel(input as TargetSelectorInput);
    expect(selectorMismatches(target, s)).toEqual([]);
    expect(matchesSelector(target, s)).toBe(true);
  });

  it.each([
    ['another Debian release', deb12, { distro: 'debian13' }, 'distro', 'wanted debian13, artifact is debian12'],
    ['another distro', deb12, { distro: 'ubuntu' }, 'distro', 'wanted ubuntu, artifact is debian12'],
    ['a release that is only a string prefix (debian1 vs debian12)', deb12, { distro: 'debian1' }, 'distro', 'wanted debian1, artifact is debian12'],
    ['another Ubuntu release', ubuntu, { distro: 'ubuntu22' }, 'distro', 'wanted ubuntu22, artifact is ubuntu24.04'],
    ['another arch given as an alias', deb12, { arch: 'arm64' }, 'arch', 'wanted aarch64, artifact is x86_64'],
    ['an OTP major that is only a string prefix (2 vs 27)', deb13, { otp: '2' }, 'otp', 'wanted OTP 2, artifact has 27.3.4.1'],
    ['another OTP major', deb12, { otp: '27' }, 'otp', 'wanted OTP 27, artifact has 25.2.3'],
    ['another Elixir minor (1.1 vs 1.14)', deb12, { elixir: '1.1' }, 'elixir', 'wanted Elixir 1.1, artifact has 1.14.0'],
    ['another libc', deb12, { libc: 'musl' }, 'libc', 'wanted musl, artifact is gnu'],
    ['another os', deb12, { os: 'darwin' }, 'os', 'wanted darwin, artifact is linux'],
    ['a qualifier the target lacks', deb12, { qualifiers: ['sslstatic'] }, 'qualifiers', 'wanted +sslstatic, artifact lacks it'],
  ] as const)('refuses %s, saying why', (_what, target, input, path, message) => {
    const s = sel(input as TargetSelectorInput);
    expect(selectorMismatches(target, s)).toEqual([{ path, message }]);
    expect(matchesSelector(target, s)).toBe(false);
  });

  it('lists every mismatching field at once', () => {
    const s = sel({ otp: '27', elixir: '1.18', distro: 'debian13', arch: 'arm64', libc: 'musl' });
    expect(selectorMismatches(deb12, s).map((i) => i.path)).toEqual(['arch', 'libc', 'distro', 'otp', 'elixir']);
  });
});

describe('TargetSelectorSchema', () => {
  it('normalizes an arch alias', () => {
    expect(sel({ arch: 'amd64' })).toEqual({ arch: 'x86_64' });
  });

  it.each([
    [{ arch: 'arm65' }, 'arch', 'expected one of x86_64, aarch64, armv7l, riscv64 (or amd64, arm64), got "arm65"'],
    [{ distro: 'bookworm12x' }, 'distro', 'expected a distro name'],
    [{ distro: 'Debian' }, 'distro', 'expected a distro name'],
    [{ otp: '27.x' }, 'otp', 'expected a version or version prefix'],
    [{ elixir: '' }, 'elixir', 'expected a version or version prefix'],
    [{ os: 'freebsd' }, 'os', ''],
    [{ qualifiers: ['SSL'] }, 'qualifiers', 'expected lowercase'],
  ])('refuses %j naming the field', (input, field, fragment) => {
    const r = TargetSelectorSchema.safeParse(input);
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path[0]).toBe(field);
    expect(r.error!.issues[0]!.message).toContain(fragment);
  });
});

describe('parseSelectorString', () => {
  it('parses the CLI form into a selector', () => {
    expect(parseSelectorString('otp=27,elixir=1.17,distro=debian12,arch=arm64')).toEqual({
      otp: '27',
      elixir: '1.17',
      distro: 'debian12',
      arch: 'aarch64',
    });
  });

  it('splits qualifiers on "+" and ignores blanks around parts', () => {
    expect(parseSelectorString(' libc=musl , qualifiers=fips+sslstatic ,')).toEqual({ libc: 'musl', qualifiers: ['fips', 'sslstatic'] });
  });

  it('gives an empty selector for an empty string', () => {
    expect(parseSelectorString('')).toEqual({});
  });

  const issuesOf = (input: string) => {
    try {
      parseSelectorString(input);
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      return (err as ValidationError).issues;
    }
    throw new Error(`expected ${JSON.stringify(input)} to be refused`);
  };

  it('refuses an unknown key, naming it and the known keys', () => {
    const issues = issuesOf('otp=27,colour=blue');
    expect(issues).toHaveLength(1);
    expect(issues[0]!.message).toContain('unknown key(s) colour; expected os, arch, libc, distro, otp, elixir, qualifiers');
  });

  it('refuses a part without "=", quoting it', () => {
    expect(issuesOf('otp27')).toEqual([{ path: 'selector', message: 'expected key=value, got "otp27"' }]);
  });

  it('refuses a part with an empty key', () => {
    expect(issuesOf('=27')[0]!.message).toContain('expected key=value, got "=27"');
  });

  it('refuses a bad version naming the field', () => {
    expect(issuesOf('otp=27.x')).toEqual([{ path: 'otp', message: 'expected a version or version prefix like 27 or 1.17' }]);
  });

  it('refuses a key given twice', () => {
    expect(issuesOf('otp=27,otp=26')).toContainEqual({ path: 'otp', message: 'given twice' });
  });

  it('reports every problem at once', () => {
    expect(issuesOf('otp27,arch=sparc,elixir=x').map((i) => i.path)).toEqual(['selector', 'arch', 'elixir']);
  });

  it.each(['constructor=1', 'toString=1', '__proto__=x'])('treats %s as an unknown key, not as given twice', (input) => {
    const issues = issuesOf(input);
    expect(issues).toHaveLength(1);
    expect(issues[0]!.message).toContain('unknown key(s)');
  });
});

describe('formatSelectorString', () => {
  it('writes what parseSelectorString reads back, keys in the schema order, qualifiers joined by +', () => {
    const sel = parseSelectorString('qualifiers=jit+musl,otp=27,arch=arm64,distro=debian12');
    expect(formatSelectorString(sel)).toBe('arch=aarch64,distro=debian12,otp=27,qualifiers=jit+musl');
    expect(parseSelectorString(formatSelectorString(sel))).toEqual(sel);
    expect(formatSelectorString({})).toBe('');
  });
});
