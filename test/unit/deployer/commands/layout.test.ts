import { describe, expect, it } from 'vitest';
import { validateDeployConfig } from '../../../../deployer/config/load.ts';
import { appLayout, primaryHost, rolesOnHost, slotLayout, slotPort } from '../../../../deployer/commands/layout.ts';
import { baseConfig } from '../../../../testkit/deployer/context.ts';

const config = validateDeployConfig(baseConfig);

describe('app layout and ports', () => {
  it('puts the app under /opt/xamal/<service>[-<destination>]', () => {
    expect(appLayout('shop', undefined)).toMatchObject({ app: 'shop', root: '/opt/xamal/shop', releases: '/opt/xamal/shop/releases', lock: '/opt/xamal/shop/lock', audit: '/opt/xamal/shop/audit.log' });
    expect(appLayout('shop', 'staging').root).toBe('/opt/xamal/shop-staging');
  });

  it("keeps the app's data in /var/lib/xamal/<app>, one per app (destination included), outside the app directory", () => {
    expect(appLayout('shop', undefined).state).toBe('/var/lib/xamal/shop');
    expect(appLayout('shop', 'staging').state).toBe('/var/lib/xamal/shop-staging');
  });

  it('gives each role and slot its own port: app_port + 2 × role index + slot', () => {
    expect([slotPort(config, 'web', 'blue'), slotPort(config, 'web', 'green'), slotPort(config, 'jobs', 'blue'), slotPort(config, 'jobs', 'green')]).toEqual([4000, 4001, 4002, 4003]);
    const high = validateDeployConfig({ ...baseConfig, caddy: { app_port: 65534 } });
    expect(() => slotPort(high, 'jobs', 'blue')).toThrow(/no room for role jobs/);
    expect(() => slotPort(config, 'nope', 'blue')).toThrow(/no role "nope"/);
  });

  it('names slot directories, env files, RELEASE_TMP and its own epmd port per role and slot', () => {
    expect(slotLayout(config, appLayout('shop', undefined), 'jobs', 'green')).toEqual({
      role: 'jobs',
      slot: 'green',
      dir: '/opt/xamal/shop/slots/jobs-green',
      envFile: '/opt/xamal/shop/slots/jobs-green/env',
      release: '/opt/xamal/shop/slots/jobs-green/release',
      tmp: '/opt/xamal/shop/tmp/jobs-green',
      port: 4003,
      epmdPort: 14003,
    });
    const high = validateDeployConfig({ ...baseConfig, caddy: { app_port: 55533 } });
    expect(() => slotLayout(high, appLayout('shop', undefined), 'jobs', 'green')).toThrow("caddy.app_port 55533 leaves no room for role jobs's epmd ports (port + 10000 = 65536 > 65535)");
  });

  it('knows which roles run on a host (with its tags) and which host is primary', () => {
    expect(rolesOnHost(config, 'web2')).toEqual([{ name: 'web', tags: ['eu'] }]);
    expect(primaryHost(config)).toBe('web1');
    expect(primaryHost(validateDeployConfig({ ...baseConfig, primary_role: 'jobs' }))).toBe('jobs1');
  });
});
