import { describe, expect, it } from 'vitest';
import { displayCommand, revealArg, XamalError, type HostFingerprint } from '../../../../core/index.ts';
import type { HookName, HookRunner } from '../../../../deployer/hooks.ts';
import { bootBatches, currentVersion, deployFlow, previousVersion, type ArtifactSource } from '../../../../deployer/flows/deploy.ts';
import type { RecordedStep } from '../../../../deployer/remote.ts';
import { parseSlotState, idleSlot } from '../../../../deployer/commands/slots.ts';
import { COOKIE, SECRET, testContext } from '../../../../testkit/deployer/context.ts';

const V = 'a1b2c3d4e5f6';
const SHA = 'f'.repeat(64);
const PROBE = '@@uname\nLinux\nx86_64\n6.1\nweb1\n@@glibc\nglibc 2.36\n@@os-release\nID=debian\nVERSION_ID="12"\n@@ldconfig\n\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6\n@@libs\n@@end\n';

/** A host where blue runs the previous release; answers by the command's label. */
function host(over: { present?: boolean; healthy?: boolean; caddy?: boolean; releaseCommand?: number; unhealthyOn?: string } = {}) {
  return (step: RecordedStep) => {
    if (step.kind !== 'run') return undefined;
    if (over.unhealthyOn === step.host && (step.command.label ?? '').startsWith('health check')) return { code: 1, stdout: '503' };
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
  verify: async () => ({ sha256: SHA }),
  link: async () => ({ url: 'http://farm:7420/v1/downloads/SIGNED-LINK-TOKEN', sha256: SHA }),
};

/** The steps that change a host (anything but reading whether the release is there and the fingerprint). */
const changes = (steps: RecordedStep[]) => labels(steps).filter((l) => !l.startsWith('is ') && l !== 'fingerprint host');

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

  it('verifies each artifact once, after every host was fingerprinted and before any host pulls; hosts check the sha256 of the signed manifest', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], respond: host() });
    const seen: { tuple: string; stepsBefore: string[] }[] = [];
    const source: ArtifactSource = { ...artifacts, verify: async (tuple) => (seen.push({ tuple, stepsBefore: labels(pool.steps) }), { sha256: SHA }) };
    const { outcomes } = await deployFlow(ctx, { version: V, artifacts: source });
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(seen.map((x) => x.tuple)).toEqual(['linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0']);
    expect(seen[0]!.stepsBefore.filter((l) => l === 'fingerprint host')).toHaveLength(2);
    expect(seen[0]!.stepsBefore.some((l) => l.startsWith('pull'))).toBe(false);
    const pulls = pool.steps.filter((s): s is Extract<RecordedStep, { kind: 'run' }> => s.kind === 'run' && (s.command.label ?? '').startsWith('pull release'));
    expect(pulls).toHaveLength(2);
    for (const p of pulls) expect(p.command.argv).toContain(SHA);
  });

  it('a failed verification stops the deploy naming the artifact and the reason, before anything changed on any host', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], respond: host() });
    const refuse: ArtifactSource = {
      ...artifacts,
      verify: async (tuple) => {
        throw new XamalError('verification_failed', `artifact ${tuple}: signature: unknown key: signed by key 0123456789abcdef, which is not trusted`);
      },
    };
    const err = await deployFlow(ctx, { version: V, artifacts: refuse }).catch((e: unknown) => e as XamalError);
    expect(err).toMatchObject({
      code: 'verification_failed',
      message: `release ${V} was not deployed: its artifact could not be verified; nothing was changed on any host:\nartifact linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0: signature: unknown key: signed by key 0123456789abcdef, which is not trusted`,
    });
    expect(changes(pool.steps)).toEqual([]);
    expect(pool.steps.every((s) => s.kind === 'run')).toBe(true);
  });

  it('refuses when the signed manifest names another tarball than the farm answered (a tampered index), before any pull', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], respond: host() });
    const other: ArtifactSource = { ...artifacts, verify: async () => ({ sha256: 'e'.repeat(64) }) };
    await expect(deployFlow(ctx, { version: V, artifacts: other })).rejects.toMatchObject({ code: 'verification_failed', message: expect.stringContaining(`the farm answered sha256 ${SHA}, its signed manifest says ${'e'.repeat(64)}`) });
    expect(changes(pool.steps)).toEqual([]);
  });

  it('an artifact let through unverified (no key pinned, unsigned) is pulled with the sha256 the farm answered, as before signing', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], hosts: ['web1'], respond: host() });
    const { outcomes } = await deployFlow(ctx, { version: V, artifacts: { ...artifacts, verify: async () => ({ sha256: undefined }) } });
    expect(outcomes[0]!.ok).toBe(true);
    const pull = pool.steps.find((s) => s.kind === 'run' && (s.command.label ?? '').startsWith('pull release'));
    expect(pull?.kind === 'run' && pull.command.argv).toContain(SHA);
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

