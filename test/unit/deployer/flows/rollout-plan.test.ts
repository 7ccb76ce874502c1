import { describe, expect, it } from 'vitest';
import { silentAccessLogs, failedVersionRefusal, latestAttempt, parseFailedMarks, resumeSelection, rollbackTargets, watchVerdict, type DeployAttempt, type FailedMark, type HostLive, type WatchAnswer } from '../../../../deployer/flows/rollout-plan.ts';

const policy = { windowS: 15, failures: 2 };
const CHECK = 'GET https://shop.example.com/up through Caddy';
const a = (host: string, atS: number, status: number, error?: string): WatchAnswer => ({ host, atS, status, ...(error ? { error } : {}) });

describe('the watch verdict', () => {
  it('fails once a host\'s 5xx share through Caddy is over max_5xx_percent after min_requests answers, with the counts in the verdict; not before min_requests, not at the limit, not when no maximum is set', () => {
    const p = { ...policy, max5xxPercent: 10, minRequests: 20 };
    const ok = [a('web1', 0, 200), a('web2', 0, 200)];
    const counts = (web1: [number, number], web2: [number, number]) => new Map([['web1', { answers: web1[0], errors5xx: web1[1] }], ['web2', { answers: web2[0], errors5xx: web2[1] }]]);
    expect(watchVerdict(p, ok, 1, CHECK, counts([19, 19], [0, 0]))).toEqual({ state: 'watching' });
    expect(watchVerdict(p, ok, 1, CHECK, counts([100, 10], [40, 4]))).toEqual({ state: 'watching' });
    expect(watchVerdict(p, ok, 1, CHECK, counts([100, 10], [40, 5]))).toEqual({
      state: 'failed',
      host: 'web2',
      answers: [],
      reason: 'web2: 5 of 40 answers through Caddy were 5xx (12.5 % > max_5xx_percent 10 %)',
      fiveXx: { host: 'web2', answers: 40, errors5xx: 5, percent: 12.5, max: 10 },
    });
    expect(watchVerdict(policy, ok, 1, CHECK, counts([40, 40], [0, 0]))).toEqual({ state: 'watching' });
    expect(watchVerdict(p, ok, 15, CHECK, counts([100, 10], [0, 0]))).toEqual({ state: 'passed', checks: 2 });
    // A failing health run is reported first.
    expect(watchVerdict(p, [a('web1', 0, 503), a('web1', 1, 503)], 1, CHECK, counts([100, 50], [0, 0]))).toMatchObject({ state: 'failed', reason: expect.stringMatching(/checks in a row failed/) });
  });

  it('names the hosts whose access log counted nothing although Caddy answered the checks there (none where the checks got no answer either)', () => {
    const counts = new Map([['web1', { answers: 0, errors5xx: 0 }], ['web2', { answers: 12, errors5xx: 0 }], ['web3', { answers: 0, errors5xx: 0 }]]);
    expect(silentAccessLogs(counts, [a('web1', 0, 200), a('web2', 0, 200), a('web3', 0, 0, 'curl: (28)')])).toEqual(['web1']);
  });

  it('keeps watching while every host answers 2xx inside the window, and passes once the window is over', () => {
    const answers = [a('web1', 0, 200), a('web2', 0, 204), a('web1', 1, 200), a('web2', 1, 200)];
    expect(watchVerdict(policy, answers, 1, CHECK)).toEqual({ state: 'watching' });
    expect(watchVerdict(policy, answers, 15, CHECK)).toEqual({ state: 'passed', checks: 4 });
  });

  it('fails as soon as one host answers `failures` checks in a row badly (a 5xx, a 404, or no answer), naming the host, the check and the answers', () => {
    const answers = [a('web1', 0, 200), a('web2', 0, 200), a('web1', 1, 503), a('web2', 1, 200), a('web1', 2, 0, 'curl: (28) Operation timed out')];
    const v = watchVerdict(policy, answers, 2, CHECK);
    expect(v).toEqual({
      state: 'failed',
      host: 'web1',
      answers: [a('web1', 1, 503), a('web1', 2, 0, 'curl: (28) Operation timed out')],
      reason: 'web1: 2 checks in a row failed (GET https://shop.example.com/up through Caddy): 503 at 1.0 s, no answer at 2.0 s (curl: (28) Operation timed out)',
    });
    expect(watchVerdict(policy, [a('web2', 0, 404), a('web2', 0.5, 404)], 0.5, CHECK)).toMatchObject({ state: 'failed', host: 'web2' });
  });

  it('does not fail on failures that are not in a row, nor on one host\'s failure followed by another host\'s', () => {
    const answers = [a('web1', 0, 502), a('web2', 0.1, 502), a('web1', 1, 200), a('web2', 1.1, 200), a('web1', 2, 500), a('web1', 3, 200)];
    expect(watchVerdict(policy, answers, 15, CHECK)).toEqual({ state: 'passed', checks: 6 });
  });

  it('a failure found even after the window ends still fails the rollout, and the host that reached the limit first is named', () => {
    const answers = [a('web2', 1, 500), a('web1', 1, 500), a('web1', 2, 500), a('web2', 3, 500)];
    expect(watchVerdict(policy, answers, 20, CHECK)).toMatchObject({ state: 'failed', host: 'web1' });
    expect(watchVerdict({ windowS: 15, failures: 1 }, [a('web1', 0, 200), a('web2', 4, 503)], 4, CHECK)).toMatchObject({ state: 'failed', host: 'web2', reason: expect.stringMatching(/^web2: a check failed \(GET .*\): 503 at 4.0 s$/) });
  });
});

