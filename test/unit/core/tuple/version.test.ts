import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareVersions, isFullVersion, isVersion, NUMERIC_VERSION_RE, RELEASE_VERSION_RE, tupleVersion, versionHasPrefix, VERSION_RE } from '../../../../core/tuple/version.ts';

describe('compareVersions', () => {
  it.each([
    ['2.31', '2.36'],
    ['2.36', '2.41'],
    ['2.31', '2.41'],
    ['27.0~rc1', '27.0'],
    ['27.0', '27.0.1'],
    ['27.0~rc1', '27.0.1'],
    ['1.9', '1.10'],
    ['1.9.9', '1.10.0'],
    ['2.3', '2.3.1'],
    ['27.0~rc1', '27.0~rc2'],
    ['27.0~rc2', '27.0~rc10'],
    ['1.19.0~rc.0', '1.19.0~rc.1'],
    ['1.19.0~rc.9', '1.19.0~rc.10'],
    ['26.2.5.9', '27.0~rc1'],
    ['99999999999999999998', '99999999999999999999'],
  ])('orders %s before %s', (lower, higher) => {
    expect(compareVersions(lower, higher)).toBe(-1);
    expect(compareVersions(higher, lower)).toBe(1);
  });

  it.each(['2.36', '27.0~rc1', '27.3.4.1', '1.19.0~rc.0'])('finds %s equal to itself', (v) => {
    expect(compareVersions(v, v)).toBe(0);
  });

  it('sorts a mixed list of glibc, OTP and Elixir versions into release order', () => {
    const sorted = ['27.0', '1.10', '27.0~rc1', '2.41', '27.0.1', '1.9', '2.31', '27.0~rc2', '2.36'].sort(compareVersions);
    expect(sorted).toEqual(['1.9', '1.10', '2.31', '2.36', '2.41', '27.0~rc1', '27.0~rc2', '27.0', '27.0.1']);
  });

  it('is antisymmetric and transitive on arbitrary tuple versions', () => {
    const comp = fc.oneof(fc.nat({ max: 120 }).map(String), fc.constantFrom('0', '00', '007'));
    const version = fc
      .tuple(fc.array(comp, { minLength: 1, maxLength: 4 }), fc.option(fc.stringMatching(/^[a-z]{1,3}\d{0,2}$/), { nil: undefined }))
      .map(([p, pre]) => (pre === undefined ? p.join('.') : `${p.join('.')}~${pre}`));
    fc.assert(
      fc.property(version, version, version, (a, b, c) => {
        expect(Math.sign(compareVersions(a, b)) + Math.sign(compareVersions(b, a))).toBe(0);
        if (compareVersions(a, b) <= 0 && compareVersions(b, c) <= 0) expect(compareVersions(a, c)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 500 },
    );
  });
});

describe('versionHasPrefix', () => {
  it.each([
    ['27.3.4.1', '27', true],
    ['27.0~rc1', '27', true],
    ['27.0~rc1', '27.0', true],
    ['27', '27', true],
    ['1.17.3', '1.17', true],
    ['270.1', '27', false],
    ['1.170.0', '1.17', false],
    ['26.2.5', '27', false],
    ['27.0~rc1', '27.0~rc', false],
    ['27.0~rc', '27.0~rc', true],
  ] as const)('says %s has prefix %s: %s', (version, prefix, expected) => {
    expect(versionHasPrefix(version, prefix)).toBe(expected);
  });
});

describe('tupleVersion', () => {
  it.each([
    ['27.0-rc1', '27.0~rc1'],
    ['1.18.0-rc.0', '1.18.0~rc.0'],
    ['27.3.4.1', '27.3.4.1'],
    [' 1.19.0-RC.1 ', '1.19.0~rc.1'],
  ])('turns upstream %j into tuple form %j', (upstream, expected) => {
    expect(tupleVersion(upstream)).toBe(expected);
    expect(isVersion(tupleVersion(upstream))).toBe(true);
  });
});

describe('isVersion and isFullVersion', () => {
  it('accept a major alone only as a version prefix, not as a full version', () => {
    expect(isVersion('27')).toBe(true);
    expect(isFullVersion('27')).toBe(false);
    expect(isFullVersion('27.0')).toBe(true);
    expect(isFullVersion('27.0~rc1')).toBe(true);
  });

  it.each(['', '27.', '.27', '27..1', '27.0-rc1', '27.0~', '27.0~RC1', 'v27.0', '27.x'])('refuse %j', (v) => {
    expect(isVersion(v)).toBe(false);
    expect(isFullVersion(v)).toBe(false);
  });
});

describe('the shared version patterns', () => {
  it('a release version is SemVer as mix.exs writes it; a numeric version is dot-separated numbers', () => {
    for (const v of ['1.2.3', '1.2.3-rc.1', '1.2.3-rc.1+build.5', '10.20.30+x']) expect(RELEASE_VERSION_RE.test(v), v).toBe(true);
    for (const v of ['1.2', '1.2.3.4', 'v1.2.3', '1.2.3-', '1.2.3 ']) expect(RELEASE_VERSION_RE.test(v), v).toBe(false);
    for (const v of ['2', '2.36', '27.3.4.1']) expect(NUMERIC_VERSION_RE.test(v), v).toBe(true);
    for (const v of ['2.', '.2', '2.36~rc1', 'x2']) expect(NUMERIC_VERSION_RE.test(v), v).toBe(false);
    expect(VERSION_RE.source).toBe(String.raw`^\d+(?:\.\d+)*(?:~[a-z0-9]+(?:\.[a-z0-9]+)*)?$`);
  });
});
