import { describe, expect, it } from 'vitest';
import { revealArg } from '../../../../core/index.ts';
import type { HostDeployRecord } from '../../../../deployer/flows/deploy.ts';
import type { HostOutcome } from '../../../../deployer/flows/parallel.ts';
import { rolloutStateLines, watchRollout } from '../../../../deployer/flows/rollout.ts';
import type { RecordedStep } from '../../../../deployer/remote.ts';
import { baseConfig, SECRET, testContext } from '../../../../testkit/deployer/context.ts';

const V = 'a1b2c3d4e5f6';
const config = (rollout: Record<string, unknown>) => ({ ...baseConfig, rollout });

/** Hosts where green runs V (just switched) and blue keeps `old`; `watch` answers each host's nth check. */
function hosts(watch: (host: string, n: number) => string) {
  const n = new Map<string, number>();
  return (step: RecordedStep) => {
    if (step.kind !== 'run') return undefined;
    const label = step.command.label ?? '';
    if (label.startsWith('watch ')) {
      const i = (n.get(step.host) ?? 0) + 1;
      n.set(step.host, i);
      return { stdout: `${watch(step.host, i)} \n` };
    }
    if (label.startsWith('slot state')) return { stdout: `blue inactive /opt/xamal/shop/releases/old\ngreen active /opt/xamal/shop/releases/${V}\ncurrent /opt/xamal/shop/releases/${V}\nlive green\n` };
    if (label.startsWith('health check') || label.startsWith('check https')) return { stdout: '200' };
    return { code: 0 };
  };
}

const switched = (...names: string[]): HostOutcome<HostDeployRecord>[] =>
  names.map((host) => ({ host, ok: true, ms: 1, value: { host, version: V, roles: [{ role: 'web', live: 'green', stopped: 'blue', previous: 'old' }], pulled: true, durationsMs: {} } }));

const labels = (steps: RecordedStep[], host?: string) => steps.filter((s): s is Extract<RecordedStep, { kind: 'run' }> => s.kind === 'run' && (!host || s.host === host)).map((s) => s.command.label ?? '');

