import { describe, expect, it } from 'vitest';
import { displayCommand } from '../../../../core/index.ts';
import type { HostOutcome } from '../../../../deployer/flows/parallel.ts';
import { pruneAfterDeploy, prunedWords } from '../../../../deployer/flows/prune.ts';
import type { RecordedStep } from '../../../../deployer/remote.ts';
import { testContext } from '../../../../testkit/deployer/context.ts';

const config = { service: 'shop', servers: { web: ['web1', 'web2', 'web3'] }, ssh: { user: 'deploy' }, caddy: { hosts: ['shop.example.com'] }, retain_releases: 2 };

/** Five releases, newest first; blue runs v5 (just deployed), green still points at v4 (the previous one). */
function host(over: { listFails?: string } = {}) {
  return (step: RecordedStep) => {
    if (step.kind !== 'run') return undefined;
    const label = step.command.label ?? '';
    if (label === 'list releases') return step.host === over.listFails ? { code: 1, stderr: 'Permission denied' } : { stdout: 'v5\nv4\nv3\nv2\nv1\n' };
    if (label.startsWith('slot state')) return { stdout: 'blue active /opt/xamal/shop/releases/v5\ngreen inactive /opt/xamal/shop/releases/v4\ncurrent /opt/xamal/shop/releases/v5\nlive blue\n' };
    return { code: 0 };
  };
}

const ok = (host: string): HostOutcome<unknown> => ({ host, ok: true, value: {}, ms: 1 });

describe('prune after a deploy', () => {
  it('keeps retain_releases (never the running or previous one) on each host the deploy succeeded on, and none where it failed', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', config, respond: host() });
    const pruned = await pruneAfterDeploy(ctx, [ok('web1'), { host: 'web2', ok: false, error: new Error('health check'), ms: 1 }, ok('web3')]);
    expect([...pruned.keys()]).toEqual(['web1', 'web3']);
    expect(pruned.get('web1')).toMatchObject({ ok: true, value: ['v3', 'v2', 'v1'] });
    expect(pool.steps.some((s) => s.host === 'web2')).toBe(false);
    const rm = pool.steps.filter((s) => s.kind === 'run' && s.host === 'web1' && s.command.argv[0] === 'rm').map((s) => (s.kind === 'run' ? displayCommand(s.command) : ''));
    expect(rm).toEqual(['rm -rf -- /opt/xamal/shop/releases/v3 /opt/xamal/shop/releases/v2 /opt/xamal/shop/releases/v1']);
    expect(prunedWords(pruned.get('web1'), (t) => t)).toBe('pruned v3 v2 v1');
  });

  it('a host whose prune fails is reported as such, the others pruned; nothing when no host deployed', async () => {
    const { ctx } = testContext({ command: 'deploy', config, respond: host({ listFails: 'web1' }) });
    const pruned = await pruneAfterDeploy(ctx, [ok('web1'), ok('web2')]);
    expect(pruned.get('web1')!.ok).toBe(false);
    expect(prunedWords(pruned.get('web1'), (t) => t)).toMatch(/^prune FAILED: web1: .*Permission denied/);
    expect(pruned.get('web2')!.ok).toBe(true);
    expect(await pruneAfterDeploy(ctx, [{ host: 'web1', ok: false, error: new Error('x'), ms: 1 }])).toEqual(new Map());
    expect(prunedWords({ host: 'web2', ok: true, value: [], ms: 1 }, (t) => t)).toBeUndefined();
  });
});
