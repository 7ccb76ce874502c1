import { describe, expect, it } from 'vitest';
import { exitCodeFor, XamalError } from '../../../../core/index.ts';
import { readAudit } from '../../../../deployer/flows/audit.ts';
import { execOnHosts } from '../../../../deployer/flows/exec.ts';
import { exitCodeForOutcomes, onHosts, onSessions, summary } from '../../../../deployer/flows/parallel.ts';
import { selectTargets } from '../../../../deployer/flows/targets.ts';
import { validateDeployConfig } from '../../../../deployer/config/load.ts';
import { baseConfig, SECRET, testContext } from '../../../../testkit/deployer/context.ts';
import { FakeHost } from '../../../../testkit/deployer/fake-host.ts';

describe('parallel runner', () => {
  it('runs at most `concurrency` hosts at once and keeps every result and error in host order', async () => {
    let running = 0;
    let peak = 0;
    const hosts = Array.from({ length: 25 }, (_, i) => `h${i}`);
    const out = await onHosts(
      hosts,
      async (h) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 2));
        running--;
        if (h === 'h7') throw new XamalError('unavailable', 'down');
        return h.toUpperCase();
      },
      { concurrency: 10 },
    );
    expect(peak).toBe(10);
    expect(out.map((o) => o.host)).toEqual(hosts);
    expect(out.filter((o) => !o.ok).map((o) => o.host)).toEqual(['h7']);
    expect(summary(out)).toBe('25 hosts: 24 ok, 1 failed (h7)');
    expect(exitCodeForOutcomes(out)).toBe(exitCodeFor('unavailable'));
    expect(exitCodeForOutcomes(out.filter((o) => o.ok))).toBe(0);
  });
});

describe('onSessions', () => {
  it("gives each selected host's session to the function, in host order, or only the hosts given", async () => {
    const { ctx } = testContext();
    const seen = await onSessions(ctx, async (s, host) => `${s.host}=${host}`);
    expect(seen.map((o) => (o.ok ? o.value : o.error.message))).toEqual(['web1=web1', 'web2=web2', 'jobs1=jobs1']);
    expect((await onSessions(ctx, async (s) => s.host, ['jobs1'])).map((o) => o.host)).toEqual(['jobs1']);
  });

  it("keeps to the context's concurrency", async () => {
    const { ctx } = testContext();
    let running = 0;
    let peak = 0;
    await onSessions({ ...ctx, concurrency: 1 }, async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 2));
      running--;
    });
    expect(peak).toBe(1);
  });
});

describe('host and role selection', () => {
  const config = validateDeployConfig(baseConfig);
  it('takes comma-separated names with * wildcards, roles narrowing hosts', () => {
    expect(selectTargets(config)).toEqual({ hosts: ['web1', 'web2', 'jobs1'], roles: ['web', 'jobs'] });
    expect(selectTargets(config, { hosts: ['web*'] })).toEqual({ hosts: ['web1', 'web2'], roles: ['web', 'jobs'] });
    expect(selectTargets(config, { roles: ['j*'] })).toEqual({ hosts: ['jobs1'], roles: ['jobs'] });
    expect(() => selectTargets(config, { hosts: ['db*'] })).toThrow('no host matches "db*" (hosts: web1, web2, jobs1)');
    expect(() => selectTargets(config, { roles: ['web'], hosts: ['jobs1'] })).toThrow(/no host is in the selected roles/);
  });

  it("-p picks the primary role's first host, or with -r the first selected role's, and refuses -h beside it", () => {
    expect(selectTargets(config, { primary: true })).toEqual({ hosts: ['web1'], roles: ['web', 'jobs'] });
    expect(selectTargets(config, { primary: true, roles: ['jobs'] })).toEqual({ hosts: ['jobs1'], roles: ['jobs'] });
    const jobsFirst = validateDeployConfig({ ...baseConfig, primary_role: 'jobs' });
    expect(selectTargets(jobsFirst, { primary: true }).hosts).toEqual(['jobs1']);
    expect(() => selectTargets(config, { primary: true, hosts: ['web2'] })).toThrow(/^--primary and --hosts cannot be combined/);
  });
});

describe('server exec', () => {
  it("prints every host's output (secrets redacted), fails the hosts that exit non-zero or are down, and audits", async () => {
    const hosts = new Map(['web1', 'web2', 'jobs1'].map((h) => [h, new FakeHost(h)]));
    for (const h of hosts.values()) h.files.set('/opt/xamal/shop', { type: 'directory', mode: 0o755, owner: 'deploy' });
    hosts.get('jobs1')!.down = true;
    const { ctx } = testContext({
      command: 'server exec',
      respond: (step) => {
        if (step.kind === 'run' && step.command.argv[2] === 'uname -m; echo $DB' && !hosts.get(step.host)!.down) return step.host === 'web2' ? { code: 2, stdout: '', stderr: 'boom' } : { stdout: `x86_64\n${SECRET}\n` };
        return hosts.get(step.host)!.respond(step);
      },
    });
    const out = await execOnHosts(ctx, 'uname -m; echo $DB');
    expect(out.map((o) => [o.host, o.ok])).toEqual([
      ['web1', true],
      ['web2', false],
      ['jobs1', false],
    ]);
    expect(out[0]!.ok && out[0]!.value.stdout).toBe('x86_64\n[REDACTED]\n');
    expect(!out[1]!.ok && out[1]!.error.message).toBe('exited 2: boom');
    expect(!out[2]!.ok && out[2]!.error.message).toMatch(/ECONNREFUSED/);
    const audit = await readAudit({ ...ctx, targets: { hosts: ['web1', 'web2'], roles: ['web'] } });
    expect(audit.map((o) => o.ok && o.value)).toEqual([
      [{ time: '2025-03-01T12:00:00.000Z', performer: 'Ada', command: 'server exec uname -m; echo $DB', result: 'ok' }],
      [{ time: '2025-03-01T12:00:00.000Z', performer: 'Ada', command: 'server exec uname -m; echo $DB', result: 'failed: exit 2' }],
    ]);
  });
});
