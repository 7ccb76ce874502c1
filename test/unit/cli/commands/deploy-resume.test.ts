import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deployVerb, type DeployValues } from '../../../../cli/commands/deploy.ts';
import type { Remote } from '../../../../cli/remote.ts';
import { revealArg, SYSTEM_ENV } from '../../../../core/index.ts';
import type { RecordedStep } from '../../../../deployer/remote.ts';
import { testContext } from '../../../../testkit/deployer/context.ts';

/**
 * deploy's failed-version refusal and --resume, through the command (recording pool): what is read
 * from the hosts, what is refused, which hosts act and which are left alone.
 */

const V1 = 'v1';
const V2 = 'v2';
const startDir = process.cwd();
let root: string;

const attempt = { version: V2, time: '2026-12-05T09:00:00.000Z', performer: 'Ada', command: 'deploy', hosts: ['web1', 'web2'], roles: ['web'] };
const mark = { version: V2, time: '2026-12-05T08:00:00.000Z', performer: 'Bob', host: 'web2', check: 'GET https://shop.example.com/up through Caddy', reason: 'web2: 2 checks in a row failed (…): 503 at 4.0 s, 503 at 6.0 s', answers: [], rolledBackTo: { web1: V1, web2: V1 } };

/** web1 runs `live1` in green; web2 runs `live2` in blue; the hosts keep `files` (attempt, failed marks). */
function remoteFor(o: { live1?: string; live2?: string; attempt?: unknown; marks?: unknown[] } = {}) {
  const respond = (step: RecordedStep) => {
    if (step.kind !== 'run') return undefined;
    const label = step.command.label ?? '';
    const live = step.host === 'web1' ? `blue inactive /r/${V1}\ngreen active /r/${o.live1 ?? V2}\nlive green\n` : `blue active /r/${o.live2 ?? V1}\ngreen inactive -\nlive blue\n`;
    if (label.startsWith('slot state')) return { stdout: live };
    if (label === 'read deploy attempt') return { stdout: o.attempt ? JSON.stringify(o.attempt) : '' };
    if (label === 'read failed versions') return { stdout: (o.marks ?? []).map((m) => JSON.stringify(m)).join('\n') };
    if (label.startsWith('health check') || label.startsWith('check https')) return { stdout: '200' };
    return { code: 0 };
  };
  const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], env: { ...SYSTEM_ENV }, respond });
  const remote: Remote = { ctx, recording: undefined, close: async () => {} };
  return { remote, pool };
}

const run = (remote: Remote, values: Partial<DeployValues>, say: (l: string) => void = () => {}) => deployVerb('deploy', [], values as DeployValues, remote, say);
const changing = /^(point|write|start|stop|mark|pull|record|is |fingerprint)/;
const steps = (pool: { steps: RecordedStep[] }, host: string) => pool.steps.filter((s): s is Extract<RecordedStep, { kind: 'run' }> => s.kind === 'run' && s.host === host).map((s) => s.command.label ?? '');

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'xamal-deploy-resume-'));
  process.chdir(root);
});
afterEach(async () => {
  process.chdir(startDir);
  await rm(root, { recursive: true, force: true });
});

describe('a version a watched rollout marked failed', () => {
  it('is refused without --force, naming when and why, before anything is staged; the lock is released', async () => {
    const { remote, pool } = remoteFor({ marks: [mark] });
    await expect(run(remote, { version: V2 })).rejects.toMatchObject({ code: 'conflict', message: expect.stringMatching(/^v2 failed after its switch on 2026-12-05T08:00:00.000Z \(deploy by Bob\) and was rolled back: web2: 2 checks in a row failed.*\ndeploy it again anyway with --force$/) });
    const all = pool.steps.flatMap((s) => (s.kind === 'run' ? [s.command.label ?? ''] : []));
    expect(all.some((l) => /^(is |pull|start|record)/.test(l))).toBe(false);
    expect(all.at(-2)).toBe('release lock');
  });

  it('is deployed with --force, and other versions are not refused', async () => {
    const forced = remoteFor({ marks: [mark] });
    const r = await run(forced.remote, { version: V2, force: true });
    expect(r.outcomes.map((o) => [o.host, o.ok])).toEqual([['web1', true], ['web2', true]]);
    const other = remoteFor({ marks: [mark] });
    expect((await run(other.remote, { version: 'v3' })).outcomes.every((o) => o.ok)).toBe(true);
  });
});

