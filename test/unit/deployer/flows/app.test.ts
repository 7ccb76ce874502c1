import { describe, expect, it } from 'vitest';
import { displayCommand } from '../../../../core/index.ts';
import { appDetails, appExec, appExecInteractive, appLogs, appMaintenance, appStopStart, followAppLogs, interactiveTarget } from '../../../../deployer/flows/app.ts';
import type { RecordedStep, RecordingPool, Terminal } from '../../../../deployer/remote.ts';
import { baseConfig, SECRET, testContext } from '../../../../testkit/deployer/context.ts';

const live = (step: RecordedStep) => {
  if (step.kind === 'run' && (step.command.label ?? '').startsWith('slot state')) {
    return { stdout: 'blue inactive /opt/xamal/shop/releases/v1\ngreen active /opt/xamal/shop/releases/v2\ncurrent /opt/xamal/shop/releases/v2\nlive green\n' };
  }
  if (step.kind === 'run' && step.command.label === 'release_command') return { stdout: 'ran\n' };
  return undefined;
};

describe('xamal app', () => {
  it('details name the live slot, its version and what runs, per role on each host', async () => {
    const { ctx } = testContext({ command: 'app details', roles: ['web'], respond: live });
    const out = await appDetails(ctx);
    expect(out.map((o) => o.ok && o.value)).toEqual([
      [{ role: 'web', live: 'green', running: ['green'], version: 'v2' }],
      [{ role: 'web', live: 'green', running: ['green'], version: 'v2' }],
    ]);
  });

  it('stop and start act on the live slot only, as root', async () => {
    const { ctx, pool } = testContext({ command: 'app stop', roles: ['web'], hosts: ['web1'], respond: live });
    const out = await appStopStart(ctx, 'stop');
    expect(out[0]!.ok && out[0]!.value).toEqual(['web-green']);
    const cmds = pool.steps.filter((s) => s.kind === 'run').map((s) => (s.kind === 'run' ? displayCommand(s.command) : ''));
    expect(cmds).toContain('sudo -n systemctl stop -- xamal-shop-web@green.service');
    expect(cmds.some((c) => c.includes('@blue'))).toBe(false);
  });

  it('exec runs in the live release directory with the live slot env file', async () => {
    const { ctx, pool } = testContext({ command: 'app exec', roles: ['web'], hosts: ['web1'], respond: live });
    const out = await appExec(ctx, 'bin/shop rpc "IO.puts(:ok)"');
    expect(out[0]!.ok && out[0]!.value).toBe('ran\n');
    const step = pool.steps.find((s) => s.kind === 'run' && s.command.label === 'release_command');
    expect(step?.kind === 'run' && step.command.argv.slice(-3)).toEqual(['/opt/xamal/shop/slots/web-green/env', '/opt/xamal/shop/releases/v2', 'bin/shop rpc "IO.puts(:ok)"']);
  });

  it('maintenance changes Caddy only on hosts of the primary role, for this app only', async () => {
    const { ctx, pool } = testContext({ command: 'app maintenance', respond: live });
    const out = await appMaintenance(ctx, true);
    expect(out.map((o) => o.host)).toEqual(['web1', 'web2']);
    const caddy = pool.steps.filter((s) => s.kind === 'caddy');
    expect(caddy.every((s) => s.kind === 'caddy' && s.request.path.startsWith('/id/xamal-shop'))).toBe(true);
  });
});

