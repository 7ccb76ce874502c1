import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildFromSourceArtifacts, buildLabArtifacts, caddyRootCa, labDeployYml, labDeps, labFarmApi, labProject, upLab, type Lab, type LabHost } from '../../../testkit/hosts/index.ts';
import { loadReport, parseWrk, startLoad, wrkCommand } from '../../../testkit/hosts/load.ts';
import { xamalCli } from '../../../testkit/cli.ts';
import { git, helloRepo } from '../../../testkit/example-repo.ts';
import { cliEntry, services } from '../../../testkit/integration.ts';

const TOKEN = 'd'.repeat(40);
const APP_SECRET = 'skb-4f1c9a-never-printed-anywhere';

/** The real CLI in the project directory (testkit/cli.ts). */
const xamal = (cwd: string, args: string[]) => xamalCli(cwd, args, {}, cliEntry());

describe('xamal deploy: prebuilt artifacts from the farm to Debian 11/12/13 hosts, switched by Caddy with no dropped request', () => {
  let lab: Lab;
  let tmp: string;
  let api: FastifyInstance;
  let project: string;
  let v1: string;
  let v2: string;
  let v3: string;
  let repoUrl: string;
  const cas = new Map<string, string>();

  const deployYml = (service: string, appPort: number, extra: Record<string, unknown> = {}) =>
    labDeployYml(lab, { service, appPort, farmUrl: `http://${lab.gateway}:${(api.server.address() as { port: number }).port}`, extra: { env: { clear: { MIX_ENV: 'prod' }, secret: ['SECRET_KEY_BASE'] }, ...extra } });

  /** GET /up on a host through its Caddy (HTTPS, SNI = the app's name, the host's own CA). */
  const through = async (h: LabHost, service: string) => {
    const run = startLoad({ target: { url: `https://${h.address}/up`, servername: `${service}.lab.test`, ca: cas.get(h.name)! }, keepAliveClients: 0, closeClients: 1, maxRequests: 1, maxDurationMs: 5_000 });
    return (await run.stop()).records[0]!;
  };

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-deploy-'));
    lab = await upLab(labDeps(), { suites: ['bullseye', 'bookworm', 'trixie'] });
    const repo = join(tmp, 'repo');
    const src = await helloRepo(repo);
    v1 = src.commit;
    await writeFile(join(repo, 'CHANGES'), 'v2\n');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'v2');
    v2 = git(repo, 'rev-parse', 'HEAD');
    // Kept across runs: fixed commits make a warm run find its artifacts built (testkit/example-repo.ts).
    // v2 for every host too: the dropped-connection test deploys it to all three.
    const store = await buildLabArtifacts(services(), tmp, src, [v1, v2]);
    // v3 only with OTP and Elixir compiled from source (issue 19): the one artifact a host can get.
    await writeFile(join(repo, 'CHANGES'), 'v3\n');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'v3');
    v3 = git(repo, 'rev-parse', 'HEAD');
    repoUrl = src.url;

    // The farm API on the lab bridge, as servers reach a real farm; links the API signs itself.
    ({ api } = await labFarmApi(lab, store, TOKEN));

    project = join(tmp, 'project');
    await labProject(project, {
      'config/deploy.yml': deployYml('hello', 4000),
      'config/deploy.two.yml': stringify({ service: 'hellotwo', caddy: { hosts: ['hellotwo.lab.test'], ssl: 'internal', app_port: 4100 } }),
      // The same app with a version that never passes its health check, and with a failing release_command.
      'config/broken.yml': deployYml('hello', 4000, { health_check: { path: '/never', interval: 0.2, timeout: 3 } }),
      'config/migrate.yml': deployYml('hello', 4000, { release_command: 'echo migrating; exit 3' }),
      // secrets-common: read for every destination (secrets.<dest> would replace .xamal/secrets).
      '.xamal/secrets-common': `XAMAL_FARM_TOKEN=${TOKEN}\nSECRET_KEY_BASE=${APP_SECRET}\n`,
    });
  }, 1_500_000);

  afterAll(async () => {
    await api?.close();
    await lab?.down();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('setup, then deploy: each host gets the artifact built for its own Debian release and serves it through Caddy over HTTPS', { timeout: 300_000 }, async () => {
    const setup = await xamal(project, ['setup']);
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    const r = await xamal(project, ['deploy', '--version', v1, '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const records = (JSON.parse(r.stdout) as { hosts: { host: string; tuple: string; result: string }[] }).hosts;
    expect(records.map((x) => [x.host, x.result, /-debian(\d+)-/.exec(x.tuple)![1]])).toEqual(lab.hosts.map((h) => [h.address, 'ok', h.release]));
    expect(r.stdout + r.stderr + setup.stdout + setup.stderr).not.toContain(TOKEN);
    expect(r.stdout + r.stderr + setup.stdout + setup.stderr).not.toContain(APP_SECRET);
    // On the host: only in the slot's env file (0440, the app's group); never in audit, journal or any process's argv.
    const pattern = `${APP_SECRET.slice(0, -1)}[${APP_SECRET.slice(-1)}]`; // matches the secret, not this command line
    for (const h of lab.hosts) {
      const files = await lab.ssh(h, { argv: ['sh', '-c', `sudo -n grep -rl '${pattern}' /opt/xamal /var/log /tmp 2>/dev/null | sort; true`] });
      expect(files.stdout.trim().split('\n')).toEqual(['/opt/xamal/hello/slots/web-blue/env', '/opt/xamal/hello/slots/web-green/env']);
      const elsewhere = await lab.ssh(h, { argv: ['sh', '-c', `sudo -n journalctl --no-pager | grep -c '${pattern}'; ps -eo args | grep -c '${pattern}'; stat -c %a /opt/xamal/hello/slots/web-blue/env`] });
      expect(elsewhere.stdout.trim().split('\n')).toEqual(['0', '0', '440']);
    }
    for (const h of lab.hosts) {
      cas.set(h.name, await caddyRootCa(lab, h));
      const got = await through(h, 'hello');
      expect(got.status, JSON.stringify(got)).toBe(200);
      expect(got.version).toBe(v1);
    }
  });

  it('under load (keep-alive and fresh-connection clients, plus wrk), 20 deploys and rollbacks on one host fail 0 requests; a second app on the host fails 0 too', { timeout: 900_000 }, async () => {
    const h = lab.hosts[1]!;
    // A second app on the same host, deployed once, then loaded while the first switches.
    expect((await xamal(project, ['setup', '-d', 'two'])).code).toBe(0);
    const two = await xamal(project, ['deploy', '-d', 'two', '-h', h.address, '--version', v1]);
    if (two.code !== 0) process.stderr.write(`[deploy] second app: ${two.stdout}\n${two.stderr}\n`);
    expect(two.code).toBe(0);
    const second = await through(h, 'hellotwo');
    expect(second.version, JSON.stringify(second) + two.stdout + two.stderr).toBe(v1);

    const target = { url: `https://${h.address}/up`, servername: 'hello.lab.test', ca: cas.get(h.name)! };
    // Paced (a request per client every 40 ms, ~150 requests/s in all): a switch is still crossed by
    // dozens of requests, and the load leaves the 2-core machine's CPU to the deploys and the other
    // tests (a closed loop took all there was). wrk below is the unpaced load.
    const paced = { maxRequests: 200_000, maxDurationMs: 600_000, intervalMs: 40 };
    const load = startLoad({ target, keepAliveClients: 2, closeClients: 2, ...paced });
    const other = startLoad({ target: { ...target, servername: 'hellotwo.lab.test' }, keepAliveClients: 1, closeClients: 1, ...paced });
    // wrk sends SNI from the URL: run it in the host's namespace, where hello.lab.test is its loopback.
    await lab.aliasInNetns(h, ['hello.lab.test']);
    const wrk = lab.netns(h, wrkCommand({ url: 'https://hello.lab.test/up', durationS: 30, connections: 4 }));
    const rounds: string[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const to = i % 2 === 0 ? v2 : v1;
        load.mark(`round ${i + 1}`, to);
        const r = i % 2 === 0 ? await xamal(project, ['deploy', '-h', h.address, '--version', v2, '-q']) : await xamal(project, ['rollback', v1, '-h', h.address, '-q']);
        rounds.push(`${r.code}`);
        expect(r.code, r.stdout + r.stderr).toBe(0);
      }
    } finally {
      const mine = await load.stop();
      const report = loadReport(mine.records, mine.marks);
      const otherReport = loadReport((await other.stop()).records);
      const w = parseWrk((await wrk).stdout);
      process.stderr.write(`[deploy] 20 switches under load: ${JSON.stringify({ total: report.total, failed: report.failed, non2xx: report.non2xx, errors: report.errors, latencies: report.switches.map((s) => s.latencyMs), stale: report.switches.reduce((n, s) => n + s.stale, 0) })}; second app ${JSON.stringify({ total: otherReport.total, failed: otherReport.failed })}; wrk ${JSON.stringify(w)}\n`);
      expect(report.failed).toBe(0);
      expect(report.switches.every((s) => s.latencyMs !== undefined)).toBe(true);
      expect(otherReport.failed).toBe(0);
      expect(w.failed).toBe(0);
    }
    expect(rounds).toHaveLength(20);
  });

  it('a version that never passes its health check fails the deploy, keeps the old version serving, releases the lock, and exits non-zero with the reason', { timeout: 300_000 }, async () => {
    const h = lab.hosts[0]!;
    const r = await xamal(project, ['deploy', '-c', 'config/broken.yml', '-h', h.address, '--version', v1]);
    expect(r.code, r.stdout + r.stderr).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/failed its health check \(\/never .*\); the old version keeps serving/);
    expect((await through(h, 'hello')).status).toBe(200);
    const lock = await xamal(project, ['lock', 'status']);
    expect(lock.stdout + lock.stderr).toMatch(/not locked|unlocked/i);
  });

  it('a release_command that fails switches nothing', { timeout: 300_000 }, async () => {
    const h = lab.hosts[2]!;
    const before = await through(h, 'hello');
    const r = await xamal(project, ['deploy', '-c', 'config/migrate.yml', '-h', h.address, '--version', v1]);
    expect(r.code, r.stdout + r.stderr).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/release_command failed on .* \(exit 3\); nothing was switched/);
    expect(await through(h, 'hello')).toMatchObject({ status: 200, version: before.version });
  });

  it('two deploys at once: the second is refused naming the lock holder', { timeout: 300_000 }, async () => {
    const h = lab.hosts[2]!;
    const [a, b] = await Promise.all([xamal(project, ['deploy', '-h', h.address, '--version', v1]), xamal(project, ['deploy', '-h', h.address, '--version', v1])]);
    const codes = [a.code, b.code].sort();
    process.stderr.write(`[deploy] concurrent: ${a.code} ${a.stderr.slice(-300)} | ${b.code} ${b.stderr.slice(-300)}\n`);
    expect(codes[0]).toBe(0);
    expect(codes[1]).not.toBe(0);
    const loser = a.code === 0 ? b : a;
    expect(loser.stdout + loser.stderr).toMatch(/lock/i);
    expect(loser.stdout + loser.stderr).toMatch(/held by|holder|locked by/i);
  });

  it('an SSH connection dropped mid-deploy on one of 3 hosts: that host is reported failed, the others serve the new version, current never points at an unbooted release, Caddy never at a dead slot; deploying again converges', { timeout: 300_000 }, async () => {
    const cut = lab.hosts[0]!; // also the primary: the lock lives there
    const unit = 'xamal-hello-web';
    // Requests through Caddy on every host all along: a dead slot behind Caddy would fail some.
    const loads = lab.hosts.map((h) => startLoad({ target: { url: `https://${h.address}/up`, servername: 'hello.lab.test', ca: cas.get(h.name)! }, keepAliveClients: 1, closeClients: 1, maxRequests: 100_000, maxDurationMs: 240_000 }));
    /** Each slot's unit state and release, and `current`, read as root over a connection of its own. */
    const state = async (h: LabHost) => {
      const r = await lab.ssh(h, { argv: ['sh', '-c', `for s in blue green; do echo "$s $(systemctl is-active ${unit}@$s.service) $(readlink /opt/xamal/hello/slots/web-$s/release)"; done; echo "current $(readlink /opt/xamal/hello/current)"`] }, 'root');
      const lines = r.stdout.trim().split('\n').map((l) => l.split(' '));
      const slots = lines.filter((l) => l[0] !== 'current').map(([slot, active, release]) => ({ slot, active: active === 'active', version: release?.split('/').pop() }));
      return { slots, current: lines.find((l) => l[0] === 'current')?.[1]?.split('/').pop() };
    };
    /** current names a release a running slot booted, and Caddy answers with a running slot's version. */
    const consistent = async (h: LabHost) => {
      const st = await state(h);
      const running = st.slots.filter((x) => x.active).map((x) => x.version);
      expect(running, `${h.name}: ${JSON.stringify(st)}`).toContain(st.current);
      const got = await through(h, 'hello');
      expect(got.status, JSON.stringify(got)).toBe(200);
      expect(running).toContain(got.version);
      return { ...st, running, serving: got.version };
    };
    try {
      // On the cut host, as root: once the idle slot's unit runs (the deploy boots and health-checks
      // it), the deploy user's sshd sessions are killed — the deployer's connection drops for real.
      const drop = `for s in blue green; do systemctl is-active -q "$1@$s.service" || idle=$s; done
i=0; while ! systemctl is-active -q "$1@$idle.service"; do i=$((i+1)); [ $i -lt 2400 ] || exit 4; sleep 0.05; done
pkill -KILL -u deploy '^sshd' && echo "dropped while $idle booted"`;
      const watcher = lab.ssh(cut, { argv: ['sh', '-c', drop, 'sh', unit], timeoutMs: 180_000 }, 'root');
      const first = await xamal(project, ['deploy', '--version', v2, '--json']);
      expect((await watcher).stdout).toMatch(/dropped while (blue|green) booted/);
      expect(first.code, first.stdout + first.stderr).not.toBe(0);
      const records = (JSON.parse(first.stdout) as { hosts: { host: string; result: string; error?: string }[] }).hosts;
      expect(records.map((r) => [r.host, r.result])).toEqual(lab.hosts.map((h) => [h.address, h === cut ? 'failed' : 'ok']));
      expect(records[0]!.error).toMatch(/SSH connection lost/);
      for (const h of lab.hosts) {
        const st = await consistent(h);
        if (h === cut) expect(st.current).toBe(v1);
        else expect(st).toMatchObject({ current: v2, running: [v2], serving: v2 });
      }
      // The lock was released over a new connection: deploying again needs no --force.
      const again = await xamal(project, ['deploy', '--version', v2, '--json']);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      for (const h of lab.hosts) expect(await consistent(h)).toMatchObject({ current: v2, running: [v2], serving: v2 });
    } finally {
      const reports = await Promise.all(loads.map(async (l) => loadReport((await l.stop()).records)));
      process.stderr.write(`[deploy] dropped connection: load through Caddy per host ${JSON.stringify(reports.map((r) => ({ total: r.total, failed: r.failed, errors: r.errors, non2xx: r.non2xx })))}\n`);
      expect(reports.map((r) => r.failed)).toEqual([0, 0, 0]);
    }
  });

  // Long timeout: on a fresh machine this waits for the suite's OTP compile (testkit/toolchains.ts).
  it('a release built with OTP 27.3.4.1 + Elixir 1.18.3 compiled from source deploys to the Debian 12 host and serves through Caddy; its VM runs ERTS 15.2.7 and says OTP 27', { timeout: 3 * 3_600_000 }, async () => {
    const fromSource = await buildFromSourceArtifacts(services(), tmp, { url: repoUrl }, v3);
    const h = lab.hosts.find((x) => x.release === '12')!;
    const setup = await xamal(project, ['setup']); // idempotent (the deploy lock lives on the primary host); this test also runs alone
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    if (!cas.has(h.name)) cas.set(h.name, await caddyRootCa(lab, h));
    const r = await xamal(project, ['deploy', '-h', h.address, '--version', v3, '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const records = (JSON.parse(r.stdout) as { hosts: { host: string; tuple: string; result: string }[] }).hosts;
    expect(records).toMatchObject([{ host: h.address, result: 'ok', tuple: fromSource[0] }]);
    const got = await through(h, 'hello');
    expect(got.status, JSON.stringify(got)).toBe(200);
    expect(got.version).toBe(v3);
    // The serving VM (the active slot's main process) and the release itself, asked on the host.
    const unit = 'xamal-hello-web';
    const vm = await lab.ssh(
      h,
      {
        argv: [
          'sh',
          '-c',
          `for s in blue green; do systemctl is-active -q ${unit}@$s.service && pid=$(systemctl show -p MainPID --value ${unit}@$s.service); done; readlink /proc/$pid/exe; cd /tmp && RELEASE_DISTRIBUTION=none RELEASE_TMP=/tmp /opt/xamal/hello/current/bin/hello eval 'IO.puts(["otp=", :erlang.system_info(:otp_release), " elixir=", System.version()])'`,
        ],
      },
      'root',
    );
    expect(vm.code, vm.stdout + vm.stderr).toBe(0);
    const [exe, said] = vm.stdout.trim().split('\n');
    expect(exe).toMatch(/\/erts-15\.2\.7\/bin\/beam\.smp$/);
    expect(said).toBe('otp=27 elixir=1.18.3');
  });
});
