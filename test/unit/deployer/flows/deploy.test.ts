import { describe, expect, it } from 'vitest';
import { displayCommand, revealArg, type HostFingerprint } from '../../../../core/index.ts';
import { bootBatches, currentVersion, deployFlow, previousVersion, type ArtifactSource } from '../../../../deployer/flows/deploy.ts';
import type { RecordedStep } from '../../../../deployer/remote.ts';
import { parseSlotState, idleSlot } from '../../../../deployer/commands/slots.ts';
import { COOKIE, SECRET, testContext } from '../../../../testkit/deployer/context.ts';

const V = 'a1b2c3d4e5f6';
const SHA = 'f'.repeat(64);
const PROBE = '@@uname\nLinux\nx86_64\n6.1\nweb1\n@@glibc\nglibc 2.36\n@@os-release\nID=debian\nVERSION_ID="12"\n@@ldconfig\n\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6\n@@libs\n@@end\n';

/** A host where blue runs the previous release; answers by the command's label. */
function host(over: { present?: boolean; healthy?: boolean; caddy?: boolean; releaseCommand?: number } = {}) {
  return (step: RecordedStep) => {
    if (step.kind !== 'run') return undefined;
    const label = step.command.label ?? '';
    if (label.startsWith('is ')) return { code: over.present ? 0 : 1 };
    if (label === 'fingerprint host') return { stdout: PROBE };
    if (label.startsWith('slot state')) return { stdout: `blue active /opt/xamal/shop/releases/old\ngreen inactive -\ncurrent /opt/xamal/shop/releases/old\nlive blue\n` };
    if (label.startsWith('pull release')) return { stdout: 'pulled' };
    if (label.startsWith('health check')) return over.healthy === false ? { code: 1, stdout: '503' } : { stdout: '200' };
    if (label.startsWith('check https')) return over.caddy === false ? { code: 1, stdout: '502' } : { stdout: '200' };
    if (label === 'release_command') return { code: over.releaseCommand ?? 0, stderr: 'migration failed' };
    return { code: 0 };
  };
}

const artifacts: ArtifactSource = {
  resolve: async (_h: string, fp: HostFingerprint) => ({ tuple: `linux-${fp.arch}-gnu${fp.libcVersion}-debian${fp.distroVersion}-otp25.2.3-elixir1.14.0`, sha256: SHA }),
  link: async () => ({ url: 'http://farm:7420/v1/downloads/SIGNED-LINK-TOKEN', sha256: SHA }),
};

const labels = (steps: RecordedStep[]) => steps.filter((s): s is Extract<RecordedStep, { kind: 'run' }> => s.kind === 'run').map((s) => s.command.label ?? '');

describe('deploy flow', () => {
  it('pulls on every host before anything boots, boots the idle slot, stops the old one only after the new one is healthy, and checks through Caddy', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], respond: host() });
    const { outcomes } = await deployFlow(ctx, { version: V, artifacts });
    expect(outcomes.map((o) => [o.host, o.ok])).toEqual([['web1', true], ['web2', true]]);
    const web1 = labels(pool.steps.filter((s) => s.host === 'web1'));
    const order = ['pull release', 'start web-green', 'health check', 'stop web-blue', 'check https', 'mark web-green live'].map((l) => web1.findIndex((x) => x.startsWith(l)));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    // Both hosts staged before either booted.
    const all = labels(pool.steps);
    expect(all.lastIndexOf(all.filter((l) => l.startsWith('pull release')).at(-1)!)).toBeLessThan(all.findIndex((l) => l.startsWith('start ')));
    expect(outcomes[0]!.ok && outcomes[0]!.value).toMatchObject({ tuple: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', roles: [{ role: 'web', live: 'green', stopped: 'blue' }], pulled: true });
  });

  it("reports each host's steps in order for the progress display", async () => {
    const { ctx } = testContext({ command: 'deploy', roles: ['web'], respond: host() });
    const steps: string[] = [];
    ctx.step = (h, st) => {
      if (h === 'web1') steps.push(st);
    };
    await deployFlow(ctx, { version: V, artifacts });
    expect(steps).toEqual(['probe', 'pull linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', 'web-green boot', 'web-green health check', 'web-blue stop (drain)', 'web-green check through Caddy', 'web-green live']);
  });

  it('keeps the download link and secrets out of every argv, and shows them redacted', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], respond: host() });
    await deployFlow(ctx, { version: V, artifacts });
    for (const s of pool.steps) {
      if (s.kind !== 'run') continue;
      const argv = s.command.argv.map(revealArg).join(' ');
      expect(argv).not.toContain('SIGNED-LINK-TOKEN');
      expect(argv).not.toContain(SECRET);
      expect(argv).not.toContain(COOKIE);
      expect(displayCommand(s.command)).not.toContain('SIGNED-LINK-TOKEN');
      // Not in the environment either: a process's environment is in /proc for its owner.
      expect(Object.values(s.command.env ?? {}).map(revealArg).join(' ')).not.toContain('SIGNED-LINK-TOKEN');
    }
    // curl gets the link on stdin (`--config -`), and only there.
    const pull = pool.steps.find((s) => s.kind === 'run' && (s.command.label ?? '').startsWith('pull release'));
    expect(pull?.kind === 'run' && typeof pull.command.stdin).toBe('object');
    expect(pull?.kind === 'run' && revealArg(pull.command.stdin!)).toBe('url = "http://farm:7420/v1/downloads/SIGNED-LINK-TOKEN"\n');
    const envWrite = pool.steps.find((s) => s.kind === 'run' && (s.command.label ?? '').startsWith('write web-green env'));
    expect(envWrite?.kind === 'run' && revealArg(envWrite.command.stdin!)).toContain(`XAMAL_VERSION="${V}"`);
  });

  it('a release already on the host is not pulled again, and no farm is needed', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], respond: host({ present: true }) });
    const { outcomes } = await deployFlow(ctx, { version: V });
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(labels(pool.steps).some((l) => l.startsWith('pull') || l === 'fingerprint host')).toBe(false);
  });

  it('a failed health check stops the new slot, leaves the old one serving, and reports why', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], hosts: ['web1'], respond: host({ present: true, healthy: false }) });
    const { outcomes } = await deployFlow(ctx, { version: V });
    expect(outcomes[0]!.ok).toBe(false);
    expect(!outcomes[0]!.ok && outcomes[0]!.error.message).toMatch(/failed its health check \(\/up on :4001: last status 503.*the old version keeps serving/s);
    const l = labels(pool.steps);
    expect(l).toContain('stop web-green');
    expect(l).not.toContain('stop web-blue');
    expect(l.some((x) => x.startsWith('mark'))).toBe(false);
  });

  it('when Caddy does not serve the new slot, switches back: old slot started again, new one stopped', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], hosts: ['web1'], respond: host({ present: true, caddy: false }) });
    const { outcomes } = await deployFlow(ctx, { version: V });
    expect(!outcomes[0]!.ok && outcomes[0]!.error.message).toMatch(/not through Caddy .*switched back/);
    const l = labels(pool.steps);
    expect(l.slice(l.findIndex((x) => x.startsWith('check https')))).toEqual(expect.arrayContaining(['start web-blue', 'stop web-green']));
  });

  it('a failing release_command stops the deploy before anything boots', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], config: { service: 'shop', servers: ['web1'], ssh: { user: 'deploy' }, caddy: { hosts: ['shop.example.com'] }, release_command: 'bin/shop eval Shop.migrate' }, respond: host({ present: true, releaseCommand: 3 }) });
    await expect(deployFlow(ctx, { version: V })).rejects.toThrow(/release_command failed on web1 \(exit 3\); nothing was switched/);
    expect(labels(pool.steps).some((l) => l.startsWith('start '))).toBe(false);
  });

  it('refuses a version that is not a safe directory name', async () => {
    const { ctx } = testContext({ command: 'deploy', respond: host() });
    await expect(deployFlow(ctx, { version: '../etc' })).rejects.toThrow(/version: expected/);
  });
});

