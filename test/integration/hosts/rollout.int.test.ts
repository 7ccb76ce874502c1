import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLabArtifacts, caddyRootCa, labDeployYml, labDeps, labFarmApi, labProject, upLab, type Lab, type LabHost } from '../../../testkit/hosts/index.ts';
import { loadReport, startLoad, type RequestRecord } from '../../../testkit/hosts/load.ts';
import { xamalCli } from '../../../testkit/cli.ts';
import { commitFiles, helloRepo } from '../../../testkit/example-repo.ts';
import { cliEntry, services } from '../../../testkit/integration.ts';

const TOKEN = 'e'.repeat(40);
const UNIT = 'xamal-hello-web';

const xamal = (cwd: string, args: string[]) => xamalCli(cwd, args, {}, cliEntry());

/**
 * Issue 22, items 3 and 4 on three Debian hosts: a version whose health starts failing after its
 * switch is rolled back by itself within the watch window (and a second deploy of it is refused
 * without --force); a deploy cut off on one host is finished by `deploy --resume` on that host only.
 */
describe('xamal deploy: a watched rollout rolls a failing version back by itself; --resume finishes a deploy cut off on one host', () => {
  let lab: Lab;
  let tmp: string;
  let api: FastifyInstance;
  let project: string;
  let v1: string;
  let v2: string;
  let bad: string;
  let boom: string;
  const cas = new Map<string, string>();

  const deployYml = (extra: Record<string, unknown> = {}) =>
    labDeployYml(lab, { service: 'hello', appPort: 4000, farmUrl: `http://${lab.gateway}:${(api.server.address() as { port: number }).port}`, extra: { env: { clear: { MIX_ENV: 'prod' } }, ...extra } });

  // Clients wait 30 s for an answer (browsers wait minutes): Caddy may hold a request while no slot is healthy.
  const loadOn = (h: LabHost, path = '/up') =>
    startLoad({ target: { url: `https://${h.address}${path}`, servername: 'hello.lab.test', ca: cas.get(h.name)! }, keepAliveClients: 1, closeClients: 1, maxRequests: 100_000, maxDurationMs: 240_000, intervalMs: 40, requestTimeoutMs: 30_000 });

  const through = async (h: LabHost) => {
    const run = startLoad({ target: { url: `https://${h.address}/up`, servername: 'hello.lab.test', ca: cas.get(h.name)! }, keepAliveClients: 0, closeClients: 1, maxRequests: 1, maxDurationMs: 5_000 });
    return (await run.stop()).records[0]!;
  };

  /** Each slot's unit invocation (changes when the unit starts again) and release: what "untouched" is compared on. */
  const slots = async (h: LabHost) =>
    (await lab.ssh(h, { argv: ['sh', '-c', `for s in blue green; do echo "$s $(systemctl is-active ${UNIT}@$s.service) $(systemctl show -p InvocationID --value ${UNIT}@$s.service) $(readlink /opt/xamal/hello/slots/web-$s/release)"; done`] }, 'root')).stdout.trim();
  const auditLines = async (h: LabHost) => (await lab.ssh(h, { argv: ['sh', '-c', 'wc -l < /opt/xamal/hello/audit.log'] }, 'root')).stdout.trim();

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-rollout-'));
    lab = await upLab(labDeps(), { suites: ['bullseye', 'bookworm', 'trixie'] });
    const repo = join(tmp, 'repo');
    const src = await helloRepo(repo);
    v1 = src.commit;
    v2 = await commitFiles(repo, 'v2', { CHANGES: 'v2\n' });
    // A release whose /up answers 503 once its VM has run 20 s (examples/hello's HEALTH_FAIL_AFTER_MS,
    // set by the release's own env.sh): it passes its health check at boot and the check through Caddy
    // at its switch (on this shared 2-core machine, boot to switch took more than 8 s under load), then fails.
    bad = await commitFiles(repo, 'fails after its switch', { 'rel/env.sh.eex': 'export HEALTH_FAIL_AFTER_MS=20000\n' });
    // A release whose health is fine but whose /boom answers 500 (examples/hello's ERROR_PATH).
    boom = await commitFiles(repo, 'errors on /boom', { 'rel/env.sh.eex': 'export ERROR_PATH=/boom\n' });
    const store = await buildLabArtifacts(services(), tmp, src, [v1, v2, bad, boom]);
    ({ api } = await labFarmApi(lab, store, TOKEN));
    project = join(tmp, 'project');
    await labProject(project, {
      'config/deploy.yml': deployYml(),
      // The default failures (2): Caddy holds requests while no slot is healthy (try_duration from the watch) until the rollback.
      'config/watched.yml': deployYml({ rollout: { watch: '40s', interval: '0.25s' } }),
      'config/5xx.yml': deployYml({ rollout: { watch: '40s', interval: '0.25s', max_5xx_percent: 10, min_requests: 20 } }),
      '.xamal/secrets-common': `XAMAL_FARM_TOKEN=${TOKEN}\n`,
    });
    // Setup with the watched config: Caddy's try_duration for it, and the app's access log (max_5xx_percent).
    const setup = await xamal(project, ['setup', '-c', 'config/5xx.yml']);
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    const first = await xamal(project, ['deploy', '--version', v1]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    for (const h of lab.hosts) cas.set(h.name, await caddyRootCa(lab, h));
  }, 1_500_000);

  afterAll(async () => {
    await api?.close();
    await lab?.down();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('a version whose health fails ~10 s after its switch is rolled back by itself within the 40 s window under load with the default failures (2), losing only requests it answered itself (Caddy holds the others until the old version is back); a second deploy of it is refused without --force', { timeout: 600_000 }, async () => {
    const loads = lab.hosts.map((h) => loadOn(h));
    let records: RequestRecord[][] = [];
    const t0 = Date.now();
    const r = await xamal(project, ['deploy', '-c', 'config/watched.yml', '--version', bad, '--json']);
    const tookS = (Date.now() - t0) / 1000;
    try {
      expect(r.code, r.stdout + r.stderr).toBe(13);
      const out = JSON.parse(r.stdout) as {
        hosts: { host: string; result: string }[];
        rollout: { watch: { result: string; elapsedS: number; host: string; reason: string; answers: { status: number }[] }; rollback: { to: Record<string, string>; hosts: { host: string; result: string; version: string }[] }; failed: { version: string } };
      };
      process.stderr.write(`[rollout] deploy of the failing version: ${tookS.toFixed(1)} s; watch ${JSON.stringify(out.rollout.watch)}\n`);
      expect(out.hosts.map((x) => x.result)).toEqual(['ok', 'ok', 'ok']);
      expect(out.rollout.watch).toMatchObject({ result: 'failed', reason: expect.stringMatching(/2 checks in a row failed \(GET https:\/\/hello\.lab\.test\/up through Caddy\)/) });
      expect(out.rollout.watch.elapsedS).toBeLessThan(40);
      expect(out.rollout.rollback.hosts.map((x) => [x.host, x.result, x.version])).toEqual(lab.hosts.map((h) => [h.address, 'ok', v1]));
      expect(out.rollout.failed.version).toBe(bad);
      expect(r.stderr).toMatch(/rollout of \w+ failed: .*; rolling back/);
      for (const h of lab.hosts) expect(await through(h)).toMatchObject({ status: 200, version: v1 });
    } finally {
      records = await Promise.all(loads.map(async (l) => (await l.stop()).records));
    }
    // Lost requests: only those the failing version answered itself (its 503s, counted); no other failure.
    const perHost = records.map((recs) => {
      const byBad = recs.filter((x) => x.version === bad && x.status === 503).length;
      const others = recs.filter((x) => !(x.version === bad && x.status === 503) && !(x.error === undefined && x.status !== undefined && x.status < 300));
      return { total: recs.length, failedByBadVersion: byBad, otherFailures: others.length, other: loadReport(others), servedBy: loadReport(recs).versions };
    });
    process.stderr.write(`[rollout] load through Caddy per host during the failed rollout: ${JSON.stringify(perHost.map((p) => ({ total: p.total, failedByBadVersion: p.failedByBadVersion, otherFailures: p.otherFailures, other: { non2xx: p.other.non2xx, errors: p.other.errors }, servedBy: p.servedBy })))}\n`);
    // Besides those, nothing is lost: while no slot is healthy (the failing one out, the old one booting)
    // Caddy holds requests (try_duration from the watch) and the old version answers them. Any reset,
    // timeout, Caddy 503 or 502 fails this.
    const held = records.map((recs) => recs.filter((x) => !(x.version === bad && x.status === 503) && !(x.error === undefined && x.status !== undefined && x.status < 300)));
    const slowest = records.map((recs) => Math.round(Math.max(...recs.map((x) => x.end - x.start))));
    process.stderr.write(`[rollout] other failures (status, ms): ${JSON.stringify(held.map((h) => h.map((x) => [x.status ?? x.error, Math.round(x.end - x.start)])))}; slowest answer per host (ms): ${JSON.stringify(slowest)}\n`);
    for (const h of held) expect(h.map((x) => [x.status ?? x.error, Math.round(x.end - x.start)])).toEqual([]);

    // Marked failed on every host: refused without --force, naming when and why.
    const again = await xamal(project, ['deploy', '--version', bad]);
    expect(again.code, again.stdout + again.stderr).toBe(5);
    expect(again.stderr).toMatch(new RegExp(`${bad} failed after its switch on \\d{4}-\\d\\d-\\d\\dT.* and was rolled back: .*check.* failed.*\\n.*--force`));
    const details = await xamal(project, ['app', 'details', '--json']);
    expect(details.code, details.stdout + details.stderr).toBe(0);
    const d = JSON.parse(details.stdout) as { host: string; failed: { version: string }[]; lastDeploy: { version: string; outcome: { rolledBack?: string } } }[];
    for (const x of d) expect(x).toMatchObject({ failed: [{ version: bad }], lastDeploy: { version: bad, outcome: { rolledBack: expect.stringMatching(/checks in a row failed/) } } });
  });

  it('a version whose /up is healthy but which answers 500 on /boom under load is rolled back by itself once more than max_5xx_percent (10 %) of its answers through Caddy are 5xx; the counts are in the deploy record and in app details', { timeout: 600_000 }, async () => {
    // Per host: one pair of clients on /up, one on /boom (404 from v1, 500 from the new version).
    const loads = lab.hosts.flatMap((h) => [loadOn(h), loadOn(h, '/boom')]);
    const r = await xamal(project, ['deploy', '-c', 'config/5xx.yml', '--version', boom, '--json']);
    const records = await Promise.all(loads.map(async (l) => (await l.stop()).records));
    expect(r.code, r.stdout + r.stderr).toBe(13);
    type Counts = { answers: number; errors5xx: number };
    const out = JSON.parse(r.stdout) as { rollout: { watch: { result: string; reason: string; host: string; fiveXx: Counts & { host: string; percent: number; max: number }; counts: Record<string, Counts> }; rollback: { hosts: { host: string; result: string; version: string }[] }; failed: { version: string; fiveXx: Counts } } };
    const w = out.rollout.watch;
    process.stderr.write(`[rollout] 5xx watch: ${JSON.stringify({ reason: w.reason, fiveXx: w.fiveXx, counts: w.counts })}\n`);
    expect(w).toMatchObject({ result: 'failed', reason: expect.stringMatching(/: \d+ of \d+ answers through Caddy were 5xx \([\d.]+ % > max_5xx_percent 10 %\)/) });
    expect(w.fiveXx.answers).toBeGreaterThanOrEqual(20);
    expect(w.fiveXx.errors5xx * 100).toBeGreaterThan(10 * w.fiveXx.answers);
    expect(Object.keys(w.counts).sort()).toEqual(lab.hosts.map((h) => h.address).sort());
    // Every host's log counted (Debian 11's Caddy comes without the package's /var/log/caddy: setup makes it).
    for (const c of Object.values(w.counts)) expect(c.answers).toBeGreaterThan(0);
    expect(r.stderr).not.toMatch(/counted none of the checks/);
    expect(out.rollout.rollback.hosts.map((x) => [x.host, x.result, x.version])).toEqual(lab.hosts.map((h) => [h.address, 'ok', v1]));
    expect(out.rollout.failed).toMatchObject({ version: boom, fiveXx: { host: w.fiveXx.host, answers: w.fiveXx.answers, errors5xx: w.fiveXx.errors5xx } });
    // The 500s the clients got all came from the new version; nothing else failed but /boom's answers.
    const all = records.flat();
    const boomErrors = all.filter((x) => x.status === 500);
    expect(boomErrors.length).toBeGreaterThan(0);
    expect(all.filter((x) => x.error !== undefined || (x.status !== undefined && x.status >= 500 && x.status !== 500))).toEqual([]);
    for (const h of lab.hosts) expect(await through(h)).toMatchObject({ status: 200, version: v1 });
    const details = await xamal(project, ['app', 'details', '--json']);
    expect(details.code, details.stdout + details.stderr).toBe(0);
    const d = JSON.parse(details.stdout) as { failed: { version: string; fiveXx?: Counts }[]; lastDeploy: { version: string; outcome: { rolledBack?: string; watch?: { counts?: Record<string, Counts> } } } }[];
    for (const x of d) {
      expect(x.failed.find((f) => f.version === boom)).toMatchObject({ fiveXx: { answers: w.fiveXx.answers, errors5xx: w.fiveXx.errors5xx } });
      expect(x.lastDeploy).toMatchObject({ version: boom, outcome: { rolledBack: expect.stringMatching(/answers through Caddy were 5xx/), watch: { counts: w.counts } } });
    }
    const text = await xamal(project, ['app', 'details']);
    expect(text.stdout).toMatch(/last deploy: \w+ .*rolled back: .*5xx.*; through Caddy: /);
  });

  it('a deploy cut off on one of three hosts, then --resume: only that host acts (the others are not touched), and all three end on the new version', { timeout: 600_000 }, async () => {
    const cut = lab.hosts[2]!; // not the primary: the lock lives there
    const drop = `for s in blue green; do systemctl is-active -q "$1@$s.service" || idle=$s; done
i=0; while ! systemctl is-active -q "$1@$idle.service"; do i=$((i+1)); [ $i -lt 2400 ] || exit 4; sleep 0.05; done
pkill -KILL -u deploy '^sshd' && echo "dropped while $idle booted"`;
    const watcher = lab.ssh(cut, { argv: ['sh', '-c', drop, 'sh', UNIT], timeoutMs: 180_000 }, 'root');
    const first = await xamal(project, ['deploy', '--version', v2, '--json']);
    expect((await watcher).stdout).toMatch(/dropped while (blue|green) booted/);
    expect(first.code, first.stdout + first.stderr).not.toBe(0);
    const recs = (JSON.parse(first.stdout) as { hosts: { host: string; result: string }[] }).hosts;
    expect(recs.map((x) => [x.host, x.result])).toEqual(lab.hosts.map((h) => [h.address, h === cut ? 'failed' : 'ok']));

    const before = await Promise.all(lab.hosts.map(slots));
    // The primary host holds the lock (its audit log gains the lock's lines); the other untouched host gains none.
    const auditBefore = await auditLines(lab.hosts[1]!);
    const resumed = await xamal(project, ['deploy', '--resume', '--json']);
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    const out = JSON.parse(resumed.stdout) as { version: string; hosts: { host: string; result: string }[]; resume: { acted: string[]; untouched: string[] } };
    expect(out.version).toBe(v2);
    expect(out.resume).toMatchObject({ acted: [cut.address], untouched: lab.hosts.filter((h) => h !== cut).map((h) => h.address) });
    expect(out.hosts.map((x) => [x.host, x.result])).toEqual([[cut.address, 'ok']]);
    expect(resumed.stderr).toContain(`${cut.address}: resume (web live at ${v1})`);
    for (const h of lab.hosts) if (h !== cut) expect(resumed.stderr).toContain(`${h.address}: leave alone (runs ${v2})`);
    const after = await Promise.all(lab.hosts.map(slots));
    // Untouched: the same unit invocations, releases and audit lines on the two hosts that had finished.
    for (const [i, h] of lab.hosts.entries()) if (h !== cut) expect(after[i], h.name).toBe(before[i]);
    expect(after[2]).not.toBe(before[2]);
    expect(await auditLines(lab.hosts[1]!)).toBe(auditBefore);
    for (const h of lab.hosts) expect(await through(h)).toMatchObject({ status: 200, version: v2 });
    // Nothing left to resume: a second --resume acts on no host.
    const noop = await xamal(project, ['deploy', '--resume', '--json']);
    expect(noop.code, noop.stdout + noop.stderr).toBe(0);
    expect(JSON.parse(noop.stdout)).toMatchObject({ hosts: [], resume: { acted: [] } });
  });
});
