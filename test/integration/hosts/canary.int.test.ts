import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findById } from '../../../deployer/commands/caddy.ts';
import { xamalCli } from '../../../testkit/cli.ts';
import { git, helloRepo } from '../../../testkit/example-repo.ts';
import { buildLabArtifacts, caddyAdminGet, caddyRootCa, labDeployYml, labDeps, labFarmApi, labProject, upLab, type Lab, type LabHost } from '../../../testkit/hosts/index.ts';
import { loadReport, startLoad, type LoadRun } from '../../../testkit/hosts/load.ts';
import { sessionRequests } from '../../../testkit/hosts/sessions.ts';
import { cliEntry, services } from '../../../testkit/integration.ts';

/**
 * Issue 22 item 2 on one Debian 12 test host (Caddy 2.6.2) with the real CLI: `deploy --canary 10`
 * under HTTP load, 1,000 new sessions split about 10 % to the canary and each kept on its version by
 * its cookie; `canary promote` under load with 0 failed requests; a second canary, then `canary
 * abort` under load with 0 failed requests and the live version serving alone. Every route change is
 * a Caddy reload that closes idle kept-alive connections (FACTS.md#caddy): the keep-alive clients
 * retry a GET whose reused connection was reset before any answer, as browsers do — counted, and at
 * most one per client and reload.
 */

const TOKEN = 'c'.repeat(40);
const xamal = (cwd: string, args: string[]) => xamalCli(cwd, args, {}, cliEntry());

