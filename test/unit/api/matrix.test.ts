import { describe, expect, it } from 'vitest';
import { expandMatrix } from '../../../api/services/matrix.ts';
import { BuildRequestSchema } from '../../../api/schemas/builds.ts';

describe('build matrices', () => {
  it('expands every combination into a selector, normalising arch aliases', () => {
    const r = expandMatrix({ otp: ['25', '27'], distro: ['debian12', 'debian13'], arch: ['amd64'] });
    expect(r.refused).toEqual([]);
    expect(r.selectors).toEqual([
      { otp: '25', distro: 'debian12', arch: 'x86_64' },
      { otp: '25', distro: 'debian13', arch: 'x86_64' },
      { otp: '27', distro: 'debian12', arch: 'x86_64' },
      { otp: '27', distro: 'debian13', arch: 'x86_64' },
    ]);
  });

  it('refuses OTP below 24.2 on OpenSSL-3 distros, with the reason, and keeps the rest', () => {
    const r = expandMatrix({ otp: ['23', '24', '24.1', '25'], distro: ['debian11', 'debian12', 'ubuntu22.04'] });
    const refused = r.refused.map((x) => `${x.combination.otp}/${x.combination.distro}`).sort();
    expect(refused).toEqual(['23/debian12', '23/ubuntu22.04', '24.1/debian12', '24.1/ubuntu22.04']);
    expect(r.refused[0]!.reason).toMatch(/OpenSSL 3, which needs OTP >= 24.2/);
    expect(r.selectors).toHaveLength(12 - 4);
  });

  it('reports a bad arch in a combination instead of dropping it, and refuses matrices over 32 combinations', () => {
    const r = expandMatrix({ arch: ['arm65'] });
    expect(r.selectors).toEqual([]);
    expect(r.refused[0]!.reason).toMatch(/arch: expected one of/);
    expect(() => expandMatrix({ otp: ['1', '2', '3', '4', '5', '6'], elixir: ['1', '2', '3', '4', '5', '6'] })).toThrow(/expands to 36 combinations; at most 32/);
  });

  it('a request takes exactly one of targets or matrix', () => {
    const base = { app: 'hello', source: { git: 'https://x/y.git', commit: 'a'.repeat(40) } };
    expect(BuildRequestSchema.safeParse({ ...base, matrix: { otp: ['27'] } }).success).toBe(true);
    const both = BuildRequestSchema.safeParse({ ...base, matrix: { otp: ['27'] }, targets: [{ otp: '27' }] });
    expect(both.success).toBe(false);
    expect(both.error!.issues[0]!.message).toMatch(/exactly one of targets or matrix/);
    expect(BuildRequestSchema.safeParse(base).success).toBe(false);
  });
});