describe('xamal app exec -i: one host, the live release, attached to the terminal', () => {
  const config = { ...baseConfig, servers: { web: ['web1', 'web2'], jobs: { hosts: ['jobs1', 'web2'], cmd: 'bin/jobs' } } };
  const target = (sel: { hosts?: string[]; roles?: string[] }) => {
    const { ctx } = testContext({ config, command: 'app exec -i', ...sel });
    return interactiveTarget(ctx.config, ctx.targets, sel.hosts !== undefined);
  };

  it('runs on the primary host of the primary role, or of the first selected role when -r leaves it out', () => {
    expect(target({})).toEqual({ host: 'web1', role: 'web' });
    expect(target({ roles: ['jobs'] })).toEqual({ host: 'jobs1', role: 'jobs' });
  });

  it('runs on the one host --hosts names, in the primary role when the host has it', () => {
    expect(target({ hosts: ['web2'] })).toEqual({ host: 'web2', role: 'web' });
    expect(target({ hosts: ['jobs1'] })).toEqual({ host: 'jobs1', role: 'jobs' });
  });

  it('refuses --hosts naming more than one host, naming them', () => {
    expect(() => target({ hosts: ['web*'] })).toThrow(expect.objectContaining({ code: 'usage', message: '--interactive runs on one host; --hosts selects 2 (web1, web2)' }));
  });

  it('runs the command as the app user in the live slot, with no timeout, and returns its exit status', async () => {
    const { ctx, pool } = testContext({ command: 'app exec -i', respond: (s) => (s.kind === 'interactive' ? { code: 3 } : live(s)) });
    const r = await appExecInteractive(ctx, 'bin/shop remote', {} as Terminal, false);
    expect(r).toEqual({ host: 'web1', code: 3 });
    const steps = pool.steps.filter((s) => s.kind === 'interactive');
    expect(steps).toHaveLength(1);
    const cmd = steps[0]!.kind === 'interactive' ? steps[0]!.command : undefined;
    expect(cmd?.timeoutMs).toBeUndefined();
    expect(displayCommand(cmd!)).toBe(
      'sudo -n runuser -u xamal-shop -- sh -c \'set -a && . "$1" && set +a && cd "$2" && exec /bin/sh -c "$3"\' sh /opt/xamal/shop/slots/web-green/env /opt/xamal/shop/releases/v2 \'bin/shop remote\'',
    );
    expect(pool.steps.some((s) => s.host !== 'web1')).toBe(false);
  });

  it('refuses a role that was never deployed on that host', async () => {
    const { ctx } = testContext({ command: 'app exec -i' });
    await expect(appExecInteractive(ctx, 'bin/shop remote', {} as Terminal, false)).rejects.toThrow('web1: web has never been deployed');
  });
});

describe('xamal app logs', () => {
  it('reads the live slot units of the selected roles, as root (sudo for a deploy user), with the query', async () => {
    const { ctx, pool } = testContext({ command: 'app logs', roles: ['web'], hosts: ['web1'], respond: live });
    const out = await appLogs(ctx, { lines: 5, grep: 'error' });
    expect(out[0]!.ok).toBe(true);
    const logs = pool.steps.find((s) => s.kind === 'run' && (s.command.label ?? '').startsWith('logs of'));
    expect(logs?.kind === 'run' && displayCommand(logs.command)).toMatch(/^sudo -n sh -c '[\s\S]*' sh once error -u xamal-shop-web@green\.service --no-pager -o cat -n 5$/);
  });

  it('follows every selected host at once, one line at a time (a last line without its newline too), secrets redacted', async () => {
    const respond = (step: RecordedStep) => (step.kind === 'run' && (step.command.label ?? '').startsWith('logs of') ? { stdout: `line one\npassword=${SECRET}\npartial` } : live(step));
    const { ctx } = testContext({ command: 'app logs', roles: ['web'], respond });
    const lines: string[] = [];
    const out = await followAppLogs(ctx, { lines: 10 }, (host, text) => lines.push(`${host}: ${text}`), new AbortController().signal);
    expect(out.map((o) => o.ok)).toEqual([true, true]);
    expect(lines.filter((l) => l.startsWith('web1'))).toEqual(['web1: line one', 'web1: password=[REDACTED]', 'web1: partial']);
  });

  it('a host with nothing deployed is a clear failure when following', async () => {
    const { ctx } = testContext({ command: 'app logs', roles: ['web'], hosts: ['web1'] });
    const [o] = await followAppLogs(ctx, {}, () => {}, new AbortController().signal);
    expect(!o!.ok && o!.error.message).toBe('web1: nothing deployed yet: no live slot to follow');
  });

  it("roots steps by each host's own login user (~/.ssh/config's User when deploy.yml names none)", async () => {
    const { ctx } = testContext({ config: { ...baseConfig, ssh: {} }, roles: ['web'], respond: live });
    const withUsers = { ...ctx, sshUser: (h: string) => ({ web1: 'root', web2: 'deploy' })[h] ?? 'root' };
    await appLogs(withUsers, {});
    const pool = ctx.pool as RecordingPool;
    const logs = pool.steps.filter((s) => s.kind === 'run' && (s.command.label ?? '').startsWith('logs of'));
    expect(logs.map((s) => `${s.host} ${s.kind === 'run' ? String(s.command.argv[0]) : ''}`)).toEqual(['web1 sh', 'web2 sudo']);
  });
});