/** Records each hook call with the hosts it was given and how many host steps had run by then; `fail` makes that hook fail as runHook does. */
function recordHooks(pool: { steps: RecordedStep[] }, fail?: HookName) {
  const calls: { name: HookName; hosts: string; lock: boolean | undefined; at: number }[] = [];
  const hooks: HookRunner = async (name, extra) => {
    calls.push({ name, hosts: (extra?.hosts ?? []).join(','), lock: extra?.lock, at: pool.steps.length });
    if (name === fail) throw new XamalError('hook_failed', `hook ${name} failed (exit 1)`, { details: { hook: name, exitCode: 1 } });
  };
  return { calls, hooks };
}

/** Index of each step whose label starts with one of `prefixes`, over every host. */
const stepsAt = (steps: RecordedStep[], ...prefixes: string[]) =>
  steps.flatMap((s, i) => (s.kind === 'run' && prefixes.some((p) => (s.command.label ?? '').startsWith(p)) ? [i] : []));

const twoGroups = { ...{ service: 'shop', servers: { web: ['web1', 'web2'] }, ssh: { user: 'deploy' }, caddy: { hosts: ['shop.example.com'] } }, boot: { limit: 1 } };

describe('the boot and switch hooks', () => {
  it('run once for all hosts: pre-app-boot before any boot, post-app-boot and pre-caddy-switch once every host is healthy, post-caddy-switch after every switch', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], respond: host({ present: true }) });
    const { calls, hooks } = recordHooks(pool);
    const { outcomes } = await deployFlow(ctx, { version: V, hooks });
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(calls.map((c) => [c.name, c.hosts])).toEqual([
      ['pre-app-boot', 'web1,web2'],
      ['post-app-boot', 'web1,web2'],
      ['pre-caddy-switch', 'web1,web2'],
      ['post-caddy-switch', 'web1,web2'],
    ]);
    const at = Object.fromEntries(calls.map((c) => [c.name, c.at]));
    const boots = stepsAt(pool.steps, 'start web-green', 'health check');
    const switches = stepsAt(pool.steps, 'stop web-blue', 'check https', 'mark web-green live');
    expect(boots).toHaveLength(4);
    expect(switches).toHaveLength(6);
    expect(Math.min(...boots)).toBeGreaterThanOrEqual(at['pre-app-boot']!);
    // The barrier: both hosts booted and healthy before either switched.
    expect(Math.max(...boots)).toBeLessThan(at['post-app-boot']!);
    expect(at['pre-caddy-switch']!).toBeLessThanOrEqual(Math.min(...switches));
    expect(Math.max(...switches)).toBeLessThan(at['post-caddy-switch']!);
  });

  it('with boot.limit run once per group, with that group\'s hosts, each group switched before the next boots', async () => {
    const { ctx, pool, sleeps } = testContext({ command: 'deploy', config: { ...twoGroups, boot: { limit: 1, wait: 2 } }, respond: host({ present: true }) });
    const { calls, hooks } = recordHooks(pool);
    await deployFlow(ctx, { version: V, hooks });
    expect(calls.map((c) => `${c.name} ${c.hosts}`)).toEqual([
      'pre-app-boot web1', 'post-app-boot web1', 'pre-caddy-switch web1', 'post-caddy-switch web1',
      'pre-app-boot web2', 'post-app-boot web2', 'pre-caddy-switch web2', 'post-caddy-switch web2',
    ]);
    const web2Boot = stepsAt(pool.steps.filter((s) => s.host === 'web2'), 'start web-green');
    expect(web2Boot).toHaveLength(1);
    expect(pool.steps.findIndex((s) => s.host === 'web2' && s.kind === 'run' && s.command.label?.startsWith('start web-green'))).toBeGreaterThan(calls[3]!.at);
    expect(sleeps).toEqual([2000]);
  });

  it('a host that fails its health check is left out of post-app-boot, the switch and post-caddy-switch; the others go live', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], respond: host({ present: true, unhealthyOn: 'web1' }) });
    const { calls, hooks } = recordHooks(pool);
    const { outcomes } = await deployFlow(ctx, { version: V, hooks });
    expect(outcomes.map((o) => [o.host, o.ok])).toEqual([['web1', false], ['web2', true]]);
    expect(calls.map((c) => `${c.name} ${c.hosts}`)).toEqual(['pre-app-boot web1,web2', 'post-app-boot web2', 'pre-caddy-switch web2', 'post-caddy-switch web2']);
    const web1 = labels(pool.steps.filter((s) => s.host === 'web1'));
    expect(web1).toContain('stop web-green');
    expect(web1.some((l) => l === 'stop web-blue' || l.startsWith('mark'))).toBe(false);
  });

  it('when every host fails to boot, no hook after pre-app-boot runs', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], respond: host({ present: true, healthy: false }) });
    const { calls, hooks } = recordHooks(pool);
    const { outcomes } = await deployFlow(ctx, { version: V, hooks });
    expect(outcomes.every((o) => !o.ok)).toBe(true);
    expect(calls.map((c) => c.name)).toEqual(['pre-app-boot']);
  });

  it('a failing pre-app-boot stops the deploy before anything boots or switches, naming the hook', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], respond: host({ present: true }) });
    const { calls, hooks } = recordHooks(pool, 'pre-app-boot');
    const err = await deployFlow(ctx, { version: V, hooks }).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'hook_failed', message: 'hook pre-app-boot failed (exit 1)\nnothing was switched' });
    expect(calls.map((c) => c.name)).toEqual(['pre-app-boot']);
    expect(stepsAt(pool.steps, 'start ', 'stop ', 'mark ', 'check https')).toEqual([]);
  });

  it('a failing pre-caddy-switch stops the new slots it booted: the old ones keep serving, nothing is marked live', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], respond: host({ present: true }) });
    const { calls, hooks } = recordHooks(pool, 'pre-caddy-switch');
    await expect(deployFlow(ctx, { version: V, hooks })).rejects.toMatchObject({ code: 'hook_failed', message: expect.stringMatching(/^hook pre-caddy-switch failed \(exit 1\)\nnothing was switched$/) });
    expect(calls.map((c) => c.name)).toEqual(['pre-app-boot', 'post-app-boot', 'pre-caddy-switch']);
    for (const h of ['web1', 'web2']) {
      const l = labels(pool.steps.filter((s) => s.host === h));
      expect(l.slice(l.indexOf('start web-green'))).toEqual(expect.arrayContaining(['stop web-green']));
      expect(l.some((x) => x === 'stop web-blue' || x.startsWith('mark') || x.startsWith('check https'))).toBe(false);
    }
  });

  it('a failing post-caddy-switch in the first group stops the deploy there, saying where the version is live', async () => {
    const { ctx, pool } = testContext({ command: 'deploy', config: twoGroups, respond: host({ present: true }) });
    const { calls, hooks } = recordHooks(pool, 'post-caddy-switch');
    await expect(deployFlow(ctx, { version: V, hooks })).rejects.toMatchObject({ code: 'hook_failed', message: `hook post-caddy-switch failed (exit 1)\n${V} is live on web1; no other host was switched` });
    expect(calls.map((c) => `${c.name} ${c.hosts}`).at(-1)).toBe('post-caddy-switch web1');
    expect(pool.steps.some((s) => s.host === 'web2' && s.kind === 'run' && s.command.label?.startsWith('start '))).toBe(false);
  });

  it('on a host with two roles, both boot before either switches; when the second fails to boot, the first one\'s new slot stops too', async () => {
    const config = { service: 'shop', servers: { web: ['web1'], jobs: { hosts: ['web1'], cmd: 'bin/jobs' } }, ssh: { user: 'deploy' }, caddy: { hosts: ['shop.example.com'] } };
    const ok = testContext({ command: 'deploy', config, respond: host({ present: true }) });
    await deployFlow(ok.ctx, { version: V });
    const l = labels(ok.pool.steps);
    expect(l.indexOf('start jobs-green')).toBeLessThan(l.indexOf('stop web-blue'));
    const jobsUnhealthy = (step: RecordedStep) => (step.kind === 'run' && step.command.label?.startsWith('health check') && step.command.argv.join(' ').includes('jobs') ? { code: 1, stdout: '503' } : host({ present: true })(step));
    const bad = testContext({ command: 'deploy', config, respond: jobsUnhealthy });
    const { outcomes } = await deployFlow(bad.ctx, { version: V });
    expect(outcomes[0]!.ok).toBe(false);
    const b = labels(bad.pool.steps);
    expect(b).toEqual(expect.arrayContaining(['stop web-green', 'stop jobs-green']));
    expect(b.some((x) => x === 'stop web-blue' || x.startsWith('mark'))).toBe(false);
  });
});
