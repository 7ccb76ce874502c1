import { describe, expect, it } from 'vitest';
import { displayCommand } from '../../../../core/index.ts';
import { LOCK_EXIT } from '../../../../deployer/commands/lock.ts';
import { caddyEtag } from '../../../../deployer/commands/caddy-draft.ts';
import { removeFlow, withRemovalLock } from '../../../../deployer/flows/remove.ts';
import type { CaddyResponse, RecordedStep } from '../../../../deployer/remote.ts';
import { testContext } from '../../../../testkit/deployer/context.ts';

/** A host answering as one where `shop` runs: blue live, both unit files' roles, every path there, the user xamal made. */
function shopHost(over: { presence?: string; caddy?: Record<string, number>; userExit?: number; userOut?: string; lockExit?: number } = {}) {
  return (step: RecordedStep): { code?: number; stdout?: string } | CaddyResponse | undefined => {
    if (step.kind === 'caddy') {
      if (step.request.path === '/config/' && step.request.method === 'GET') {
        const has = (id: string) => (over.caddy?.[`/id/${id}`] ?? 200) === 200;
        return { status: 200, body: `${JSON.stringify(caddyConfig(has('xamal-shop'), has('xamal-shop-tls')))}\n` };
      }
      const status = over.caddy?.[step.request.path] ?? 200;
      return { status, body: status === 200 ? '' : '{"error":"unknown object ID"}' };
    }
    if (step.kind !== 'run') return undefined;
    const label = step.command.label ?? '';
    if (label.startsWith('what of')) {
      if (over.presence !== undefined) return { stdout: over.presence };
      const args = step.command.argv.map(String);
      const paths = args.slice(args.indexOf('--') + 1);
      const roles = args.slice(8, args.indexOf('--'));
      const units = roles.flatMap((r) => [`unit ${r} blue active disabled`, `unit ${r} green inactive disabled`, `unitfile ${r}`]);
      return { stdout: [...units, ...paths.map((p) => `path ${p}`), ...(args[7] ? ['user xamal app shop'] : []), '@@end', ''].join('\n') };
    }
    if (label.startsWith('remove user')) return { code: over.userExit ?? 0, stdout: over.userOut ?? '' };
    if (label === 'lock status' || label === 'acquire lock') return { code: over.lockExit ?? 0 };
    return { code: 0 };
  };
}

/** Caddy's config on such a host: shop's route and TLS policy (when there) beside another app's. */
function caddyConfig(route: boolean, policy: boolean) {
  const other = { '@id': 'xamal-blog', match: [{ host: ['blog.example.com'] }], handle: [] };
  return {
    admin: { listen: 'unix//run/caddy/admin.sock' },
    apps: {
      http: { servers: { xamal: { listen: [':443'], routes: [...(route ? [{ '@id': 'xamal-shop', match: [{ host: ['shop.example.com'] }], handle: [] }] : []), other] } } },
      tls: {
        automation: { policies: [...(policy ? [{ '@id': 'xamal-shop-tls', subjects: ['shop.example.com'], issuers: [{ module: 'internal' }] }] : []), { '@id': 'xamal-blog-tls', subjects: ['blog.example.com'] }] },
        certificates: { automate: [...(route ? ['shop.example.com'] : []), 'blog.example.com'] },
      },
    },
  };
}

const runs = (steps: RecordedStep[], host?: string) =>
  steps.filter((s): s is Extract<RecordedStep, { kind: 'run' }> => s.kind === 'run' && (!host || s.host === host)).map((s) => displayCommand(s.command));
const caddyCalls = (steps: RecordedStep[], host?: string) =>
  steps.filter((s): s is Extract<RecordedStep, { kind: 'caddy' }> => s.kind === 'caddy' && (!host || s.host === host)).map((s) => `${s.request.method} ${s.request.path}`);

