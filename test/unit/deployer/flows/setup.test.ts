import { describe, expect, it } from 'vitest';
import { displayCommand, revealArg } from '../../../../core/index.ts';
import { CADDY_ADMIN_LISTEN } from '../../../../deployer/commands/caddy.ts';
import { setup } from '../../../../deployer/flows/setup.ts';
import type { RecordedStep } from '../../../../deployer/remote.ts';
import { FakeHost, fakeHosts } from '../../../../testkit/deployer/fake-host.ts';
import { baseConfig, COOKIE, SECRET, testContext } from '../../../../testkit/deployer/context.ts';

const writes = (steps: RecordedStep[]) =>
  steps.filter((s) => (s.kind === 'caddy' ? s.request.method !== 'GET' : s.kind === 'run' && !/^(inspect files|check packages|check Caddy|check user .*|audit)$/.test(s.command.label ?? '')));

function lab() {
  const hosts = [new FakeHost('web1'), new FakeHost('web2'), new FakeHost('jobs1')];
  return { hosts, byName: Object.fromEntries(hosts.map((h) => [h.name, h])) as Record<string, FakeHost> };
}

describe('setup', () => {
  it("installs missing packages, creates the app's user, directories, units and env files (0440, the app's group), and adds the Caddy route; a second run changes nothing", async () => {
    const { hosts, byName } = lab();
    const first = testContext({ respond: fakeHosts(hosts) });
    const out1 = await setup(first.ctx);
    expect(out1.every((o) => o.ok)).toBe(true);
    const web1 = out1[0]!.ok ? out1[0]!.value : undefined;
    expect(web1?.changes).toEqual(
      expect.arrayContaining([
        'installed ffmpeg',
        'created user xamal-shop',
        'created /opt/xamal/shop',
        'created /opt/xamal/shop/tmp/web-blue',
        'created /opt/xamal/shop/slots/web-blue',
        "created /var/lib/xamal/shop (the app's data, STATE_DIRECTORY)",
        'wrote /etc/systemd/system/xamal-shop-web@.service',
        'wrote /opt/xamal/shop/slots/web-green/env',
        'caddy server xamal created',
        'caddy route xamal-shop added',
        'caddy TLS policy xamal-shop-tls added',
      ]),
    );
    // Only the primary role's hosts get Caddy; jobs1 gets its own unit and slots.
    expect(byName.jobs1!.caddy).toBeNull();
    expect(byName.jobs1!.files.has('/etc/systemd/system/xamal-shop-jobs@.service')).toBe(true);
    expect(byName.jobs1!.files.has('/etc/systemd/system/xamal-shop-web@.service')).toBe(false);
    expect(byName.web1!.files.get('/opt/xamal/shop')).toMatchObject({ owner: 'deploy' });
    expect(byName.web2!.users.has('xamal-shop')).toBe(true);
    expect(byName.web2!.files.get('/opt/xamal/shop/slots/web-blue/env')).toMatchObject({ mode: 0o440, owner: 'deploy', group: 'xamal-shop' });
    // RELEASE_TMP is the one place the app writes: its own, 0700.
    expect(byName.web2!.files.get('/opt/xamal/shop/tmp/web-blue')).toMatchObject({ owner: 'xamal-shop', mode: 0o700 });
    // The app's data: one directory per app and host, for every role (jobs1 too), the app user's, 0700; its parent root's.
    for (const h of ['web1', 'jobs1']) expect(byName[h]!.files.get('/var/lib/xamal/shop')).toMatchObject({ type: 'directory', owner: 'xamal-shop', mode: 0o700 });
    expect(byName.web1!.files.get('/var/lib/xamal')).toMatchObject({ owner: 'root', mode: 0o755 });
    expect(byName.web2!.files.get('/opt/xamal/shop/slots/web-blue/env')!.content).toContain('REGION="eu"');
    // Caddy's drop-in (its admin API on a unix socket) restarts it once; then the app's units.
    expect(byName.web1!.systemctl.map((a) => a.join(' '))).toEqual(['systemctl daemon-reload', 'systemctl restart -- caddy-api.service', 'systemctl daemon-reload']);
    expect(byName.web1!.caddyAdmin).toBe('socket');
    expect(byName.jobs1!.systemctl.map((a) => a.join(' '))).toEqual(['systemctl daemon-reload']);
    // Unit files, the app's user, the app directory's owner and env files (their group) are root steps (sudo).
    const runs = first.pool.steps.filter((s): s is Extract<RecordedStep, { kind: 'run' }> => s.kind === 'run' && s.host === 'web1');
    expect(runs.find((s) => s.command.label?.includes('xamal-shop-web@.service'))!.command.argv.slice(0, 2)).toEqual(['sudo', '-n']);
    expect(runs.find((s) => s.command.label?.endsWith('/env'))!.command.argv.slice(0, 3)).toEqual(['sudo', '-n', 'sh']);
    expect(runs.find((s) => s.command.label === 'create user xamal-shop')!.command.argv.slice(0, 3)).toEqual(['sudo', '-n', 'useradd']);
    expect(runs.find((s) => s.command.label === 'create /var/lib/xamal/shop owned by xamal-shop')!.command.argv.slice(0, 3)).toEqual(['sudo', '-n', 'sh']);

    const snapshot = hosts.map((h) => JSON.stringify({ files: [...h.files].filter(([p]) => !p.endsWith('audit.log')), caddy: h.caddy, packages: [...h.packages] }));
    const second = testContext({ respond: fakeHosts(hosts) });
    const out2 = await setup(second.ctx);
    expect(out2.map((o) => (o.ok ? o.value.changes : o.error.message))).toEqual([[], [], []]);
    expect(writes(second.pool.steps)).toEqual([]);
    expect(hosts.map((h) => JSON.stringify({ files: [...h.files].filter(([p]) => !p.endsWith('audit.log')), caddy: h.caddy, packages: [...h.packages] }))).toEqual(snapshot);
    // One audit line per run per host.
    expect(byName.web1!.files.get('/opt/xamal/shop/audit.log')!.content!.trim().split('\n')).toHaveLength(2);
  });

  it("with rollout.max_5xx_percent gives the app its Caddy access log (host names, file, out of the default log) and Caddy's log directory; a second run changes nothing", async () => {
    const { hosts, byName } = lab();
    const config = { ...baseConfig, rollout: { watch: '60s', max_5xx_percent: 5 } };
    const first = testContext({ config, respond: fakeHosts(hosts) });
    const out1 = await setup(first.ctx);
    expect(out1.every((o) => o.ok), JSON.stringify(out1.map((o) => (o.ok ? '' : o.error.message)))).toBe(true);
    const web1 = out1[0]!.ok ? out1[0]!.value : undefined;
    expect(web1?.changes).toEqual(expect.arrayContaining(['caddy access log of shop.example.com mapped to xamal-shop', 'caddy access log /var/log/caddy/xamal-shop.access.log']));
    const caddy = byName.web1!.caddy as { apps: { http: { servers: { xamal: { logs: unknown } } } }; logging: { logs: Record<string, { include?: string[]; exclude?: string[] }> } };
    expect(caddy.apps.http.servers.xamal.logs).toEqual({ logger_names: { 'shop.example.com': 'xamal-shop', 'shop.example.com:443': 'xamal-shop' }, skip_unmapped_hosts: true });
    expect(caddy.logging.logs['xamal-shop']!.include).toEqual(['http.log.access.xamal-shop']);
    expect(caddy.logging.logs.default!.exclude).toEqual(['http.log.access.xamal-shop']);
    expect(web1?.changes).toContain("/var/log/caddy made (Caddy's, for the app's access log)");
    const second = testContext({ config, respond: fakeHosts(hosts) });
    await setup(second.ctx);
    expect(writes(second.pool.steps).filter((x) => x.kind === 'caddy')).toEqual([]);
  });

  it("gives a state directory left by an earlier install (root's since remove) back to the app's user, contents included", async () => {
    const host = new FakeHost('web1');
    await setup(testContext({ respond: fakeHosts([host]), hosts: ['web1'] }).ctx);
    host.files.get('/var/lib/xamal/shop')!.owner = 'root';
    host.files.set('/var/lib/xamal/shop/meta.dets', { type: 'file', mode: 0o600, owner: 'root', content: 'x' });
    const [out] = await setup(testContext({ respond: fakeHosts([host]), hosts: ['web1'] }).ctx);
    expect(out!.ok && out!.value.changes).toEqual(['/var/lib/xamal/shop given to xamal-shop']);
    expect(host.files.get('/var/lib/xamal/shop')).toMatchObject({ owner: 'xamal-shop', mode: 0o700 });
    expect(host.files.get('/var/lib/xamal/shop/meta.dets')).toMatchObject({ owner: 'xamal-shop' });
  });

  it("leaves another app's route (and other servers) alone", async () => {
    const host = new FakeHost('web1');
    const blog = { '@id': 'xamal-blog', match: [{ host: ['blog.example.com'] }], handle: [{ handler: 'static_response', body: 'blog' }], terminal: true };
    host.caddy = { apps: { http: { servers: { xamal: { listen: [':443'], routes: [blog] }, admin_only: { listen: [':9000'], routes: [] } } } } };
    const { ctx } = testContext({ respond: fakeHosts([host]), hosts: ['web1'] });
    await setup(ctx);
    const servers = (host.caddy as { apps: { http: { servers: Record<string, { routes: unknown[] }> } } }).apps.http.servers;
    expect(servers.xamal!.routes.map((r) => (r as { '@id': string })['@id'])).toEqual(['xamal-shop', 'xamal-blog']);
    expect(servers.xamal!.routes[1]).toEqual(blog);
    expect(servers.admin_only).toEqual({ listen: [':9000'], routes: [] });
  });

  it("adds the route and the TLS policy beside another app's in one Caddy config change (one reload), sent only onto the config it read", async () => {
    const host = new FakeHost('web1');
    const blog = { '@id': 'xamal-blog', match: [{ host: ['blog.example.com'] }], handle: [{ handler: 'static_response', body: 'blog' }], terminal: true };
    const blogTls = { '@id': 'xamal-blog-tls', subjects: ['blog.example.com'], issuers: [{ module: 'internal' }] };
    host.caddy = { admin: { listen: CADDY_ADMIN_LISTEN }, apps: { http: { servers: { xamal: { listen: [':443'], routes: [blog] } } }, tls: { automation: { policies: [blogTls] } } } };
    host.caddyAdmin = 'socket';
    const { ctx, pool } = testContext({ respond: fakeHosts([host]), hosts: ['web1'] });
    const [out] = await setup(ctx);
    expect(out!.ok && out!.value.changes).toEqual(expect.arrayContaining(['caddy route xamal-shop added', 'caddy TLS policy xamal-shop-tls added']));
    const changes = pool.steps.filter((s): s is Extract<RecordedStep, { kind: 'caddy' }> => s.kind === 'caddy' && s.request.method !== 'GET').map((s) => s.request);
    expect(changes.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /config/']);
    expect(changes[0]!.ifMatch).toMatch(/^"\/config\/ [0-9a-f]{8}"$/);
    const cfg = host.caddy as { apps: { http: { servers: { xamal: { routes: { '@id': string }[] } } }; tls: { automation: { policies: { '@id': string }[] } } } };
    expect(cfg.apps.http.servers.xamal.routes.map((r) => r['@id'])).toEqual(['xamal-shop', 'xamal-blog']);
    expect(cfg.apps.tls.automation.policies.map((p) => p['@id'])).toEqual(['xamal-shop-tls', 'xamal-blog-tls']);
  });

  it('rewrites only what drifted: a changed env file, a wrong mode, a changed route', async () => {
    const { hosts, byName } = lab();
    await setup(testContext({ respond: fakeHosts(hosts) }).ctx);
    byName.web1!.files.get('/opt/xamal/shop/slots/web-blue/env')!.content = 'X=1\n';
    byName.web1!.files.get('/opt/xamal/shop/slots/web-green/env')!.mode = 0o644;
    const routes = (byName.web1!.caddy as { apps: { http: { servers: { xamal: { routes: Record<string, unknown>[] } } } } }).apps.http.servers.xamal.routes;
    routes[0]!.terminal = false;
    const { ctx } = testContext({ respond: fakeHosts(hosts), hosts: ['web1'] });
    const [out] = await setup(ctx);
    expect(out!.ok && out!.value.changes).toEqual(['updated /opt/xamal/shop/slots/web-blue/env', '/opt/xamal/shop/slots/web-green/env permissions set to 0440 deploy:xamal-shop', 'caddy route xamal-shop updated']);
  });

  it('installs Caddy when it is missing and runs it as caddy-api.service; warns when it runs from a Caddyfile', async () => {
    const bare = new FakeHost('web1');
    bare.caddyBinary = false;
    bare.units['caddy-api'] = { enabled: false, active: false, exists: false };
    bare.units.caddy = { enabled: false, active: false, exists: false };
    const [out] = await setup(testContext({ respond: fakeHosts([bare]), hosts: ['web1'] }).ctx, { bootstrapOnly: true });
    expect(out!.ok && out!.value.changes).toEqual(['installed ffmpeg', 'installed caddy (caddy-api.service)', 'wrote /etc/systemd/system/caddy-api.service.d/xamal-admin.conf (caddy-api.service restarted)']);
    expect(bare.caddyAdmin).toBe('socket');
    expect(bare.units).toMatchObject({ 'caddy-api': { enabled: true, active: true }, caddy: { enabled: false, active: false } });

    const caddyfile = new FakeHost('web1');
    caddyfile.units['caddy-api'] = { enabled: false, active: false, exists: true };
    caddyfile.units.caddy = { enabled: true, active: true, exists: true };
    const [out2] = await setup(testContext({ respond: fakeHosts([caddyfile]), hosts: ['web1'] }).ctx, { bootstrapOnly: true });
    expect(out2!.ok && out2!.value.warnings).toEqual([expect.stringMatching(/Caddyfile: routes xamal adds through the admin API are lost when it restarts.*only on \/run\/caddy\/admin.sock/)]);
  });

  it("moves Caddy's admin API off 127.0.0.1:2019 onto its unix socket, keeping its other admin settings; a second run restarts nothing", async () => {
    const host = new FakeHost('web1');
    // A Caddy that resumes an autosave from before: admin API on TCP, origins set, another server.
    host.caddy = { admin: { origins: ['127.0.0.1:2019'] }, apps: { http: { servers: { other: { listen: [':8080'], routes: [] } } } } };
    const first = testContext({ respond: fakeHosts([host]), hosts: ['web1'] });
    const [out] = await setup(first.ctx);
    expect(out!.ok && out!.value.changes).toEqual(
      expect.arrayContaining(['wrote /etc/systemd/system/caddy-api.service.d/xamal-admin.conf (caddy-api.service restarted)', 'Caddy admin API moved from 127.0.0.1:2019 to /run/caddy/admin.sock', 'caddy route xamal-shop added']),
    );
    expect(host.caddyAdmin).toBe('socket');
    expect((host.caddy as { admin: unknown }).admin).toEqual({ origins: ['127.0.0.1:2019'], listen: 'unix//run/caddy/admin.sock' });
    // Only the move itself went to the TCP address, as root; everything else is on the socket.
    const tcp = first.pool.steps.filter((s) => s.kind === 'run' && s.command.argv.includes('curl')).map((s) => s.kind === 'run' && s.command.argv.slice(-1)[0]);
    expect(tcp).toEqual(['http://127.0.0.1:2019/config/', 'http://127.0.0.1:2019/config/admin']);
    expect(host.files.get('/etc/systemd/system/caddy-api.service.d/xamal-admin.conf')!.content).toContain('RuntimeDirectoryMode=0700\nUMask=0077\n');
    expect(host.files.get('/etc/caddy/xamal-admin.json')!.content).toBe('{"admin":{"listen":"unix//run/caddy/admin.sock"}}\n');

    host.systemctl = [];
    const second = testContext({ respond: fakeHosts([host]), hosts: ['web1'] });
    const [again] = await setup(second.ctx);
    expect(again!.ok && again!.value.changes).toEqual([]);
    expect(host.systemctl).toEqual([]);
  });

  it('moves the admin API of a Caddy that resumed an empty config (nothing to POST under) with one POST /config/', async () => {
    const host = new FakeHost('web1');
    // caddy-api.service already carries the drop-in, but Caddy came back on TCP with no config.
    const first = testContext({ respond: fakeHosts([host]), hosts: ['web1'] });
    await setup(first.ctx, { bootstrapOnly: true });
    host.caddy = null;
    host.caddyAdmin = 'tcp';
    const [out] = await setup(testContext({ respond: fakeHosts([host]), hosts: ['web1'] }).ctx, { bootstrapOnly: true });
    expect(out!.ok && out!.value.changes).toEqual(['Caddy admin API moved from 127.0.0.1:2019 to /run/caddy/admin.sock']);
    expect(host.caddy).toEqual({ admin: { listen: 'unix//run/caddy/admin.sock' } });
    expect(host.caddyAdmin).toBe('socket');
  });

  it('never puts a secret in argv, and a dry run (recording, no answers) shows every command redacted', async () => {
    const { ctx, pool } = testContext();
    const out = await setup(ctx);
    expect(out.every((o) => o.ok)).toBe(true);
    const lines = pool.steps.map((s) => (s.kind === 'run' ? `${s.host}: ${displayCommand(s.command)}` : s.kind === 'caddy' ? `${s.host}: ${s.request.method} ${s.request.path} ${JSON.stringify(s.request.body ?? '')}` : ''));
    const text = lines.join('\n');
    for (const secret of [SECRET, COOKIE]) {
      expect(text).not.toContain(secret);
      for (const s of pool.steps) if (s.kind === 'run') expect(s.command.argv.map(revealArg).join(' ')).not.toContain(secret);
    }
    expect(text).toContain('web1: sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install');
    expect(text).toContain('web1: POST /config/');
    // Env files with secrets travel as Sensitive stdin.
    const env = pool.steps.find((s) => s.kind === 'run' && s.command.label === 'write /opt/xamal/shop/slots/web-blue/env');
    expect(env?.kind === 'run' && typeof env.command.stdin).toBe('object');
  });

  it('reports a failing host with what it changed before failing, without hiding the others', async () => {
    const { hosts, byName } = lab();
    byName.web2!.down = true;
    const out = await setup(testContext({ respond: fakeHosts(hosts) }).ctx);
    expect(out.map((o) => [o.host, o.ok])).toEqual([
      ['web1', true],
      ['web2', false],
      ['jobs1', true],
    ]);
    expect(!out[1]!.ok && out[1]!.error.message).toMatch(/ECONNREFUSED/);
  });
});
