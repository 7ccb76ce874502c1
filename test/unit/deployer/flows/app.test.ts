import { describe, expect, it } from 'vitest';
import { displayCommand } from '../../../../core/index.ts';
import { appDetails, appExec, appMaintenance, appStopStart } from '../../../../deployer/flows/app.ts';
import type { RecordedStep } from '../../../../deployer/remote.ts';
import { testContext } from '../../../../testkit/deployer/context.ts';

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
