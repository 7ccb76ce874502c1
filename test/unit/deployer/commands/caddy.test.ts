import { describe, expect, it } from 'vitest';
import { validateDeployConfig } from '../../../../deployer/config/load.ts';
import { displayCommand } from '../../../../core/index.ts';
import {
  appRoute,
  automateRequest,
  appSite,
  caddyAdminCommand,
  caddyBootConfig,
  caddyDropIn,
  liveRequest,
  maintenanceRequest,
  parseCaddyAdminOutput,
  routeHosts,
  parseCaddyFacts,
  planCaddy,
  type AppSite,
} from '../../../../deployer/commands/caddy.ts';
import { appLayout } from '../../../../deployer/commands/layout.ts';
import { baseConfig } from '../../../../testkit/deployer/context.ts';

const site = appSite(validateDeployConfig(baseConfig), appLayout('shop', undefined));
const other: AppSite = { app: 'blog', hosts: ['blog.example.com'], ssl: true, ports: [5000, 5001], healthPath: '/health' };

describe('Caddy route for an app', () => {
  it('lists both slots of the primary role, first-available, with fast active and passive health checks', () => {
    expect(appRoute(site)).toEqual({
      '@id': 'xamal-shop',
      match: [{ host: ['shop.example.com'] }],
      handle: [
        {
          '@id': 'xamal-shop-proxy',
          handler: 'reverse_proxy',
          upstreams: [{ dial: '127.0.0.1:4000' }, { dial: '127.0.0.1:4001' }],
          load_balancing: { selection_policy: { policy: 'first' }, try_duration: '5s', try_interval: '10ms' },
          health_checks: { active: { uri: '/up', interval: '100ms', timeout: '1s' }, passive: { fail_duration: '1s' } },
        },
      ],
      terminal: true,
    });
  });

  it('on an empty Caddy: one POST /config/ with the xamal server, the route and the internal TLS policy, keeping the admin API on its socket', () => {
    const plan = planCaddy(null, site);
    expect(plan.requests).toEqual([
      {
        method: 'POST',
        path: '/config/',
        label: 'create Caddy server xamal',
        body: {
          admin: { listen: 'unix//run/caddy/admin.sock' },
          apps: {
            http: { servers: { xamal: { listen: [':443'], routes: [appRoute(site)] } } },
            tls: { automation: { policies: [{ '@id': 'xamal-shop-tls', subjects: ['shop.example.com'], issuers: [{ module: 'internal' }] }] }, certificates: { automate: ['shop.example.com'] } },
          },
        },
      },
    ]);
  });

  it('on a Caddy holding only its admin settings: one PUT /config/apps carrying the server, the route and the TLS policy', () => {
    const plan = planCaddy({ admin: { listen: 'unix//run/caddy/admin.sock' } }, site);
    expect(plan.requests.map((r) => [r.method, r.path])).toEqual([['PUT', '/config/apps']]);
    expect(plan.requests[0]!.body).toEqual({
      http: { servers: { xamal: { listen: [':443'], routes: [appRoute(site)] } } },
      tls: { automation: { policies: [{ '@id': 'xamal-shop-tls', subjects: ['shop.example.com'], issuers: [{ module: 'internal' }] }] }, certificates: { automate: ['shop.example.com'] } },
    });
  });

  it('creates only what is missing below existing config (PUT at the first missing key)', () => {
    const plan = planCaddy({ admin: { listen: 'localhost:2019' }, apps: { pki: {} } }, { ...site, ssl: true });
    expect(plan.requests.map((r) => [r.method, r.path])).toEqual([
      ['PUT', '/config/apps/http'],
      ['PUT', '/config/apps/tls'],
    ]);
    expect(plan.requests[0]!.body).toEqual({ servers: { xamal: { listen: [':443'], routes: [appRoute({ ...site, ssl: true })] } } });
    expect(plan.requests[1]!.body).toEqual({ certificates: { automate: ['shop.example.com'] } });
  });

  it("adds its route in front of other apps' routes, changes nothing when equal, PATCHes by @id when different", () => {
    const withOther = { apps: { http: { servers: { xamal: { listen: [':443'], routes: [appRoute(other)] } } }, tls: { certificates: { automate: ['blog.example.com'] } } } };
    const add = planCaddy(withOther, { ...site, ssl: true });
    expect(add.requests).toEqual([
      { method: 'PUT', path: '/config/apps/http/servers/xamal/routes/0', body: appRoute({ ...site, ssl: true }), label: 'add app route' },
      // Its names beside the other app's in the list Caddy loads certificates for as a config starts.
      { method: 'PATCH', path: '/config/apps/tls/certificates/automate', body: ['blog.example.com', 'shop.example.com'], label: 'certificates loaded at start' },
    ]);
    const both = { apps: { http: { servers: { xamal: { listen: [':443'], routes: [appRoute({ ...site, ssl: true }), appRoute(other)] } } }, tls: { certificates: { automate: ['blog.example.com', 'shop.example.com'] } } } };
    expect(planCaddy(both, { ...site, ssl: true })).toEqual({ requests: [], changes: [], warnings: [] });
    const changed = planCaddy(both, { ...site, ssl: true, healthPath: '/healthz' });
    expect(changed.requests.map((r) => [r.method, r.path])).toEqual([['PATCH', '/id/xamal-shop']]);
  });

  it('keeps maintenance on across setup, and builds maintenance/live requests for this app only', () => {
    const m = maintenanceRequest('shop');
    expect(m).toMatchObject({ method: 'PATCH', path: '/id/xamal-shop/handle' });
    expect((m.body as { status_code: number; handler: string }[])[0]).toMatchObject({ handler: 'static_response', status_code: 503 });
    const inMaintenance = { apps: { http: { servers: { xamal: { listen: [':443'], routes: [appRoute({ ...site, ssl: true }, m.body as unknown[])] } } }, tls: { certificates: { automate: ['shop.example.com'] } } } };
    const plan = planCaddy(inMaintenance, { ...site, ssl: true });
    expect(plan.requests).toEqual([]);
    expect(plan.warnings).toEqual([expect.stringMatching(/maintenance/)]);
    expect(liveRequest(site)).toEqual({ method: 'PATCH', path: '/id/xamal-shop/handle', body: appRoute(site).handle, label: 'maintenance off' });
  });

  it('serves apps without host names or with ssl: false from the :80 server, catch-alls appended last', () => {
    const plain = { ...site, hosts: [] };
    expect(planCaddy(null, plain).requests[0]!.body).toEqual({ admin: { listen: 'unix//run/caddy/admin.sock' }, apps: { http: { servers: { xamal_http: { listen: [':80'], routes: [appRoute(plain)] } } } } });
    const existing = { apps: { http: { servers: { xamal_http: { listen: [':80'], routes: [{ '@id': 'x' }] } } } } };
    expect(planCaddy(existing, plain).requests.map((r) => [r.method, r.path])).toEqual([['POST', '/config/apps/http/servers/xamal_http/routes']]);
  });

  it('moves its route when ssl changes and removes its TLS policy when ssl is no longer internal', () => {
    const current = { apps: { http: { servers: { xamal: { listen: [':443'], routes: [appRoute(site)] } } }, tls: { automation: { policies: [{ '@id': 'xamal-shop-tls' }] } } } };
    const plan = planCaddy(current, { ...site, ssl: false });
    expect(plan.requests.map((r) => [r.method, r.path])).toEqual([
      ['DELETE', '/id/xamal-shop'],
      ['PUT', '/config/apps/http/servers/xamal_http'],
      ['DELETE', '/id/xamal-shop-tls'],
    ]);
  });

  it("keeps Caddy's list of names to load certificates for at start to this app's current names, other apps' untouched", () => {
    const config = { apps: { tls: { certificates: { automate: ['blog.example.com', 'old.example.com'] } } } };
    // Its host names changed from old to shop: the old one goes, the new one comes, blog stays first.
    expect(automateRequest(config, ['old.example.com'], ['shop.example.com'])).toEqual({ method: 'PATCH', path: '/config/apps/tls/certificates/automate', body: ['blog.example.com', 'shop.example.com'], label: 'certificates loaded at start' });
    // Removed (or no longer served over HTTPS): only its names leave.
    expect(automateRequest(config, ['old.example.com'], [])!.body).toEqual(['blog.example.com']);
    // Nothing to change, nothing asked.
    expect(automateRequest(config, ['old.example.com'], ['old.example.com'])).toBeUndefined();
    expect(automateRequest({ apps: {} }, [], [])).toBeUndefined();
    expect(routeHosts(appRoute(site))).toEqual(['shop.example.com']);
    expect(routeHosts({ handle: [] })).toEqual([]);
  });

  it("refuses to create its server on a port another (not xamal's) server listens on", () => {
    expect(() => planCaddy({ apps: { http: { servers: { srv0: { listen: [':443'] } } } } }, site)).toThrow(/server "srv0" already listens on :443/);
  });
});

