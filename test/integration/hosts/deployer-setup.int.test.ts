import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../../../cli/io.ts';
import { main } from '../../../cli/main.ts';
import { PROJECT_ROOT } from '../../../localservices/config.ts';
import { sleep } from '../../../localservices/process.ts';
import { appSite } from '../../../deployer/commands/caddy.ts';
import { appLayout } from '../../../deployer/commands/layout.ts';
import { validateDeployConfig } from '../../../deployer/config/load.ts';
import { setMaintenance } from '../../../deployer/flows/caddy.ts';
import { sshPool } from '../../../deployer/ssh.ts';
import { caddyAdminGet, labDeps, upLab, type Lab, type LabHost } from '../../../testkit/hosts/index.ts';

/**
 * setup, lock and server exec through the real CLI (ssh2 pool, host keys pinned) against real test
 * hosts: Debian 12, 13 and 11 with systemd, sudo and Caddy's admin API.
 */

const SECRET = 'integration-secret-value-7f3a';
const startDir = process.cwd();

describe('xamal setup, lock and server exec on real test hosts', () => {
  let lab: Lab;
  let project: string;

  async function run(app: 'shop' | 'blog', ...argv: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { out: (t) => void out.push(t), err: (t) => void err.push(t), interrupted: () => new Promise<string>(() => {}) };
    process.chdir(join(project, app));
    try {
      const code = await main(argv, io, { debug: true });
      return { code, stdout: out.join('\n'), stderr: err.join('\n') };
    } finally {
      process.chdir(startDir);
    }
  }

  async function writeApp(app: 'shop' | 'blog', port: number) {
    const dir = join(project, app);
    await mkdir(join(dir, 'config'), { recursive: true });
    await mkdir(join(dir, '.xamal'), { recursive: true });
    await writeFile(
      join(dir, 'config/deploy.yml'),
      [
        `service: ${app}`,
        'servers:',
        `  web: [${lab.hosts.map((h) => h.address).join(', ')}]`,
        'ssh:',
        '  user: deploy',
        `  keys: [${lab.privateKeyPath}]`,
        `  known_hosts: ${lab.knownHostsPath}`,
        '  connect_timeout: 3',
        'caddy:',
        `  host: ${app}.lab.test`,
        `  app_port: ${port}`,
        '  ssl: internal',
        'env:',
        '  clear: { GREETING: hello }',
        '  secret: [DB_PASSWORD]',
        'packages: [curl]',
        '',
      ].join('\n'),
    );
    await writeFile(join(dir, '.xamal/secrets'), `DB_PASSWORD=${SECRET}\n`);
  }

  /** What setup may change on a host: files under /opt/xamal and the unit dir (with hashes), Caddy's config. */
  async function hostState(h: LabHost): Promise<{ files: string; caddy: unknown }> {
    const files = await lab.ssh(h, {
      argv: [
        'sh',
        '-c',
        'sudo -n find /opt/xamal /etc/systemd/system -path "*xamal*" ! -name audit.log -printf "%p %m %u %y\\n" 2>/dev/null | sort; sudo -n find /opt/xamal /etc/systemd/system -path "*xamal*" -type f ! -name audit.log -exec sha256sum {} + 2>/dev/null | sort',
      ],
    });
    const caddy = await caddyAdminGet(lab, h, '/config/');
    expect(caddy.code, caddy.stderr).toBe(0);
    return { files: files.stdout, caddy: JSON.parse(caddy.stdout) };
  }

  beforeAll(async () => {
    project = await mkdtemp(join(tmpdir(), 'xamal-setup-int-'));
    lab = await upLab(labDeps(), { suites: ['bookworm', 'trixie', 'bullseye'] });
    await writeApp('shop', 4100);
    await writeApp('blog', 4200);
  }, 300_000);

  afterAll(async () => {
    process.chdir(startDir);
    await lab?.down();
    if (project) await rm(project, { recursive: true, force: true });
  });

  it('--dry-run prints every step per host with secrets redacted and leaves the hosts unchanged', async () => {
    const before = await Promise.all(lab.hosts.map(hostState));
    const r = await run('shop', 'setup', '--dry-run');
    expect(r.code, r.stderr).toBe(0);
    for (const h of lab.hosts) expect(r.stdout).toContain(`${h.address}: caddy POST /config/`);
    expect(`${r.stdout}${r.stderr}`).not.toContain(SECRET);
    expect(await Promise.all(lab.hosts.map(hostState))).toEqual(before);
  });

  it("setup twice: the second run changes nothing (host state compared), and another app's route survives", async () => {
    const blog = await run('blog', 'setup');
    expect(blog.code, blog.stdout + blog.stderr).toBe(0);
    const first = await run('shop', 'setup');
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toContain('wrote /etc/systemd/system/xamal-shop-web@.service');
    expect(first.stdout).toContain('caddy route xamal-shop added');
    const after1 = await Promise.all(lab.hosts.map(hostState));

    const second = await run('shop', 'setup', '--json');
    expect(second.code, second.stdout + second.stderr).toBe(0);
    const outcomes = JSON.parse(second.stdout) as { host: string; ok: boolean; changes: string[] }[];
    expect(outcomes.map((o) => [o.ok, o.changes])).toEqual(lab.hosts.map(() => [true, []]));
    expect(await Promise.all(lab.hosts.map(hostState))).toEqual(after1);

    for (const [i, h] of lab.hosts.entries()) {
      const routes = (after1[i]!.caddy as { apps: { http: { servers: { xamal: { routes: { '@id': string }[] } } } } }).apps.http.servers.xamal.routes.map((r) => r['@id']);
      expect(routes.sort()).toEqual(['xamal-blog', 'xamal-shop']);
      // systemd loads the template (run as the app's own user); the env file is 0440, the deploy
      // user's with the app's group, and holds the secret (and only there).
      const unit = await lab.ssh(h, { argv: ['sh', '-c', 'systemctl show -p LoadState,Type,User xamal-shop-web@green.service; stat -c "%a %U:%G" /opt/xamal/shop/slots/web-green/env; grep -c DB_PASSWORD= /opt/xamal/shop/slots/web-green/env; grep -c "$0" /opt/xamal/shop/audit.log || true', SECRET] });
      const lines = unit.stdout.trim().split('\n');
      expect([...lines.slice(0, 3).sort(), ...lines.slice(3)]).toEqual(['LoadState=loaded', 'Type=exec', 'User=xamal-shop', '440 deploy:xamal-shop', '1', '0']);
    }
  });

  it('the route serves whichever slot is healthy, blue first, with no config change; maintenance is a 503 for this app only', async () => {
    const h = lab.hosts[0]!;
    const upstreams: ChildProcess[] = [];
    const start = async (port: number, revision: string) => {
      const child = spawn('ip', ['netns', 'exec', h.netns, process.execPath, join(PROJECT_ROOT, 'testkit', 'hosts', 'upstream.mjs'), String(port), revision], { stdio: ['ignore', 'pipe', 'inherit'] });
      upstreams.push(child);
      await new Promise<void>((resolve, reject) => {
        child.once('error', reject);
        child.stdout!.once('data', () => resolve());
      });
    };
    const get = async (name: string) => {
      const r = await lab.netns(h, { argv: ['curl', '-sk', '--max-time', '8', '--resolve', `${name}:443:127.0.0.1`, '-o', '/dev/null', '-w', '%{http_code} %header{x-revision}', `https://${name}/`] });
      return r.stdout.trim();
    };
    const until = async (name: string, want: string) => {
      let got = '';
      for (let i = 0; i < 50 && got !== want; i++) {
        got = await get(name);
        if (got !== want) await sleep(200);
      }
      return got;
    };
    const pool = sshPool({ user: 'deploy', port: 22, keys: [lab.privateKeyPath], keyData: [], connectTimeoutMs: 3_000, knownHostsPath: lab.knownHostsPath, hostKeys: {}, trustNewHosts: false });
    try {
      const caddyBefore = (await hostState(h)).caddy;
      await start(4101, 'green');
      expect(await until('shop.lab.test', '200 green')).toBe('200 green');
      await start(4100, 'blue');
      expect(await until('shop.lab.test', '200 blue')).toBe('200 blue');
      expect((await hostState(h)).caddy).toEqual(caddyBefore);

      const site = appSite(validateDeployConfig({ service: 'shop', servers: [h.address], caddy: { host: 'shop.lab.test', app_port: 4100, ssl: 'internal' } }), appLayout('shop', undefined));
      const session = await pool.session(h.address);
      await start(4200, 'blog-blue');
      expect(await until('blog.lab.test', '200 blog-blue')).toBe('200 blog-blue');
      await setMaintenance(session, site, true);
      expect(await get('shop.lab.test')).toBe('503');
      expect(await get('blog.lab.test')).toBe('200 blog-blue');
      await setMaintenance(session, site, false);
      expect(await until('shop.lab.test', '200 blue')).toBe('200 blue');
    } finally {
      await pool.close();
      for (const u of upstreams) u.kill('SIGKILL');
    }
  });

  it('two lock acquires at once: exactly one wins, the other names the holder; status and release', async () => {
    const [a, b] = await Promise.all([run('shop', 'lock', 'acquire', '-m', 'first contender'), run('shop', 'lock', 'acquire', '-m', 'second contender')]);
    const winner = [a, b].filter((r) => r.code === 0);
    const loser = [a, b].filter((r) => r.code !== 0);
    expect(winner).toHaveLength(1);
    expect(loser).toHaveLength(1);
    expect(loser[0]!.code).toBe(5);
    const wonWith = winner[0]!.stdout.includes('first contender') ? 'first contender' : 'second contender';
    expect(loser[0]!.stderr).toMatch(new RegExp(`deploy lock on ${lab.hosts[0]!.address.replace(/\./g, '\\.')} is held by .*"${wonWith}"`));
    expect((await run('shop', 'lock', 'status')).stdout).toContain(`"${wonWith}"`);
    expect((await run('shop', 'lock', 'release')).stdout).toBe('released the deploy lock');
    expect((await run('shop', 'lock', 'status')).stdout).toBe('not locked');
    const audit = await run('shop', 'audit', '--hosts', lab.hosts[0]!.address);
    expect(audit.stdout).toMatch(/lock acquire → ok: .* contender/);
    expect(audit.stdout).toContain('lock release → ok');
  });

  it("server exec 'uname -m' returns every host's output; with one host powered off, the others' results and one clear failure", async () => {
    const all = await run('shop', 'server', 'exec', 'uname -m');
    expect(all.code, all.stderr).toBe(0);
    for (const h of lab.hosts) expect(all.stdout).toContain(`${h.address}:\n  x86_64`);
    const down = lab.hosts[2]!;
    await lab.poweroff(down);
    const some = await run('shop', 'server', 'exec', 'uname -m');
    expect(some.code).not.toBe(0);
    for (const h of lab.hosts.slice(0, 2)) expect(some.stdout).toContain(`${h.address}:\n  x86_64`);
    expect(some.stdout).toMatch(new RegExp(`${down.address.replace(/\./g, '\\.')}: FAILED: .*`));
    expect(some.stderr).toContain(`3 hosts: 2 ok, 1 failed (${down.address})`);
  });
});