describe('app remove', () => {
  it("deletes the app's Caddy route and TLS policy by id, stops the running slot, removes the unit file (then daemon-reload), releases, current, slots and tmp; the app directory, lock and audit log stay", async () => {
    const { ctx, pool } = testContext({ command: 'app remove', hosts: ['web1'], respond: shopHost() });
    const [out] = await removeFlow(ctx, 'app');
    expect(out!.ok).toBe(true);
    // One config change (one reload): the config read, then all of it without shop's route and TLS policy, sent if it is still the one read.
    expect(caddyCalls(pool.steps)).toEqual(['GET /config/', 'POST /config/']);
    const post = pool.steps.find((s): s is Extract<RecordedStep, { kind: 'caddy' }> => s.kind === 'caddy' && s.request.method === 'POST')!.request;
    expect(post.body).toEqual({
      admin: { listen: 'unix//run/caddy/admin.sock' },
      apps: {
        http: { servers: { xamal: { listen: [':443'], routes: [{ '@id': 'xamal-blog', match: [{ host: ['blog.example.com'] }], handle: [] }] } } },
        tls: { automation: { policies: [{ '@id': 'xamal-blog-tls', subjects: ['blog.example.com'] }] }, certificates: { automate: ['blog.example.com'] } },
      },
    });
    expect(post.ifMatch).toBe(caddyEtag('/config/', `${JSON.stringify(caddyConfig(true, true))}\n`));
    const cmds = runs(pool.steps);
    const order = [
      'sudo -n systemctl stop -- xamal-shop-web@blue.service',
      'sudo -n rm -rf -- /etc/systemd/system/xamal-shop-web@.service',
      'sudo -n systemctl daemon-reload',
      'sudo -n rm -rf -- /opt/xamal/shop/releases /opt/xamal/shop/current /opt/xamal/shop/slots /opt/xamal/shop/tmp',
    ].map((c) => cmds.indexOf(c));
    expect(order.every((i) => i >= 0), cmds.join('\n')).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(cmds.some((c) => c.includes('@green') && c.includes('stop'))).toBe(false);
    expect(cmds.some((c) => c.includes('userdel') || c.includes('remove user') || /rm -rf -- \/opt\/xamal\/shop$/.test(c))).toBe(false);
    expect(cmds.at(-1)).toMatch(/cat >> .*audit\.log/);
    expect(out!.ok && out!.value.removed).toEqual([
      'caddy route xamal-shop removed',
      'caddy TLS policy xamal-shop-tls removed',
      'caddy no longer loads certificates for shop.example.com',
      'stopped xamal-shop-web@blue.service',
      'removed /etc/systemd/system/xamal-shop-web@.service',
      'removed /opt/xamal/shop/releases',
      'removed /opt/xamal/shop/current',
      'removed /opt/xamal/shop/slots',
      'removed /opt/xamal/shop/tmp',
    ]);
  });

  it("when Caddy's config changed after it was read (412), reads it again and sends the change planned on that; a config that never holds still fails the host with a conflict", async () => {
    const host = shopHost();
    let posts = 0;
    const once = testContext({
      command: 'app remove',
      hosts: ['web1'],
      respond: (step) => (step.kind === 'caddy' && step.request.method === 'POST' && ++posts === 1 ? { status: 412, body: '{"error":"If-Match header did not match current config hash"}' } : host(step)),
    });
    const [ok] = await removeFlow(once.ctx, 'app');
    expect(ok!.ok).toBe(true);
    expect(caddyCalls(once.pool.steps)).toEqual(['GET /config/', 'POST /config/', 'GET /config/', 'POST /config/']);
    const always = testContext({
      command: 'app remove',
      hosts: ['web1'],
      respond: (step) => (step.kind === 'caddy' && step.request.method === 'POST' ? { status: 412, body: '{"error":"If-Match header did not match current config hash"}' } : host(step)),
    });
    const [failed] = await removeFlow(always.ctx, 'app');
    expect(!failed!.ok && failed!.error.message).toMatch(/web1: Caddy's config changed under each of 5 attempts to remove caddy route \+ remove caddy TLS policy/);
    expect(caddyCalls(always.pool.steps).filter((c) => c === 'POST /config/')).toHaveLength(5);
  });

  it('touches Caddy only on hosts of the primary role: a jobs host loses its units and files, no route (app remove and remove)', async () => {
    const { ctx, pool } = testContext({ command: 'app remove', hosts: ['jobs1'], respond: shopHost() });
    const [out] = await removeFlow(ctx, 'app');
    expect(out!.ok).toBe(true);
    expect(caddyCalls(pool.steps)).toEqual([]);
    expect(runs(pool.steps)).toContain('sudo -n systemctl stop -- xamal-shop-jobs@blue.service');
    const all = testContext({ command: 'remove', hosts: ['jobs1'], respond: shopHost() });
    expect((await removeFlow(all.ctx, 'all'))[0]!.ok).toBe(true);
    expect(caddyCalls(all.pool.steps)).toEqual([]);
  });

  it('removing an absent app reads once per host and changes nothing: no DELETE, no stop, no rm', async () => {
    const { ctx, pool } = testContext({ command: 'app remove', respond: shopHost({ presence: '@@end\n', caddy: { '/id/xamal-shop': 404, '/id/xamal-shop-tls': 404 } }) });
    const out = await removeFlow(ctx, 'app');
    expect(out.map((o) => o.ok && o.value)).toEqual([
      { removed: [], kept: [] },
      { removed: [], kept: [] },
      { removed: [], kept: [] },
    ]);
    expect(caddyCalls(pool.steps).every((c) => c.startsWith('GET'))).toBe(true);
    const labels = pool.steps.map((s) => (s.kind === 'run' ? s.command.label : ''));
    expect(labels.filter((l) => l !== '' && l !== 'audit' && !l?.startsWith('what of shop'))).toEqual([]);
  });

  it('with --roles on a host that also runs another role of the app: only the selected role goes; releases, current and the route stay, and the output says why', async () => {
    const config = { service: 'shop', servers: { web: ['web1'], jobs: { hosts: ['web1'], cmd: 'bin/jobs' } }, ssh: { user: 'deploy' }, caddy: { hosts: ['shop.example.com'] } };
    const { ctx, pool } = testContext({ command: 'app remove', config, roles: ['jobs'], respond: shopHost() });
    const [out] = await removeFlow(ctx, 'app');
    const cmds = runs(pool.steps);
    expect(caddyCalls(pool.steps)).toEqual([]);
    expect(cmds).toContain(
      'sudo -n rm -rf -- /opt/xamal/shop/slots/jobs-blue /opt/xamal/shop/tmp/jobs-blue /opt/xamal/shop/slots/jobs-green /opt/xamal/shop/tmp/jobs-green /opt/xamal/shop/slots/jobs.live',
    );
    expect(cmds.some((c) => c.includes('xamal-shop-web') || c.includes('/releases'))).toBe(false);
    expect(out!.ok && out!.value.kept).toEqual(['/opt/xamal/shop/releases and /opt/xamal/shop/current kept: web of shop stays on this host (not selected)']);
  });

  it('a dry run (empty answers) shows every step a full removal takes', async () => {
    const { ctx, pool } = testContext({ command: 'remove', hosts: ['web1'] });
    const [out] = await removeFlow(ctx, 'all');
    expect(out!.ok).toBe(true);
    expect(caddyCalls(pool.steps)).toEqual(['GET /config/', 'DELETE /id/xamal-shop', 'DELETE /id/xamal-shop-tls']);
    const cmds = runs(pool.steps);
    expect(cmds).toEqual(
      expect.arrayContaining([
        'sudo -n systemctl stop -- xamal-shop-web@blue.service xamal-shop-web@green.service',
        'sudo -n rm -rf -- /etc/systemd/system/xamal-shop-web@.service',
        'sudo -n rm -rf -- /opt/xamal/shop',
        expect.stringMatching(/^sudo -n sh -c .*userdel.* sh xamal-shop \/etc\/systemd\/system$/s),
      ]),
    );
  });
});

describe('remove', () => {
  it('takes /opt/xamal/<app> whole and the user xamal made for the app; discovers unit files of roles no longer configured', async () => {
    const { ctx, pool } = testContext({ command: 'remove', hosts: ['web1'], respond: shopHost({ presence: 'unit web blue active disabled\nunit web green failed disabled\nunitfile web\nunit old blue inactive enabled\nunit old green inactive \nunitfile old\npath /opt/xamal/shop\nuser xamal app shop\n@@end\n' }) });
    const [out] = await removeFlow(ctx, 'all');
    const cmds = runs(pool.steps);
    // The state directory is looked for too, never removed.
    expect(cmds[0]).toMatch(/^sh -c .* sh shop \/etc\/systemd\/system 1 xamal-shop web -- \/opt\/xamal\/shop \/var\/lib\/xamal\/shop$/s);
    expect(cmds).toEqual(
      expect.arrayContaining([
        'sudo -n systemctl stop -- xamal-shop-web@blue.service',
        'sudo -n systemctl disable -- xamal-shop-old@blue.service',
        'sudo -n systemctl reset-failed -- xamal-shop-web@green.service',
        'sudo -n rm -rf -- /etc/systemd/system/xamal-shop-web@.service /etc/systemd/system/xamal-shop-old@.service',
        'sudo -n rm -rf -- /opt/xamal/shop',
      ]),
    );
    expect(cmds.findIndex((c) => c.includes('userdel'))).toBeGreaterThan(cmds.indexOf('sudo -n rm -rf -- /opt/xamal/shop'));
    expect(out!.ok && out!.value.removed.slice(-2)).toEqual(['removed /opt/xamal/shop', 'removed user xamal-shop']);
  });

  it('keeps a user xamal did not make for this app, and one still in use, saying why', async () => {
    const notOurs = testContext({ command: 'remove', hosts: ['web1'], respond: shopHost({ presence: 'path /opt/xamal/shop\nuser Shop operator\n@@end\n' }) });
    const [a] = await removeFlow(notOurs.ctx, 'all');
    expect(a!.ok && a!.value.kept).toEqual(['user xamal-shop kept: xamal did not create it for shop (its comment is "Shop operator")']);
    expect(runs(notOurs.pool.steps).some((c) => c.includes('userdel'))).toBe(false);

    const busy = testContext({ command: 'remove', hosts: ['web1'], respond: shopHost({ userExit: 3, userOut: 'userdel: user xamal-shop is currently used by process 4242\n' }) });
    const [b] = await removeFlow(busy.ctx, 'all');
    expect(b!.ok && b!.value.kept).toEqual(['user xamal-shop kept: userdel: user xamal-shop is currently used by process 4242', "/var/lib/xamal/shop (the app's data)"]);
    // The user stays, so its data stays its own.
    expect(runs(busy.pool.steps).some((c) => c.includes('chown'))).toBe(false);
  });

  it("keeps the app's state directory (its data), never deleting it; once the user is gone it is root's, and the output says so", async () => {
    const { ctx, pool } = testContext({ command: 'remove', hosts: ['web1'], respond: shopHost() });
    const [out] = await removeFlow(ctx, 'all');
    const cmds = runs(pool.steps);
    expect(cmds.some((c) => c.includes('rm -rf') && c.includes('/var/lib/xamal'))).toBe(false);
    expect(cmds.indexOf('sudo -n chown -R -- 0:0 /var/lib/xamal/shop')).toBeGreaterThan(cmds.findIndex((c) => c.includes('userdel')));
    expect(out!.ok && out!.value.removed).toContain('removed user xamal-shop');
    expect(out!.ok && out!.value.kept).toEqual(["/var/lib/xamal/shop (the app's data), owned by root until `xamal setup` gives it to the app's user again"]);

    // Not there (set up before state directories, or deleted by hand): nothing said, nothing chowned.
    const none = testContext({ command: 'remove', hosts: ['web1'], respond: shopHost({ presence: 'path /opt/xamal/shop\nuser xamal app shop\n@@end\n' }) });
    const [n] = await removeFlow(none.ctx, 'all');
    expect(n!.ok && n!.value.kept).toEqual([]);
    expect(runs(none.pool.steps).some((c) => c.includes('chown'))).toBe(false);

    // app remove leaves the host-level parts alone: no state directory looked for, nothing said.
    const app = testContext({ command: 'app remove', hosts: ['web1'], respond: shopHost() });
    const [a] = await removeFlow(app.ctx, 'app');
    expect(runs(app.pool.steps)[0]).not.toContain('/var/lib/xamal');
    expect(a!.ok && a!.value.kept).toEqual([]);
  });

  it('a failing step fails that host only, naming it; the others still report', async () => {
    const respond = (step: RecordedStep) => (step.host === 'web2' && step.kind === 'run' && step.command.argv.includes('daemon-reload') ? { code: 1, stderr: 'Access denied' } : shopHost()(step));
    const { ctx } = testContext({ command: 'remove', roles: ['web'], respond });
    const out = await removeFlow(ctx, 'all');
    expect(out.map((o) => [o.host, o.ok])).toEqual([['web1', true], ['web2', false]]);
    expect(!out[1]!.ok && out[1]!.error.message).toMatch(/web2: .*daemon-reload.*Access denied.*\(removed before the failure: caddy route xamal-shop removed; .*stopped xamal-shop-web@blue.service\)/s);
  });
});

describe('the lock of a removal', () => {
  it('is taken and released when the app is on the primary host; with no app directory there is no lock to take and the removal still runs', async () => {
    const present = testContext({ command: 'remove', respond: shopHost() });
    expect(await withRemovalLock(present.ctx, 'remove', async () => 'done')).toBe('done');
    const labels = present.pool.steps.map((s) => (s.kind === 'run' ? s.command.label : ''));
    expect(labels).toEqual(expect.arrayContaining(['lock status', 'acquire lock', 'release lock']));

    const absent = testContext({ command: 'remove', respond: shopHost({ lockExit: LOCK_EXIT.noApp }) });
    expect(await withRemovalLock(absent.ctx, 'remove', async () => 'done')).toBe('done');
    expect(absent.pool.steps.map((s) => (s.kind === 'run' ? s.command.label : ''))).toEqual(['lock status']);
  });

  it('a lock held by someone else refuses the removal before anything is removed', async () => {
    const { ctx } = testContext({ command: 'remove', respond: (step) => (step.kind === 'run' && step.command.label === 'acquire lock' ? { code: LOCK_EXIT.held, stdout: '{"holder":"Grace","host":"ci","time":"2025-03-01T11:59:00Z"}' } : shopHost()(step)) });
    let ran = false;
    await expect(withRemovalLock(ctx, 'remove', async () => (ran = true))).rejects.toThrow(/held by Grace/);
    expect(ran).toBe(false);
  });
});