describe("Caddy's admin API on a unix socket", () => {
  it('is called with curl on the host over the socket, with an empty Host header (what Caddy 2.6 allows there) and the body on stdin', () => {
    const cmd = caddyAdminCommand({ method: 'PATCH', path: '/id/xamal-shop', body: { a: 1 }, label: 'update app route' });
    expect(displayCommand(cmd)).toBe(
      "curl -sS --max-time 30 -X PATCH -H 'Content-Type: application/json' --data-binary @- -w '\n%{http_code}' --unix-socket /run/caddy/admin.sock -H 'Host;' http://localhost/id/xamal-shop",
    );
    expect(cmd.stdin).toBe('{"a":1}');
    expect(caddyAdminCommand({ method: 'GET', path: '/config/admin' }, 'tcp').argv.slice(-1)).toEqual(['http://127.0.0.1:2019/config/admin']);
    expect(caddyAdminCommand({ method: 'GET', path: '/config/' }).stdin).toBeUndefined();
  });

  it("reads the status from the line curl appends, and refuses output without one", () => {
    expect(parseCaddyAdminOutput('{"apps":{}}\n\n200')).toEqual({ status: 200, body: '{"apps":{}}\n' });
    expect(parseCaddyAdminOutput('\n404')).toEqual({ status: 404, body: '' });
    expect(() => parseCaddyAdminOutput('')).toThrow(/no HTTP status/);
  });

  it("is set up by a drop-in for caddy-api: a root-only socket directory and umask, and a boot config naming the socket", () => {
    expect(caddyDropIn()).toBe(
      [
        '# Managed by xamal: the admin API on a unix socket only root can open.',
        '[Service]',
        'RuntimeDirectory=caddy',
        'RuntimeDirectoryMode=0700',
        'UMask=0077',
        'ExecStart=',
        'ExecStart=/usr/bin/caddy run --environ --resume --config /etc/caddy/xamal-admin.json',
        '',
      ].join('\n'),
    );
    expect(JSON.parse(caddyBootConfig())).toEqual({ admin: { listen: 'unix//run/caddy/admin.sock' } });
  });

  it('reads whether the socket, the drop-in and the boot config are in place from the facts', () => {
    const f = parseCaddyFacts(`bin=/usr/bin/caddy\ncaddy-api=enabled/active\ncaddy=disabled/inactive\ndropin=${'a'.repeat(64)}\nboot=\nsocket=yes\n`);
    expect(f).toMatchObject({ installed: true, dropIn: 'a'.repeat(64), bootConfig: '', adminSocket: true, api: { enabled: true, active: true } });
    expect(parseCaddyFacts('bin=\nsocket=\n').adminSocket).toBe(false);
  });
});
