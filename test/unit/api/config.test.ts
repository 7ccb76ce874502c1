import { describe, expect, it } from 'vitest';
import { farmConfig } from '../../../api/config.ts';

describe('farmConfig: git sources and webhook deliveries', () => {
  it('allows https and ssh only by default, file:// with XAMAL_GIT_ALLOW_LOCAL, http:// and git:// with XAMAL_GIT_ALLOW_HTTP', () => {
    expect(farmConfig({}).gitUrls).toEqual({ allowLocal: false, allowHttp: false });
    expect(farmConfig({ XAMAL_GIT_ALLOW_LOCAL: '1' }).gitUrls).toEqual({ allowLocal: true, allowHttp: false });
    expect(farmConfig({ XAMAL_GIT_ALLOW_HTTP: 'true', XAMAL_GIT_ALLOW_LOCAL: '0' }).gitUrls).toEqual({ allowLocal: false, allowHttp: true });
    expect(() => farmConfig({ XAMAL_GIT_ALLOW_LOCAL: 'yes' })).toThrow(/XAMAL_GIT_ALLOW_LOCAL: expected 1/);
  });

  it('remembers webhook delivery ids for 7 days unless XAMAL_GITHUB_DELIVERY_TTL says otherwise (60 s to 90 days)', () => {
    expect(farmConfig({}).githubDeliveryTtlSeconds).toBe(604_800);
    expect(farmConfig({ XAMAL_GITHUB_DELIVERY_TTL: '3600' }).githubDeliveryTtlSeconds).toBe(3600);
    expect(() => farmConfig({ XAMAL_GITHUB_DELIVERY_TTL: '5' })).toThrow(/XAMAL_GITHUB_DELIVERY_TTL: expected seconds \(60–7776000\)/);
  });
});
