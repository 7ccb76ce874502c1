import { describe, expect, it } from 'vitest';
import { isXamalError } from '../../../../core/index.ts';
import { canaryDeployFlow, canaryEnd, canaryPromoteFlow, canaryStatus, promoteRest, refuseDuringCanary } from '../../../../deployer/flows/canary.ts';
import type { ArtifactSource } from '../../../../deployer/flows/deploy.ts';
import type { RecordedStep } from '../../../../deployer/remote.ts';
import { testContext } from '../../../../testkit/deployer/context.ts';

const SHA = 'f'.repeat(64);
const PROBE = '@@uname\nLinux\nx86_64\n6.1\nweb1\n@@glibc\nglibc 2.36\n@@os-release\nID=debian\nVERSION_ID="12"\n@@ldconfig\n\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6\n@@libs\n@@end\n';
const END = 'xamal-canary-state-end';
const STATE = { version: 'v2', slot: 'green', live: { version: 'old', slot: 'blue' }, percent: 10, startedAt: '2025-03-01T12:00:00.000Z', performer: 'Bob' };

const artifacts: ArtifactSource = {
  resolve: async () => ({ tuple: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', sha256: SHA }),
  link: async () => ({ url: 'http://farm:7420/v1/downloads/LINK', sha256: SHA }),
  verify: async () => ({ sha256: SHA }),
};

/** Hosts where blue runs `old`; a canary state file when `canary` is set; unhealthy new slots when `healthy` is false. */
function hosts(over: { canary?: boolean; healthy?: boolean } = {}) {
  return (step: RecordedStep) => {
    if (step.kind !== 'run') return undefined;
    const label = step.command.label ?? '';
    if (label === 'read canary state') return { stdout: over.canary ? `${JSON.stringify(STATE)}\n${END}\n` : `\n${END}\n` };
    if (label.startsWith('is ')) return { code: 1 };
    if (label === 'fingerprint host') return { stdout: PROBE };
    if (label.startsWith('slot state')) return { stdout: `blue active /opt/xamal/shop/releases/old\ngreen ${over.canary ? 'active /opt/xamal/shop/releases/v2' : 'inactive -'}\ncurrent /opt/xamal/shop/releases/old\nlive blue\n` };
    if (label.startsWith('health check')) return over.healthy === false ? { code: 1, stdout: '503' } : { stdout: '200' };
    if (label.startsWith('check https')) return { stdout: '200' };
    return { code: 0 };
  };
}

/** Each step as one short line: `caddy <label>` or the command's label. */
const trail = (steps: RecordedStep[], host: string) => steps.filter((s) => s.host === host).map((s) => (s.kind === 'caddy' ? `caddy ${s.request.label}` : s.kind === 'run' ? (s.command.label ?? '') : s.kind));

describe('canary flow', () => {
  it('deploy --canary on the primary role only: pulls, pins traffic to the live slot, boots and health-checks the idle slot, writes the state, then splits; the old slot keeps running', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', respond: hosts() });
    const out = await canaryDeployFlow(ctx, { version: 'v2', percent: 10, artifacts });
    expect(out.map((o) => [o.host, o.ok])).toEqual([['web1', true], ['web2', true]]);
    expect(pool.steps.some((s) => s.host === 'jobs1')).toBe(false);
    const t = trail(pool.steps, 'web1');
    const order = ['pull release', 'caddy canary: traffic stays on the live slot', 'start web-green', 'health check', 'write canary state', 'caddy canary: 10% of new sessions to v2'].map((l) => t.findIndex((x) => x.startsWith(l)));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(t.some((l) => l.startsWith('stop web-blue') || l.startsWith('mark '))).toBe(false);
    expect(out[0]!.ok && out[0]!.value.canary).toMatchObject({ version: 'v2', slot: 'green', live: { version: 'old', slot: 'blue' }, percent: 10, performer: 'Ada' });
  });

  it('a canary that fails its health check puts the ordinary route back; nothing else moved', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], hosts: ['web1'], respond: hosts({ healthy: false }) });
    const [o] = await canaryDeployFlow(ctx, { version: 'v2', percent: 10, artifacts });
    expect(o!.ok).toBe(false);
    const t = trail(pool.steps, 'web1');
    expect(t.filter((l) => l.startsWith('caddy'))).toEqual(['caddy canary: traffic stays on the live slot', 'caddy ordinary route']);
    expect(t).toContain('stop web-green');
    expect(t).not.toContain('write canary state');
  });

  it("runs pre-app-boot with the primary role's hosts before anything boots and post-app-boot with those that booted before any split", async () => {
    const { ctx, pool } = testContext({ command: 'deploy', respond: hosts() });
    const seen: string[] = [];
    const hooks = async (name: string, extra?: { hosts?: readonly string[] }) => {
      const boots = pool.steps.filter((s) => s.kind === 'run' && s.command.label?.startsWith('start web-')).length;
      const splits = pool.steps.filter((s) => s.kind === 'caddy' && s.request.label?.startsWith('canary: 10%')).length;
      seen.push(`${name} ${extra?.hosts?.join(',')} boots=${boots} splits=${splits}`);
    };
    const out = await canaryDeployFlow(ctx, { version: 'v2', percent: 10, artifacts, hooks });
    expect(out.every((o) => o.ok)).toBe(true);
    expect(seen).toEqual(['pre-app-boot web1,web2 boots=0 splits=0', 'post-app-boot web1,web2 boots=2 splits=0']);
  });

  it('a failing post-app-boot stops every booted canary while traffic stays on the live slot, then puts the ordinary route back: no split, no state file', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', respond: hosts() });
    const hooks = async (name: string) => {
      if (name === 'post-app-boot') throw new Error('post-app-boot hook failed (exit 1)');
    };
    await expect(canaryDeployFlow(ctx, { version: 'v2', percent: 10, artifacts, hooks })).rejects.toThrow(/post-app-boot hook failed/);
    for (const h of ['web1', 'web2']) {
      const t = trail(pool.steps, h);
      const after = t.slice(t.findIndex((l) => l.startsWith('health check')));
      expect(after.filter((l) => l.startsWith('caddy') || l.startsWith('stop '))).toEqual(['stop web-green', 'caddy ordinary route']);
      expect(t).not.toContain('write canary state');
    }
  });

  it('refuses a second canary, and a deploy while one runs, naming it', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', respond: hosts({ canary: true }) });
    const err = await canaryDeployFlow(ctx, { version: 'v3', percent: 5, artifacts }).catch((e: unknown) => e);
    expect(isXamalError(err) && err.code).toBe('conflict');
    expect((err as Error).message).toContain('web1: v2 (green) at 10% beside old (blue), since 2025-03-01T12:00:00.000Z by Bob');
    expect(pool.steps.some((s) => s.kind === 'caddy' || (s.kind === 'run' && s.command.label?.startsWith('pull')))).toBe(false);
    await expect(refuseDuringCanary(ctx)).rejects.toThrow(/xamal canary promote or xamal canary abort first/);
    // Another role's deploy is not the canary's business.
    await expect(refuseDuringCanary(testContext({ roles: ['jobs'], respond: hosts({ canary: true }) }).ctx)).resolves.toBeUndefined();
  });

  it('status reads the state and the running slots on each host of the primary role', async () => {
    const { ctx } = testContext({ respond: hosts({ canary: true }) });
    const out = await canaryStatus(ctx);
    expect(out.map((o) => o.host)).toEqual(['web1', 'web2']);
    expect(out[0]!.ok && out[0]!.value).toMatchObject({ canary: STATE, running: ['blue', 'green'] });
  });

  it('promote and abort carry out their plans where a canary runs and say when none runs anywhere', async () => {
    const p = testContext({ respond: hosts({ canary: true }) });
    const promoted = await canaryEnd(p.ctx, 'promote');
    expect(promoted.every((o) => o.ok && o.value?.version === 'v2')).toBe(true);
    expect(trail(p.pool.steps, 'web1')).toEqual(['read canary state', 'caddy canary: every request to the green slot', 'stop web-blue', 'caddy ordinary route', 'check https://shop.example.com/up through Caddy', 'mark web-green live', 'remove canary state', 'audit']);
    const a = testContext({ respond: hosts({ canary: true }) });
    await canaryEnd(a.ctx, 'abort');
    expect(trail(a.pool.steps, 'web2')).toEqual(['read canary state', 'caddy canary: every request to the blue slot', 'stop web-green', 'caddy ordinary route', 'check https://shop.example.com/up through Caddy', 'remove canary state', 'audit']);
    await expect(canaryEnd(testContext({ respond: hosts() }).ctx, 'abort')).rejects.toThrow(/no canary is running on web1, web2/);
  });

  it('promote finishes the deploy: pre-caddy-switch, the primary role switched, post-caddy-switch, then the other roles deployed with their boot and switch hooks; abort runs no hook and touches no other role', async () => {
    const hooks: string[] = [];
    const p = testContext({ respond: hosts({ canary: true }) });
    const r = await canaryPromoteFlow(p.ctx, { hooks: async (name, extra) => void hooks.push(`${name} ${extra?.hosts?.join(',') ?? ''} ${extra?.version ?? ''}`.trim()), artifacts: () => artifacts });
    expect(r.version).toBe('v2');
    expect(r.promoted.map((o) => [o.host, o.ok])).toEqual([['web1', true], ['web2', true]]);
    expect(hooks).toEqual(['pre-caddy-switch web1,web2 v2', 'post-caddy-switch web1,web2 v2', 'pre-app-boot jobs1', 'post-app-boot jobs1', 'pre-caddy-switch jobs1', 'post-caddy-switch jobs1']);
    expect(r.rest?.outcomes.map((o) => [o.host, o.ok, o.ok ? o.value.version : o.error.message])).toEqual([['jobs1', true, 'v2']]);
    const jobs = trail(p.pool.steps, 'jobs1');
    expect(jobs.some((l) => l.startsWith('pull release'))).toBe(true);
    expect(jobs.some((l) => l.startsWith('start jobs-'))).toBe(true);
    // The web hosts' primary role is not booted again.
    expect(trail(p.pool.steps, 'web1').some((l) => l.startsWith('start web-'))).toBe(false);

    const a = testContext({ respond: hosts({ canary: true }) });
    await canaryEnd(a.ctx, 'abort');
    expect(a.pool.steps.some((s) => s.host === 'jobs1')).toBe(false);
  });

  it('promote prunes, as a deploy does, each host now running the version once (promoted or deployed), keeping retain_releases and what a slot points at; abort prunes nothing', async () => {
    const respond = (step: RecordedStep) => (step.kind === 'run' && step.command.label === 'list releases' ? { stdout: 'v2\nold\nr5\nr4\nr3\nr2\nr1\n' } : hosts({ canary: true })(step));
    const p = testContext({ respond });
    const r = await canaryPromoteFlow(p.ctx, { artifacts: () => artifacts });
    expect([...r.pruned.entries()].map(([h, o]) => [h, o.ok && o.value])).toEqual([['web1', ['r2', 'r1']], ['web2', ['r2', 'r1']], ['jobs1', ['r2', 'r1']]]);
    for (const h of ['web1', 'web2', 'jobs1']) expect(trail(p.pool.steps, h).filter((l) => l.startsWith('remove releases'))).toEqual(['remove releases r2 r1']);
    const a = testContext({ respond });
    await canaryEnd(a.ctx, 'abort');
    expect(a.pool.steps.some((s) => s.kind === 'run' && s.command.label === 'list releases')).toBe(false);
  });

  it('promote deploys only the selected other roles, on the selected hosts that run them', () => {
    const config = { primaryRole: 'web', roles: [{ name: 'web', hosts: [{ host: 'a' }, { host: 'b' }] }, { name: 'jobs', hosts: [{ host: 'b' }, { host: 'c' }] }, { name: 'cron', hosts: [{ host: 'd' }] }] } as never;
    expect(promoteRest(config, { roles: ['web', 'jobs', 'cron'], hosts: ['a', 'b', 'c', 'd'] })).toEqual({ roles: ['jobs', 'cron'], hosts: ['b', 'c', 'd'] });
    expect(promoteRest(config, { roles: ['web', 'jobs'], hosts: ['a', 'c'] })).toEqual({ roles: ['jobs'], hosts: ['c'] });
    expect(promoteRest(config, { roles: ['web'], hosts: ['a', 'b', 'c', 'd'] })).toEqual({ roles: [], hosts: [] });
    expect(promoteRest(config, { roles: ['web', 'cron'], hosts: ['a', 'b'] })).toEqual({ roles: [], hosts: [] });
  });
});