describe('a watched rollout', () => {
  it('checks every host through Caddy every interval for the window and passes when all answer 2xx: nothing rolled back, any failed mark of the version cleared', async () => {
    const { ctx, pool, sleeps } = testContext({ command: 'deploy', roles: ['web'], config: config({ watch: '3s', interval: '1s' }), respond: hosts(() => '200') });
    const report = await watchRollout(ctx, V, switched('web1', 'web2'));
    expect(report?.watch).toMatchObject({ result: 'passed', windowS: 3, intervalS: 1, failures: 2, check: 'GET https://shop.example.com/up through Caddy', hosts: ['web1', 'web2'], checks: 8, elapsedS: 3 });
    expect(report?.rollback).toBeUndefined();
    expect(sleeps).toEqual([1000, 1000, 1000]);
    expect(labels(pool.steps, 'web1').filter((l) => l.startsWith('watch'))).toHaveLength(4);
    // The mark is cleared on every host of the app, also those not deployed to.
    expect(pool.steps.filter((s) => s.kind === 'run' && s.command.label === `clear failed mark of ${V}`).map((s) => s.host)).toEqual(['web1', 'web2', 'jobs1']);
    expect(labels(pool.steps).some((l) => l.startsWith('start '))).toBe(false);
  });

  it('with max_5xx_percent, counts each host\'s answers through Caddy from its access log since the watch began (as root, from the offset it had then) and rolls back once one host is over the limit, the counts in the report and the mark', async () => {
    const reads = new Map<string, number>();
    const offsets: string[] = [];
    const base = hosts(() => '200');
    const { ctx, pool } = testContext({
      command: 'deploy',
      roles: ['web'],
      config: config({ watch: '60s', interval: '1s', max_5xx_percent: 10, min_requests: 20 }),
      respond: (step) => {
        const label = step.kind === 'run' ? (step.command.label ?? '') : '';
        if (step.kind === 'run' && label.startsWith('size of /var/log/caddy/xamal-shop.access.log')) return { stdout: '5000\n' };
        if (step.kind === 'run' && label.startsWith('count answers in /var/log/caddy/xamal-shop.access.log')) {
          const n = (reads.get(step.host) ?? 0) + 1;
          reads.set(step.host, n);
          const argv = step.command.argv.map(String);
          offsets.push(`${step.host} ${argv[argv.length - 2]}`);
          // web2: 15 answers a read, 3 of them 5xx from its second read on; web1 all fine.
          const off = Number(argv[argv.length - 2]);
          return { stdout: `${off + 1000} 15 ${step.host === 'web2' && n >= 2 ? 3 : 0} ${off + 1000}\n` };
        }
        return base(step);
      },
    });
    const report = await watchRollout(ctx, V, switched('web1', 'web2'));
    // 30 answers, 3 of them 5xx, is 10 %: not over; the third read makes it 6 of 45.
    expect(report?.watch).toMatchObject({ result: 'failed', host: 'web2', max5xxPercent: 10, reason: 'web2: 6 of 45 answers through Caddy were 5xx (13.3 % > max_5xx_percent 10 %)', fiveXx: { host: 'web2', answers: 45, errors5xx: 6, percent: 13.3, max: 10 } });
    expect(report?.watch.counts).toEqual({ web1: { answers: 45, errors5xx: 0 }, web2: { answers: 45, errors5xx: 6 } });
    // Each read starts where the last one ended, from the size the log had when the watch began.
    expect(offsets.filter((o) => o.startsWith('web1'))).toEqual(['web1 5000', 'web1 6000', 'web1 7000']);
    const reads5xx = pool.steps.filter((s) => s.kind === 'run' && (s.command.label ?? '').startsWith('count answers'));
    expect(reads5xx.every((s) => s.kind === 'run' && String(s.command.argv[0]) === 'sudo')).toBe(true);
    expect(report?.failed).toMatchObject({ host: 'web2', fiveXx: { host: 'web2', errors5xx: report!.watch.fiveXx!.errors5xx, answers: report!.watch.fiveXx!.answers } });
    expect(report?.rollback?.to).toEqual({ web1: 'old', web2: 'old' });
  });

  it('watches nothing when rollout.watch is unset, or when no host went live', async () => {
    const plain = testContext({ command: 'deploy', roles: ['web'], respond: hosts(() => '200') });
    expect(await watchRollout(plain.ctx, V, switched('web1'))).toBeUndefined();
    const watched = testContext({ command: 'deploy', roles: ['web'], config: config({ watch: '3s' }), respond: hosts(() => '200') });
    expect(await watchRollout(watched.ctx, V, [{ host: 'web1', ok: false, error: new Error('down'), ms: 1 }])).toBeUndefined();
    expect(watched.pool.steps).toEqual([]);
  });

  it('when one host fails 2 checks in a row, switches every host back to its previous version the rollback way and marks the version failed on every host of the app', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], config: config({ watch: '60s', interval: '2s' }), respond: hosts((h, n) => (h === 'web2' && n >= 3 ? '503' : '200')) });
    const said: string[] = [];
    ctx.say = (l) => said.push(l);
    const report = await watchRollout(ctx, V, switched('web1', 'web2'));
    expect(report?.watch).toMatchObject({ result: 'failed', host: 'web2', elapsedS: 6, reason: 'web2: 2 checks in a row failed (GET https://shop.example.com/up through Caddy): 503 at 4.0 s, 503 at 6.0 s' });
    expect(report?.rollback?.to).toEqual({ web1: 'old', web2: 'old' });
    expect(report?.rollback?.outcomes.map((o) => [o.host, o.ok && o.value.version, o.ok && o.value.roles])).toEqual([
      ['web1', 'old', [{ role: 'web', live: 'blue', stopped: 'green', previous: V }]],
      ['web2', 'old', [{ role: 'web', live: 'blue', stopped: 'green', previous: V }]],
    ]);
    for (const h of ['web1', 'web2']) {
      const l = labels(pool.steps, h);
      const order = ['point web-blue at old', 'start web-blue', 'health check', 'stop web-green', 'check https', 'mark web-blue live', `mark ${V} failed`].map((x) => l.findIndex((y, i) => y.startsWith(x) && i > l.findIndex((z) => z.startsWith('watch'))));
      expect(order.every((i) => i >= 0), `${h}: ${l.join(' | ')}`).toBe(true);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
      expect(l.some((x) => x.startsWith('pull'))).toBe(false);
    }
    const marks = pool.steps.filter((s): s is Extract<RecordedStep, { kind: 'run' }> => s.kind === 'run' && s.command.label === `mark ${V} failed`);
    expect(marks.map((s) => s.host)).toEqual(['web1', 'web2', 'jobs1']);
    expect(JSON.parse(revealArg(marks[0]!.command.stdin!))).toMatchObject({ version: V, performer: 'Ada', host: 'web2', rolledBackTo: { web1: 'old', web2: 'old' }, answers: [{ host: 'web2', status: 503 }, { host: 'web2', status: 503 }] });
    expect(said).toContain(`rollout of ${V} failed: ${report!.watch.reason}; rolling back`);
    // Audit: the failed watch on each watched host, and the rollback's own lines as an automatic rollback.
    const audits = pool.steps.filter((s): s is Extract<RecordedStep, { kind: 'run' }> => s.kind === 'run' && s.command.label === 'audit' && s.host === 'web1').map((s) => JSON.parse(revealArg(s.command.stdin!)));
    expect(audits.map((x) => [x.command, x.version, x.result.split(':')[0]])).toEqual([['rollout watch', V, 'failed'], ['rollback (automatic)', 'old', 'ok']]);
  });

  it('keeps secrets out of the reason and the mark', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], config: config({ watch: '10s', interval: '1s', failures: 1 }), respond: hosts(() => `000 curl: (7) ${SECRET}`) });
    const report = await watchRollout(ctx, V, switched('web1'));
    expect(report?.watch.reason).toContain('[REDACTED]');
    expect(report?.watch.reason).not.toContain(SECRET);
    const mark = pool.steps.find((s) => s.kind === 'run' && s.command.label === `mark ${V} failed`);
    expect(mark?.kind === 'run' && revealArg(mark.command.stdin!)).not.toContain(SECRET);
  });

  it('app details says which versions failed and how the last deploy ended', () => {
    const lines = rolloutStateLines({
      failed: [{ version: 'v2', time: 'T1', performer: 'Ada', host: 'web1', check: 'GET /up', reason: 'web1: 2 checks in a row failed', answers: [], rolledBackTo: { web1: 'v1' } }],
      lastDeploy: { version: 'v2', time: 'T0', performer: 'Ada', command: 'deploy', hosts: ['web1'], roles: ['web'], outcome: { ended: 'T1', ok: ['web1'], failed: [], rolledBack: 'web1: 2 checks in a row failed', watch: { result: 'failed', checks: 9, elapsedS: 7.5 } } },
    });
    expect(lines).toEqual(['failed: v2 (rolled back T1, deploy by Ada): web1: 2 checks in a row failed', 'last deploy: v2 (deploy by Ada, T0): rolled back: web1: 2 checks in a row failed']);
    const counted = rolloutStateLines({
      failed: [],
      lastDeploy: { version: 'v3', time: 'T0', performer: 'Ada', command: 'deploy', hosts: ['web1', 'web2'], roles: ['web'], outcome: { ended: 'T1', ok: ['web1', 'web2'], failed: [], rolledBack: 'web2: 6 of 45 answers through Caddy were 5xx (13.3 % > max_5xx_percent 10 %)', watch: { result: 'failed', checks: 6, elapsedS: 3, counts: { web1: { answers: 45, errors5xx: 0 }, web2: { answers: 45, errors5xx: 6 } } } } },
    });
    expect(counted).toEqual(['last deploy: v3 (deploy by Ada, T0): rolled back: web2: 6 of 45 answers through Caddy were 5xx (13.3 % > max_5xx_percent 10 %); through Caddy: web1 0 5xx of 45, web2 6 5xx of 45']);
  });
});