const mark = (over: Partial<FailedMark> = {}): FailedMark => ({
  version: 'v2',
  time: '2026-12-05T09:00:00.000Z',
  performer: 'Ada',
  host: 'web1',
  check: CHECK,
  reason: 'web1: 2 checks in a row failed (GET …): 503 at 5.0 s, 503 at 5.5 s',
  answers: [],
  rolledBackTo: { web1: 'v1' },
  ...over,
});

describe('a version marked failed', () => {
  it('is refused without --force, naming when, by whose deploy and why it failed (the latest mark)', () => {
    const err = failedVersionRefusal('v2', [mark({ time: '2026-12-01T00:00:00.000Z', reason: 'older' }), mark()], false);
    expect(err?.code).toBe('conflict');
    expect(err?.message).toBe('v2 failed after its switch on 2026-12-05T09:00:00.000Z (deploy by Ada) and was rolled back: web1: 2 checks in a row failed (GET …): 503 at 5.0 s, 503 at 5.5 s\ndeploy it again anyway with --force');
  });

  it('is deployed with --force; other versions are never refused', () => {
    expect(failedVersionRefusal('v2', [mark()], true)).toBeUndefined();
    expect(failedVersionRefusal('v3', [mark()], false)).toBeUndefined();
    expect(failedVersionRefusal('v2', [], false)).toBeUndefined();
  });

  it('is read back from the hosts one JSON document per line, skipping what is not a mark', () => {
    expect(parseFailedMarks(`${JSON.stringify(mark())}\nnot json\n{"x":1}\n\n`)).toEqual([mark()]);
  });
});

describe('the automatic rollback', () => {
  it('sends each host back to what its primary role ran before, grouped by version; hosts with nothing before are left out', () => {
    const { groups, none } = rollbackTargets(
      [
        { host: 'web1', roles: [{ role: 'web', previous: 'v1' }] },
        { host: 'web2', roles: [{ role: 'jobs', previous: 'v0' }, { role: 'web', previous: 'v1' }] },
        { host: 'web3', roles: [{ role: 'web', previous: 'v0' }] },
        { host: 'web4', roles: [{ role: 'web' }] },
      ],
      'web',
    );
    expect([...groups]).toEqual([['v1', ['web1', 'web2']], ['v0', ['web3']]]);
    expect(none).toEqual(['web4']);
  });
});

describe('deploy --resume', () => {
  const attempt: DeployAttempt = { version: 'v2', time: '2026-12-05T09:00:00.000Z', performer: 'Ada', command: 'deploy', hosts: ['web1', 'web2', 'web3'], roles: ['web'] };
  const live = (version: string | undefined, running = true): HostLive => ({ roles: [{ role: 'web', version, running }] });

  it('acts only on the hosts where the version is not live and running, or that could not be read, and says why for each', () => {
    const sel = resumeSelection(attempt, ['web1', 'web2', 'web3'], new Map([['web1', live('v2')], ['web2', live('v1')], ['web3', { error: 'SSH connection lost' }]]));
    expect(sel).toEqual({ act: ['web2', 'web3'], done: ['web1'], why: { web1: 'runs v2', web2: 'web live at v1', web3: 'not read: SSH connection lost' } });
  });

  it('a host whose new slot is live but not running, or with one role behind, is acted on', () => {
    const two: HostLive = { roles: [{ role: 'web', version: 'v2', running: true }, { role: 'jobs', version: 'v1', running: true }] };
    const sel = resumeSelection({ ...attempt, roles: ['web', 'jobs'] }, ['web1', 'web2'], new Map([['web1', live('v2', false)], ['web2', two]]));
    expect(sel.act).toEqual(['web1', 'web2']);
    expect(sel.why).toEqual({ web1: 'web not running (v2)', web2: 'jobs live at v1' });
  });

  it('leaves out hosts the attempt did not include, and hosts not selected', () => {
    const sel = resumeSelection({ ...attempt, hosts: ['web1', 'web2'] }, ['web2', 'web3'], new Map([['web2', live('v1')], ['web3', live('v1')]]));
    expect(sel).toEqual({ act: ['web2'], done: [], why: { web2: 'web live at v1' } });
  });

  it('resumes the newest attempt kept on any host (its update time when it has one), skipping unreadable records', () => {
    const older = { ...attempt, version: 'v1', time: '2026-12-04T09:00:00.000Z' };
    const updated = { ...older, updated: '2026-12-06T00:00:00.000Z' };
    expect(latestAttempt([JSON.stringify(older), 'garbage', JSON.stringify(attempt)])?.version).toBe('v2');
    expect(latestAttempt([JSON.stringify(attempt), JSON.stringify(updated)])?.version).toBe('v1');
    expect(latestAttempt(['{}', ''])).toBeUndefined();
  });
});
