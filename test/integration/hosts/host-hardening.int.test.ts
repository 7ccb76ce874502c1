import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CADDY_ADMIN_SOCKET } from '../../../deployer/commands/caddy.ts';
import { xamalCli } from '../../../testkit/cli.ts';
import { helloRepo } from '../../../testkit/example-repo.ts';
import { buildLabArtifacts, caddyAdminGet, labDeployYml, labDeps, labFarmApi, labProject, upLab, type Lab } from '../../../testkit/hosts/index.ts';
import { cliEntry, services } from '../../../testkit/integration.ts';

/**
 * Issue 18, host side, on Debian 11/12/13 test hosts with the real CLI: the app runs as its own
 * system user in a systemd sandbox (its exposure score recorded), the download link is in no
 * process's argv at any time during a deploy, and Caddy's admin API answers only on a unix socket
 * root can open.
 */

const TOKEN = 'e'.repeat(40);
const APP_USER = 'xamal-hello';
const UNIT = 'xamal-hello-web';

/**
 * Samples every process's argv on a host until told to stop: the pattern comes on stdin and is
 * matched in the shell, so it is in no argv itself (not the sampler's, not a grep's). Prints `HIT
 * <args>` for a match, `CURL <args>` for each curl seen, `@@` per sample.
 */
const SAMPLER = `IFS= read -r pat
n=0
while [ ! -e /run/xamal-sampler.stop ] && [ $n -lt 6000 ]; do
  ps -eo args= | while IFS= read -r l; do
    case "$l" in *"$pat"*) printf 'HIT %s\\n' "$l";; esac
    case "$l" in curl*) printf 'CURL %s\\n' "$l";; esac
  done
  echo @@
  n=$((n+1))
  sleep 0.02
done`;

