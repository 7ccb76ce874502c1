import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { findById } from '../../../deployer/commands/caddy.ts';
import { xamalCli } from '../../../testkit/cli.ts';
import { git, helloRepo } from '../../../testkit/example-repo.ts';
import { buildFromSourceArtifacts, buildLabArtifacts, caddyAdminGet, caddyRootCa, labDeployYml, labDeps, labFarmApi, labProject, upLab, type Lab, type LabHost } from '../../../testkit/hosts/index.ts';
import { loadReport, startLoad } from '../../../testkit/hosts/load.ts';
import { cliEntry, services } from '../../../testkit/integration.ts';

/**
 * Issue 21 item 3 on one Debian 12 test host with the real CLI: a deploy prunes to retain_releases,
 * `xamal details` shows the app and its Caddy route in one view, and `xamal remove` of one app under
 * load on a second app on the same host leaves the second serving (0 failed requests; kept-alive
 * clients retry a GET whose reused connection a Caddy reload reset before any answer) and nothing
 * of the first; removing again finds nothing.
 */

const TOKEN = 'f'.repeat(40);

/** The real CLI in the project directory (testkit/cli.ts). */
const xamal = (cwd: string, args: string[]) => xamalCli(cwd, args, {}, cliEntry());

describe('app lifecycle on a Debian 12 host with two apps: prune after deploy, details, remove', () => {
  let lab: Lab;
  let h: LabHost;
  let tmp: string;
  let api: FastifyInstance;
  let project: string;
  let ca: string;
  const v: string[] = [];

  /** GET /up through the host's Caddy (HTTPS, SNI = the app's name, the host's own CA). */
  const through = async (service: string) => {
    const run = startLoad({ target: { url: `https://${h.address}/up`, servername: `${service}.lab.test`, ca }, keepAliveClients: 0, closeClients: 1, maxRequests: 1, maxDurationMs: 5_000 });
    return (await run.stop()).records[0]!;
  };
  const root = async (script: string) => (await lab.ssh(h, { argv: ['sh', '-c', script] }, 'root')).stdout.trim();
  const caddyConfig = async () => JSON.parse((await caddyAdminGet(lab, h, '/config/')).stdout) as unknown;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-lifecycle-'));
    lab = await upLab(labDeps(), { suites: ['bookworm'] });
    h = lab.hosts[0]!;
    // The commits deploy.int.test.ts builds (fixed: a warm run finds their artifacts in the store):
    // v1 and v2 for every lab suite, v3 with OTP and Elixir compiled from source for Debian 12.
    const repo = join(tmp, 'repo');
    const src = await helloRepo(repo);
    v.push(src.commit);
    for (const name of ['v2', 'v3']) {
      await writeFile(join(repo, 'CHANGES'), `${name}\n`);
      git(repo, 'add', '-A');
      git(repo, 'commit', '-q', '-m', name);
      v.push(git(repo, 'rev-parse', 'HEAD'));
    }
    const store = await buildLabArtifacts(services(), tmp, src, v.slice(0, 2));
    await buildFromSourceArtifacts(services(), tmp, src, v[2]!);
    let farmUrl: string;
    ({ api, url: farmUrl } = await labFarmApi(lab, store, TOKEN));
    project = join(tmp, 'project');
    await labProject(project, {
      'config/deploy.yml': labDeployYml(lab, { service: 'hello', appPort: 4000, farmUrl, extra: { env: { clear: { MIX_ENV: 'prod' } }, retain_releases: 2 } }),
      'config/deploy.two.yml': stringify({ service: 'hellotwo', caddy: { hosts: ['hellotwo.lab.test'], ssl: 'internal', app_port: 4100 } }),
      '.xamal/secrets-common': `XAMAL_FARM_TOKEN=${TOKEN}\n`,
    });
  }, 1_500_000);

  afterAll(async () => {
    await api?.close();
    await lab?.down();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('with retain_releases 2, deploying v1, v2 and v3 keeps the running and the previous release; the third deploy says it pruned v1', { timeout: 600_000 }, async () => {
    const setup = await xamal(project, ['setup']);
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    ca = await caddyRootCa(lab, h);
    for (const version of v.slice(0, 2)) {
      const r = await xamal(project, ['deploy', '--version', version, '-q']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).not.toContain('pruned');
    }
    const third = await xamal(project, ['deploy', '--version', v[2]!, '--json']);
    expect(third.code, third.stdout + third.stderr).toBe(0);
    expect((JSON.parse(third.stdout) as { hosts: { pruned?: string[] }[] }).hosts[0]!.pruned).toEqual([v[0]]);
    expect((await root('ls -1 /opt/xamal/hello/releases')).split('\n').sort()).toEqual([v[1], v[2]].sort());
    expect(await through('hello')).toMatchObject({ status: 200, version: v[2] });
  });

  it('xamal details shows per host the live slot and version, and the Caddy route serving with its upstreams', { timeout: 120_000 }, async () => {
    const r = await xamal(project, ['details', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const [d] = JSON.parse(r.stdout) as { host: string; ok: boolean; roles: { role: string; version: string; running: string[]; live: string }[]; caddy: { state: string; upstreams: { address: string }[] } }[];
    expect(d).toMatchObject({ host: h.address, ok: true, roles: [{ role: 'web', version: v[2], running: [expect.any(String)] }], caddy: { state: 'serving' } });
    expect(d!.roles[0]!.running).toEqual([d!.roles[0]!.live]);
    expect(d!.caddy.upstreams.map((u) => u.address).every((a) => a === '127.0.0.1:4000' || a === '127.0.0.1:4001')).toBe(true);
    const text = await xamal(project, ['details']);
    expect(text.stdout).toContain(`web: live ${d!.roles[0]!.live} (${v[2]})`);
    expect(text.stdout).toContain('caddy route xamal-hello: serving');
  });

  it('xamal remove -y of one app under load on the other: the other fails 0 requests (its kept-alive clients retry, as browsers do, a GET whose connection a reload reset before any answer) and keeps its route; no unit, route, file or user of the removed app is left; again: nothing to remove', { timeout: 600_000 }, async () => {
    expect((await xamal(project, ['setup', '-d', 'two'])).code).toBe(0);
    const two = await xamal(project, ['deploy', '-d', 'two', '--version', v[0]!]);
    expect(two.code, two.stdout + two.stderr).toBe(0);
    expect(await through('hellotwo')).toMatchObject({ status: 200, version: v[0] });
    const otherRoute = findById(await caddyConfig(), 'xamal-hellotwo-two')?.value;
    expect(otherRoute).toBeDefined();

    // Without a terminal and without -y: refused, nothing removed.
    const refused = await xamal(project, ['remove']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('pass -y (--confirmed)');
    expect((await through('hello')).status).toBe(200);

    // Paced clients (a request each every 40 ms), bounded in count and time. Removing the route, the
    // TLS policy and the access log is one Caddy config change, i.e. one reload, and a reload closes
    // idle keep-alive connections (FACTS.md#caddy): the keep-alive clients retry a GET whose reused
    // connection was reset before any answer, as browsers and curl do; a reload also resets, now and
    // then, a new connection it is handing over, sent once more too (both counted in `retried`, printed).
    const load = startLoad({ target: { url: `https://${h.address}/up`, servername: 'hellotwo.lab.test', ca }, keepAliveClients: 2, closeClients: 2, maxRequests: 20_000, maxDurationMs: 180_000, intervalMs: 40, retryReusedReset: true, retryFreshReset: true });
    let removed;
    // Caddy's admin API logs each request it receives (journal of caddy-api): the changes are those not GET.
    const since = await root('date +%s');
    try {
      await sleep(1_000);
      load.mark('remove');
      removed = await xamal(project, ['remove', '-y']);
      load.mark('removed');
      await sleep(2_000);
    } finally {
      const { records, marks } = await load.stop();
      const report = loadReport(records);
      const at = marks[0]?.at ?? 0;
      const bad = records.filter((r) => r.error !== undefined || (r.status ?? 0) >= 300).map((r) => ({ mode: r.mode, client: r.client, reused: r.reused, error: r.error, errorMessage: r.errorMessage, status: r.status, startMs: Math.round(r.start - at), ms: Math.round(r.end - r.start) }));
      const removeMs = Math.round((marks[1]?.at ?? at) - at);
      const retried = records.filter((r) => r.retriedAfter !== undefined).map((r) => ({ client: r.client, startMs: Math.round(r.start - at) }));
      process.stderr.write(`[remove] other app under load: ${JSON.stringify({ total: report.total, failed: report.failed, retried: report.retried, errors: report.errors, non2xx: report.non2xx, byMode: report.byMode, removeMs, bad, retriedAt: retried })}\n`);
      expect(report.total).toBeGreaterThan(50);
      // 0 failed requests: no error answer, no connection error; a retry only for a reset kept-alive
      // connection during the removal, at most one per client and reload.
      expect(bad).toEqual([]);
      expect(report.failed).toBe(0);
      const RELOADS = 1;
      expect(retried.every((r) => r.startMs >= 0 && r.startMs <= removeMs)).toBe(true);
      for (const c of [0, 1, 2, 3]) expect(retried.filter((r) => r.client === c).length).toBeLessThanOrEqual(RELOADS);
    }
    process.stderr.write(`[remove] ${removed.stdout}\n`);
    expect(removed.code, removed.stdout + removed.stderr).toBe(0);
    const changes = await root(`journalctl -u caddy-api -o cat --no-pager --since @${since} | grep '"msg":"received request"' | grep -v '"method":"GET"' || true`);
    expect(changes.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { method: string; uri: string }))).toEqual([{ method: 'POST', uri: '/config/' }].map((c) => expect.objectContaining(c)));
    expect(removed.stdout).toContain('caddy route xamal-hello removed');
    expect(removed.stdout).toContain('caddy TLS policy xamal-hello-tls removed');
    expect(removed.stdout).toContain('removed /etc/systemd/system/xamal-hello-web@.service');
    expect(removed.stdout).toContain('removed /opt/xamal/hello');
    expect(removed.stdout).toContain('removed user xamal-hello');

    // Nothing of hello on the host: units (loaded or on disk), files, user, group, Caddy ids.
    const left = await root(
      "systemctl list-units --all --plain --no-legend 'xamal-hello-web@*'; ls /etc/systemd/system | grep '^xamal-hello-web'; ls -d /opt/xamal/hello 2>/dev/null; getent passwd xamal-hello; getent group xamal-hello; ps -u xamal-hello -o pid= 2>/dev/null; true",
    );
    expect(left).toBe('');
    const config = await caddyConfig();
    expect(findById(config, 'xamal-hello')).toBeUndefined();
    expect(findById(config, 'xamal-hello-tls')).toBeUndefined();
    expect(findById(config, 'xamal-hellotwo-two')?.value).toEqual(otherRoute);
    // The other app, its files and Caddy itself stay.
    expect(await through('hellotwo')).toMatchObject({ status: 200, version: v[0] });
    expect(await root('ls -d /opt/xamal/hellotwo-two; systemctl is-active caddy-api.service')).toBe('/opt/xamal/hellotwo-two\nactive');

    const again = await xamal(project, ['remove', '-y']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain('nothing to remove');
    expect(again.stderr).toContain('nothing of hello to remove');
  });
});