describe('deploy records its attempt on the hosts', () => {
  it('before staging (version, who, hosts, roles) and again with how it ended', async () => {
    const { remote, pool } = remoteFor();
    await run(remote, { version: 'v3' });
    const writes = pool.steps.filter((s): s is Extract<RecordedStep, { kind: 'run' }> => s.kind === 'run' && s.command.label === 'record deploy attempt');
    expect(writes.map((s) => s.host)).toEqual(['web1', 'web2', 'web1', 'web2']);
    const [start, end] = [JSON.parse(revealArg(writes[0]!.command.stdin!)), JSON.parse(revealArg(writes[2]!.command.stdin!))];
    expect(start).toEqual({ version: 'v3', time: expect.any(String), performer: 'Ada', command: 'deploy', hosts: ['web1', 'web2'], roles: ['web'] });
    expect(end.outcome).toEqual({ ended: expect.any(String), ok: ['web1', 'web2'], failed: [] });
    const web1 = steps(pool, 'web1');
    expect(web1.indexOf('record deploy attempt')).toBeLessThan(web1.findIndex((l) => l.startsWith('is ')));
  });
});

describe('deploy --resume', () => {
  it("continues the recorded attempt's version on the hosts where it is not live, and leaves the others untouched", async () => {
    const { remote, pool } = remoteFor({ attempt, live1: V2, live2: V1 });
    const said: string[] = [];
    const r = await run(remote, { resume: true }, (l) => said.push(l));
    expect(r.version).toBe(V2);
    expect(r.resume).toMatchObject({ act: ['web2'], done: ['web1'] });
    expect(r.outcomes.map((o) => [o.host, o.ok])).toEqual([['web2', true]]);
    expect(said.slice(0, 2)).toEqual(['web2: resume (web live at v1)', 'web1: leave alone (runs v2)']);
    // web1 is only read: no boot, switch or pull there. Being the primary host, it holds the lock and
    // the attempt's record (updated with how the resume ended).
    const web1 = steps(pool, 'web1');
    expect(web1.filter((l) => changing.test(l))).toEqual(['record deploy attempt']);
    expect(steps(pool, 'web2')).toEqual(expect.arrayContaining(['start web-green', 'stop web-blue', 'mark web-green live', 'record deploy attempt']));
    const end = pool.steps.find((s) => s.kind === 'run' && s.host === 'web2' && s.command.label === 'record deploy attempt');
    expect(end?.kind === 'run' && JSON.parse(revealArg(end.command.stdin!))).toMatchObject({ ...attempt, outcome: { ok: ['web1', 'web2'], failed: [], resumed: { hosts: ['web2'] } } });
  });

  it('acts on no host when every host runs the version', async () => {
    const { remote, pool } = remoteFor({ attempt, live1: V2, live2: V2 });
    const r = await run(remote, { resume: true });
    expect(r).toMatchObject({ version: V2, outcomes: [], resume: { act: [], done: ['web1', 'web2'] } });
    expect(pool.steps.some((s) => s.kind === 'run' && /acquire lock|start /.test(s.command.label ?? ''))).toBe(false);
  });

  it('refuses without a recorded attempt, with a --version that is not the attempt\'s, and with rollback', async () => {
    await expect(run(remoteFor().remote, { resume: true })).rejects.toMatchObject({ code: 'not_found', message: expect.stringMatching(/^no deploy to resume: no host keeps a deploy attempt \(\/opt\/xamal\/shop\/last-deploy.json\)$/) });
    await expect(run(remoteFor({ attempt }).remote, { resume: true, version: 'v9' })).rejects.toMatchObject({ code: 'usage', message: expect.stringMatching(/^--resume continues the last deploy, of v2 .*--version v9 names another/) });
    await expect(deployVerb('rollback', [], { resume: true } as DeployValues, remoteFor({ attempt }).remote, () => {})).rejects.toMatchObject({ code: 'usage', message: expect.stringMatching(/^--resume: only with deploy and redeploy/) });
  });

  it('refuses to resume a version that was rolled back, unless --force', async () => {
    await expect(run(remoteFor({ attempt, marks: [mark], live1: V1, live2: V1 }).remote, { resume: true })).rejects.toMatchObject({ code: 'conflict' });
  });
});
