import { describe, expect, it } from 'vitest';
import { applyCaddyRequests, caddyEtag } from '../../../../deployer/commands/caddy-draft.ts';
import { isXamalError } from '../../../../core/index.ts';

const config = () => ({
  admin: { listen: 'unix//run/caddy/admin.sock' },
  apps: {
    http: { servers: { xamal: { listen: [':443'], routes: [{ '@id': 'xamal-a', handle: [{ '@id': 'xamal-a-proxy', handler: 'reverse_proxy' }] }, { '@id': 'xamal-b' }] } } },
    tls: { automation: { policies: [{ '@id': 'xamal-a-tls', subjects: ['a.test'] }] } },
  },
});

describe('Caddy changes applied to a copy of the config, as Caddy applies them', () => {
  it('DELETE by @id takes the object out of its list; the config given is not touched', () => {
    const before = config();
    const after = applyCaddyRequests(before, [
      { method: 'DELETE', path: '/id/xamal-a' },
      { method: 'DELETE', path: '/id/xamal-a-tls' },
    ]) as ReturnType<typeof config>;
    expect(after.apps.http.servers.xamal.routes).toEqual([{ '@id': 'xamal-b' }]);
    expect(after.apps.tls.automation.policies).toEqual([]);
    expect(before).toEqual(config());
  });

  it('PUT at an index inserts there, POST on a list appends, PATCH replaces, and each sees what the ones before it did', () => {
    const after = applyCaddyRequests(config(), [
      { method: 'PUT', path: '/config/apps/http/servers/xamal/routes/0', body: { '@id': 'xamal-c' } },
      { method: 'POST', path: '/config/apps/http/servers/xamal/routes', body: { '@id': 'xamal-d' } },
      { method: 'PATCH', path: '/id/xamal-c', body: { '@id': 'xamal-c', terminal: true } },
      { method: 'PATCH', path: '/id/xamal-a-proxy/handler', body: 'static_response' },
    ]) as ReturnType<typeof config>;
    expect(after.apps.http.servers.xamal.routes).toEqual([{ '@id': 'xamal-c', terminal: true }, { '@id': 'xamal-a', handle: [{ '@id': 'xamal-a-proxy', handler: 'static_response' }] }, { '@id': 'xamal-b' }, { '@id': 'xamal-d' }]);
  });

  it('PUT creates a key and the objects missing above it; POST /config/ on no config sets it all', () => {
    const after = applyCaddyRequests(config(), [{ method: 'PUT', path: '/config/logging/logs/xamal-a', body: { writer: { output: 'file' } } }]) as Record<string, unknown>;
    expect(after.logging).toEqual({ logs: { 'xamal-a': { writer: { output: 'file' } } } });
    expect(applyCaddyRequests(null, [{ method: 'POST', path: '/config/', body: { apps: {} } }])).toEqual({ apps: {} });
  });

  it('refuses what Caddy refuses, naming the request: PUT of an existing key, PATCH or DELETE of a missing one, an unknown @id, an index past the list', () => {
    const refused = (req: Parameters<typeof applyCaddyRequests>[1][number]) => {
      try {
        applyCaddyRequests(config(), [req]);
        return 'applied';
      } catch (err) {
        return isXamalError(err) ? err.message : String(err);
      }
    };
    expect(refused({ method: 'PUT', path: '/config/apps/tls', body: {}, label: 'add tls' })).toMatch(/PUT \/config\/apps\/tls \(add tls\) .*key already exists: tls/);
    expect(refused({ method: 'PATCH', path: '/config/apps/pki', body: {} })).toMatch(/key does not exist: pki/);
    expect(refused({ method: 'DELETE', path: '/config/apps/pki' })).toMatch(/key does not exist: pki/);
    expect(refused({ method: 'DELETE', path: '/id/xamal-z' })).toMatch(/no object with @id "xamal-z"/);
    expect(refused({ method: 'PATCH', path: '/config/apps/http/servers/xamal/routes/2', body: {} })).toMatch(/no index 2 in a list of 2/);
  });
});

describe("Caddy's ETag of a config read", () => {
  it('is the path and the FNV-1a hash of the body: the standard vectors, and one Caddy 2.6.2 gave here', () => {
    expect(caddyEtag('/config/', '')).toBe('"/config/ 811c9dc5"');
    expect(caddyEtag('/config/', 'a')).toBe('"/config/ e40c292c"');
    // GET /config/ of a local Caddy 2.6.2 (Debian 2.6.2-5), 2026-12-05: trailer `Etag: "/config/ 8c92333a"`.
    const body =
      '{"admin":{"listen":"127.0.0.1:12019"},"apps":{"http":{"http_port":18080,"https_port":18443,"servers":{"xamal":{"listen":[":18443"],"routes":[{"@id":"xamal-b","handle":[{"body":"b","handler":"static_response"}],"match":[{"host":["b.lab.test"]}],"terminal":true}]}}},"pki":{"certificate_authorities":{"local":{"install_trust":false}}},"tls":{"automation":{"policies":[{"@id":"xamal-b-tls","issuers":[{"module":"internal"}],"subjects":["b.lab.test"]}]}}},"storage":{"module":"file_system","root":"/work/scratch/caddy/data"}}\n';
    expect(caddyEtag('/config/', body)).toBe('"/config/ 8c92333a"');
  });
});