describe('hardened hosts: own user and sandbox per app, no link in argv, Caddy admin on a root-only socket (Debian 11/12/13)', () => {
  let lab: Lab;
  let tmp: string;
  let api: FastifyInstance;
  let project: string;
  let v1: string;
  let farmUrl: string;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-hardening-'));
    lab = await upLab(labDeps(), { suites: ['bullseye', 'bookworm', 'trixie'] });
    const src = await helloRepo(join(tmp, 'repo'));
    v1 = src.commit;
    // The store and commit deploy.int.test.ts uses: a warm run finds the artifacts built.
    const store = await buildLabArtifacts(services(), tmp, src, [v1]);
    ({ api, url: farmUrl } = await labFarmApi(lab, store, TOKEN));

    project = join(tmp, 'project');
    await labProject(project, {
      'config/deploy.yml': labDeployYml(lab, { service: 'hello', appPort: 4000, farmUrl, extra: { env: { clear: { MIX_ENV: 'prod' } } } }),
      '.xamal/secrets': `XAMAL_FARM_TOKEN=${TOKEN}\n`,
    });
  }, 1_500_000);

  afterAll(async () => {
    await api?.close();
    await lab?.down();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("setup moves Caddy's admin API onto a unix socket: nothing answers on 127.0.0.1:2019, only root opens the socket", { timeout: 300_000 }, async () => {
    const setup = await xamalCli(project, ['setup'], {}, cliEntry());
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    const rows: string[] = [];
    for (const h of lab.hosts) {
      const tcp4 = await lab.netns(h, { argv: ['curl', '-sS', '--max-time', '3', 'http://127.0.0.1:2019/config/'] });
      const tcp6 = await lab.netns(h, { argv: ['curl', '-sS', '--max-time', '3', 'http://[::1]:2019/config/'] });
      expect([tcp4.code, tcp6.code], `${h.name}: ${tcp4.stdout}${tcp6.stdout}`).toEqual([7, 7]);
      const asDeploy = await lab.ssh(h, { argv: ['curl', '-sS', '--max-time', '3', '--unix-socket', CADDY_ADMIN_SOCKET, '-H', 'Host;', 'http://localhost/config/'] });
      const asApp = await lab.ssh(h, { argv: ['runuser', '-u', APP_USER, '--', 'curl', '-sS', '--max-time', '3', '--unix-socket', CADDY_ADMIN_SOCKET, '-H', 'Host;', 'http://localhost/config/'] }, 'root');
      expect(asDeploy.code, asDeploy.stdout).not.toBe(0);
      expect(asApp.code, asApp.stdout).not.toBe(0);
      const asRoot = await caddyAdminGet(lab, h, '/id/xamal-hello');
      expect(asRoot.stdout).toContain('"@id":"xamal-hello"');
      const modes = await lab.ssh(h, { argv: ['stat', '-c', '%a %U %F', '/run/caddy', CADDY_ADMIN_SOCKET] }, 'root');
      expect(modes.stdout.trim().split('\n')).toEqual(['700 caddy directory', '700 caddy socket']);
      rows.push(`debian${h.release}: tcp ${tcp4.code}/${tcp6.code}, deploy user ${asDeploy.code}, app user ${asApp.code}, root 200`);
    }
    console.log(`reliability: Caddy admin API → ${lab.hosts.length}/${lab.hosts.length} hosts refuse it over TCP and to non-root users (curl exit codes; ${rows.join('; ')})`);
  });

  it("a deploy to 3 hosts with every process's argv sampled on each host all along: the download link is in none", { timeout: 600_000 }, async () => {
    const samplers = lab.hosts.map((h) => lab.ssh(h, { argv: ['sh', '-c', SAMPLER], stdin: '/v1/downloads/\n', timeoutMs: 400_000 }, 'root'));
    let deploy: Awaited<ReturnType<typeof xamalCli>>;
    try {
      deploy = await xamalCli(project, ['deploy', '--version', v1, '--json'], {}, cliEntry());
    } finally {
      for (const h of lab.hosts) await lab.ssh(h, { argv: ['touch', '/run/xamal-sampler.stop'] }, 'root');
    }
    expect(deploy.code, deploy.stdout + deploy.stderr).toBe(0);
    const outs = await Promise.all(samplers);
    const counts = outs.map((o, i) => {
      const lines = o.stdout.split('\n');
      return { host: `debian${lab.hosts[i]!.release}`, samples: lines.filter((l) => l === '@@').length, hits: lines.filter((l) => l.startsWith('HIT ')), curls: lines.filter((l) => l.startsWith('CURL ')) };
    });
    console.log(
      `reliability: no link in argv → ${counts.map((c) => `${c.host}: ${c.samples} samples of ps, ${c.hits.length} with the link, curl seen in ${c.curls.length}`).join('; ')}`,
    );
    for (const c of counts) {
      expect(c.samples).toBeGreaterThan(20);
      expect(c.hits, c.host).toEqual([]);
      // Any curl caught pulling (writing the release tarball) reads its URL from stdin.
      for (const line of c.curls.filter((l) => l.includes('.tar.gz'))) expect(line).toContain('--config -');
    }
  });

  it('on every host the app runs as its own user: every process of the live unit is xamal-hello, never root; the release is not the app\'s to change', { timeout: 120_000 }, async () => {
    const rows: string[] = [];
    for (const h of lab.hosts) {
      const live = (await lab.ssh(h, { argv: ['cat', '/opt/xamal/hello/slots/web.live'] }, 'root')).stdout.trim();
      const unit = `${UNIT}@${live}.service`;
      const main = (await lab.ssh(h, { argv: ['systemctl', 'show', '-p', 'MainPID', '--value', unit] }, 'root')).stdout.trim();
      expect(Number(main), `${h.name}: ${unit}`).toBeGreaterThan(0);
      expect((await lab.ssh(h, { argv: ['ps', '-o', 'user=', '-p', main] }, 'root')).stdout.trim()).toBe(APP_USER);
      // Every process in the unit's cgroup (the BEAM, erl_child_setup, epmd when it started there).
      const all = await lab.ssh(
        h,
        { argv: ['sh', '-c', 'for f in /proc/[0-9]*/cgroup; do grep -qs "/$1\\$" "$f" && ps -o user= -p "$(basename "$(dirname "$f")")"; done; true', 'sh', unit] },
        'root',
      );
      const users = all.stdout.trim().split('\n').filter(Boolean);
      expect(users.length).toBeGreaterThan(0);
      expect(new Set(users)).toEqual(new Set([APP_USER]));
      // Release files: the deploy user's, no setuid/setgid, no group/other write, all readable; the app cannot write there.
      const rel = `/opt/xamal/hello/releases/${v1}`;
      const files = await lab.ssh(h, { argv: ['sh', '-c', 'find "$1" ! -user deploy | wc -l; find "$1" -perm /6022 ! -type l | wc -l; find "$1" ! -perm -o=r ! -type l | wc -l', 'sh', rel] }, 'root');
      expect(files.stdout.trim().split('\n')).toEqual(['0', '0', '0']);
      const write = await lab.ssh(h, { argv: ['runuser', '-u', APP_USER, '--', 'sh', '-c', 'touch "$1/x" 2>/dev/null; echo $?; touch "$2/x" && rm "$2/x"; echo $?', 'sh', rel, `/opt/xamal/hello/tmp/web-${live}`] }, 'root');
      expect(write.stdout.trim().split('\n')).toEqual(['1', '0']);
      rows.push(`debian${h.release}: ${users.length} process(es) as ${APP_USER}`);
    }
    console.log(`reliability: app user → ${lab.hosts.length}/${lab.hosts.length} hosts run every process of the live unit as ${APP_USER}, 0 as root (${rows.join('; ')})`);
  });

  it('systemd-analyze security scores the live unit on every host (printed; OK or better, below 5)', { timeout: 120_000 }, async () => {
    const scores: { host: string; score: number; level: string }[] = [];
    for (const h of lab.hosts) {
      const live = (await lab.ssh(h, { argv: ['cat', '/opt/xamal/hello/slots/web.live'] }, 'root')).stdout.trim();
      const r = await lab.ssh(h, { argv: ['systemd-analyze', 'security', '--no-pager', `${UNIT}@${live}.service`] }, 'root');
      const m = /Overall exposure level for \S+: ([\d.]+) (\w+)/.exec(r.stdout);
      expect(m, `${h.name}: ${r.stdout.slice(-500)}${r.stderr}`).not.toBeNull();
      scores.push({ host: `debian${h.release}`, score: Number(m![1]), level: m![2]! });
    }
    console.log(`score: systemd-analyze security ${UNIT}@ → ${scores.map((s) => `${s.host} ${s.score} ${s.level}`).join('; ')}`);
    console.log(`reliability: systemd sandbox → ${scores.filter((s) => s.score < 5).length}/${scores.length} hosts score below 5 (${scores.map((s) => `${s.host} ${s.score}`).join(', ')})`);
    for (const s of scores) expect(s.score, s.host).toBeLessThan(5);
  });
});