describe('which version rollback and app boot pick', () => {
  it('app boot boots what current points at; rollback goes to the idle slot, and says so when there is none', async () => {
    const { ctx } = testContext({ command: 'app boot', roles: ['web'], respond: host() });
    expect(await currentVersion(ctx, 'web1')).toBe('old');
    await expect(previousVersion(ctx, 'web1')).rejects.toMatchObject({ code: 'not_found', message: expect.stringContaining('no previous release') });
  });

  it('app boot of the current release neither pulls nor runs release_command, and boots it on the idle slot', async () => {
    const { ctx, pool } = testContext({ command: 'app boot', roles: ['web'], respond: host({ present: true }) });
    const { outcomes } = await deployFlow(ctx, { version: 'old', rollback: true });
    expect(outcomes.map((o) => o.ok && o.value.roles)).toEqual([[{ role: 'web', live: 'green', stopped: 'blue' }], [{ role: 'web', live: 'green', stopped: 'blue' }]].map((r) => r.map((x) => expect.objectContaining(x))));
    expect(labels(pool.steps).some((l) => l.startsWith('pull') || l === 'release_command')).toBe(false);
  });
});

describe('slots and batches', () => {
  it('boots into the slot that is not live, and blue on a fresh host', () => {
    expect(idleSlot(parseSlotState('blue active /r/a\ngreen inactive -\ncurrent /r/a\nlive blue\n'))).toBe('green');
    expect(idleSlot(parseSlotState('blue inactive /r/a\ngreen active /r/b\ncurrent /r/b\nlive green\n'))).toBe('blue');
    expect(idleSlot(parseSlotState('blue inactive -\ngreen inactive -\ncurrent -\nlive -\n'))).toBe('blue');
  });

  it('takes the only running slot as live even when the marker names the other (a deploy cut off after stopping the old slot)', () => {
    expect(idleSlot(parseSlotState('blue inactive /r/a\ngreen active /r/b\ncurrent /r/a\nlive blue\n'))).toBe('blue');
    // Both running (cut off before the old one stopped) or neither (app stop): the marker decides.
    expect(idleSlot(parseSlotState('blue active /r/a\ngreen active /r/b\ncurrent /r/a\nlive blue\n'))).toBe('green');
    expect(idleSlot(parseSlotState('blue inactive /r/a\ngreen inactive /r/b\ncurrent /r/b\nlive green\n'))).toBe('blue');
  });

  it('splits hosts by boot.limit as a count or a percentage', () => {
    const hosts = ['a', 'b', 'c', 'd', 'e'];
    expect(bootBatches(hosts, undefined)).toEqual([hosts]);
    expect(bootBatches(hosts, { hosts: 2 })).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(bootBatches(hosts, { percent: 40 })).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(bootBatches(hosts, { percent: 10 })).toEqual([['a'], ['b'], ['c'], ['d'], ['e']]);
  });
});