describe('canary releases on a Debian 12 host: a sticky share of new sessions, promote and abort under load', () => {
  let lab: Lab;
  let h: LabHost;
  let tmp: string;
  let api: FastifyInstance;
  let project: string;
  let ca: string;
  const v: string[] = [];

  const target = () => ({ url: `https://${h.address}/up`, servername: 'hello.lab.test', ca });
  const root = async (script: string) => (await lab.ssh(h, { argv: ['sh', '-c', script] }, 'root')).stdout.trim();
  const route = async () => findById(JSON.parse((await caddyAdminGet(lab, h, '/config/')).stdout) as unknown, 'xamal-hello')?.value;

  /**
   * Paced clients without cookies (a request each every 40 ms), bounded in count and time. A canary's
   * route changes are Caddy reloads, which reset a few connections unanswered — kept-alive ones, and
   * now and then a new one being handed over (FACTS.md#caddy): each is sent once more, counted.
   */
  const load = () => startLoad({ target: target(), keepAliveClients: 2, closeClients: 2, maxRequests: 20_000, maxDurationMs: 240_000, intervalMs: 40, retryReusedReset: true, retryFreshReset: true });

  /** Stops the load and checks it: no failed request; retries only of reset reused connections, at most `reloads` per client. */
  const expectNoFailures = async (run: LoadRun, label: string, reloads: number) => {
    const { records } = await run.stop();
    const report = loadReport(records);
    const bad = records.filter((r) => r.error !== undefined || (r.status ?? 0) >= 300).map((r) => ({ mode: r.mode, client: r.client, reused: r.reused, error: r.error, status: r.status, ms: Math.round(r.end - r.start) }));
    const retried = records.filter((r) => r.retriedAfter !== undefined);
    process.stderr.write(`[canary] ${label}: ${JSON.stringify({ total: report.total, failed: report.failed, retried: report.retried, versions: report.versions, errors: report.errors, non2xx: report.non2xx, bad })}\n`);
    expect(report.total).toBeGreaterThan(50);
    expect(bad).toEqual([]);
    expect(report.failed).toBe(0);
    for (const c of [0, 1, 2, 3]) expect(retried.filter((r) => r.client === c).length).toBeLessThanOrEqual(reloads);
    return report;
  };

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-canary-'));
    lab = await upLab(labDeps(), { suites: ['bookworm'] });
    h = lab.hosts[0]!;
    // The commits deploy.int.test.ts builds (fixed: a warm run finds their artifacts in the store).
    const repo = join(tmp, 'repo');
    const src = await helloRepo(repo);
    v.push(src.commit);
    await writeFile(join(repo, 'CHANGES'), 'v2\n');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'v2');
    v.push(git(repo, 'rev-parse', 'HEAD'));
    const store = await buildLabArtifacts(services(), tmp, src, v);
    let farmUrl: string;
    ({ api, url: farmUrl } = await labFarmApi(lab, store, TOKEN));
    project = join(tmp, 'project');
    await labProject(project, {
      'config/deploy.yml': labDeployYml(lab, { service: 'hello', appPort: 4000, farmUrl, extra: { env: { clear: { MIX_ENV: 'prod' } } } }),
      '.xamal/secrets-common': `XAMAL_FARM_TOKEN=${TOKEN}\n`,
    });
    const setup = await xamal(project, ['setup']);
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    ca = await caddyRootCa(lab, h);
    const first = await xamal(project, ['deploy', '--version', v[0]!, '-q']);
    expect(first.code, first.stdout + first.stderr).toBe(0);
  }, 1_500_000);

  afterAll(async () => {
    await api?.close();
    await lab?.down();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('deploy --canary 10 under load fails 0 requests; of 1,000 new sessions 10 % ± 3 % get the canary, each with a cookie naming its version, and a client presenting its cookie always gets that version', { timeout: 600_000 }, async () => {
    const run = load();
    await sleep(1_000);
    const started = await xamal(project, ['deploy', '--canary', '10', '--version', v[1]!]);
    await sleep(1_000);
    // Two route changes: traffic pinned to the live slot while the canary boots, then the split.
    await expectNoFailures(run, 'deploy --canary 10', 2);
    expect(started.code, started.stdout + started.stderr).toBe(0);
    expect(started.stdout).toContain(`canary ${v[1]} in green beside ${v[0]} (blue): 10% of new sessions`);

    const fresh = await sessionRequests({ target: target(), cookieName: 'xamal_hello', count: 1_000, concurrency: 16, maxDurationMs: 180_000 });
    expect(fresh.filter((a) => a.status !== 200 || a.error)).toEqual([]);
    expect(fresh.every((a) => a.cookie === a.version)).toBe(true);
    const share = fresh.filter((a) => a.version === v[1]).length / fresh.length;
    process.stderr.write(`[canary] 1,000 new sessions: ${(share * 100).toFixed(1)} % on the canary\n`);
    expect(fresh.length).toBe(1_000);
    expect(share).toBeGreaterThanOrEqual(0.07);
    expect(share).toBeLessThanOrEqual(0.13);

    // Every session comes back twice with its cookie: the same version, and no new cookie.
    const again = await sessionRequests({ target: target(), cookieName: 'xamal_hello', count: 2_000, concurrency: 16, maxDurationMs: 180_000, cookieFor: (i) => fresh[i % 1_000]!.cookie });
    expect(again.length).toBe(2_000);
    expect(again.filter((a, i) => a.status !== 200 || a.version !== fresh[i % 1_000]!.version || a.cookie !== undefined)).toEqual([]);

    const status = await xamal(project, ['canary', 'status', '--json']);
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toEqual([expect.objectContaining({ host: h.address, ok: true, canary: expect.objectContaining({ version: v[1], slot: 'green', percent: 10, live: { version: v[0], slot: 'blue' } }), route: 'canary', running: ['blue', 'green'] })]);
    const details = await xamal(project, ['app', 'details']);
    expect(details.stdout).toContain(`web: live blue (${v[0]}), running: blue, green; canary ${v[1]} in green (10% of new sessions)`);
    const refused = await xamal(project, ['deploy', '--version', v[1]!]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('a canary is running; xamal canary promote or xamal canary abort first');
  });

  it('canary promote under load fails 0 requests: the canary serves everyone, the old slot is stopped, the ordinary route is back and the state file gone', { timeout: 600_000 }, async () => {
    const run = load();
    await sleep(1_000);
    const promoted = await xamal(project, ['canary', 'promote']);
    await sleep(1_000);
    // Two config changes (the hand-over route, then the ordinary one): a kept-alive connection can be reset by each.
    await expectNoFailures(run, 'canary promote', 2);
    expect(promoted.code, promoted.stdout + promoted.stderr).toBe(0);
    expect(promoted.stdout).toContain(`promoted ${v[1]} (green live; blue with ${v[0]} stopped)`);
    const after = await sessionRequests({ target: target(), cookieName: 'xamal_hello', count: 50, concurrency: 5, maxDurationMs: 60_000, cookieFor: (i) => (i % 2 ? v[0] : undefined) });
    expect(after.filter((a) => a.status !== 200 || a.version !== v[1] || a.cookie !== undefined)).toEqual([]);
    expect((await route())?.handle).toEqual([expect.objectContaining({ '@id': 'xamal-hello-proxy', upstreams: [{ dial: '127.0.0.1:4000' }, { dial: '127.0.0.1:4001' }] })]);
    expect(await root('systemctl is-active xamal-hello-web@blue.service xamal-hello-web@green.service; cat /opt/xamal/hello/slots/web.live; readlink /opt/xamal/hello/current; ls /opt/xamal/hello/canary.json 2>&1 | grep -c "No such"')).toBe(`inactive\nactive\ngreen\n/opt/xamal/hello/releases/${v[1]}\n1`);
  });

  it('a second canary, then canary abort under load fails 0 requests: the live version serves alone and the canary slot is stopped', { timeout: 600_000 }, async () => {
    const second = await xamal(project, ['deploy', '--canary', '30', '--version', v[0]!]);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    const split = await sessionRequests({ target: target(), cookieName: 'xamal_hello', count: 100, concurrency: 10, maxDurationMs: 60_000 });
    expect(new Set(split.map((a) => a.version))).toEqual(new Set([v[0], v[1]]));
    const run = load();
    await sleep(1_000);
    const aborted = await xamal(project, ['canary', 'abort']);
    await sleep(1_000);
    await expectNoFailures(run, 'canary abort', 2);
    expect(aborted.code, aborted.stdout + aborted.stderr).toBe(0);
    expect(aborted.stdout).toContain(`aborted ${v[0]} (blue stopped; ${v[1]} in green serves everything)`);
    const after = await sessionRequests({ target: target(), cookieName: 'xamal_hello', count: 50, concurrency: 5, maxDurationMs: 60_000, cookieFor: (i) => (i % 2 ? v[0] : undefined) });
    expect(after.filter((a) => a.status !== 200 || a.version !== v[1] || a.cookie !== undefined)).toEqual([]);
    expect(await root('systemctl is-active xamal-hello-web@blue.service xamal-hello-web@green.service; readlink /opt/xamal/hello/current')).toBe(`inactive\nactive\n/opt/xamal/hello/releases/${v[1]}`);
    const none = await xamal(project, ['canary', 'abort']);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('no canary is running');
  });
});
