import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Io } from '../../../../cli/io.ts';
import { main } from '../../../../cli/main.ts';
import { splitAtCommand, REMOTE_FLAGS, withRemote } from '../../../../cli/remote.ts';
import { RecordingPool } from '../../../../deployer/remote.ts';

/** setup, server, lock, caddy and audit through the CLI with --dry-run (a recording pool: no host is contacted). */

let root: string;
const startDir = process.cwd();
const SECRET = 'very-secret-db-password-42';

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'xamal-cli-remote-'));
  process.chdir(root);
  await mkdir(join(root, 'config'));
  await mkdir(join(root, '.xamal'));
  await writeFile(
    join(root, 'config/deploy.yml'),
    ['service: shop', 'servers:', '  web: [web1.example.com, web2.example.com]', '  jobs:', '    hosts: [jobs1.example.com]', '    cmd: bin/jobs', 'ssh:', '  user: deploy', 'caddy:', '  host: shop.example.com', 'env:', '  secret: [DB_PASSWORD]', ''].join('\n'),
  );
  await writeFile(join(root, '.xamal/secrets'), `DB_PASSWORD=${SECRET}\n`);
});
afterEach(async () => {
  process.chdir(startDir);
  await rm(root, { recursive: true, force: true });
});

async function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => void out.push(t), err: (t) => void err.push(t), interrupted: () => new Promise<string>(() => {}) };
  const code = await main(argv, io, { debug: false });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('remote commands with --dry-run', () => {
  it('setup prints every step per host, secrets redacted, and contacts nobody', async () => {
    const r = await run('setup', '--dry-run');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain(SECRET);
    const lines = r.stdout.split('\n');
    const hostsInOrder = [...new Set(lines.map((l) => l.split(':')[0]))];
    expect(hostsInOrder).toEqual(['web1.example.com', 'web2.example.com', 'jobs1.example.com']);
    expect(lines).toContain(
      "web1.example.com: sudo -n sh -c 'umask 077; t=\"$1.xamal-new\"; cat > \"$t\" && { [ -z \"$3\" ] || chown -- \"$3\" \"$t\"; } && chmod \"$2\" \"$t\" && mv -f \"$t\" \"$1\"' sh /etc/systemd/system/xamal-shop-web@.service 0644  # with stdin",
    );
    expect(lines.some((l) => l.startsWith('web1.example.com: caddy POST /config/ {"admin":{"listen":"unix//run/caddy/admin.sock"},"apps":{"http":{"servers":{"xamal"'))).toBe(true);
    // Caddy's admin API moves to its root-only socket (drop-in, one restart).
    expect(lines.some((l) => l.startsWith('web1.example.com: sudo -n systemctl restart -- caddy-api.service'))).toBe(true);
    expect(lines.some((l) => l.startsWith('jobs1.example.com: caddy'))).toBe(false);
    // The app's state directory on every host, as root (its parent root's, it the app user's, 0700).
    for (const h of ['web1', 'jobs1']) expect(r.stdout).toContain(`${h}.example.com: sudo -n sh -c 'mkdir -p -m 0755 -- "$3" && mkdir -p -- "$1" && chown -R -- "$2:" "$1" && chmod 0700 -- "$1"' sh /var/lib/xamal/shop xamal-shop /var/lib/xamal\n`);
    expect(r.stderr).toMatch(/^dry run: nothing was done/);
    expect(r.stderr).toContain('3 hosts: 3 ok');
  });

  it('server exec runs the words after the flags as the command, on the selected roles', async () => {
    const r = await run('server', 'exec', '-r', 'jobs', '--dry-run', 'uname', '-m');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')).toEqual(["jobs1.example.com: sh -c 'uname -m'", expect.stringMatching(/^jobs1.example.com: sh -c .*cat >> .*# with stdin$/)]);
    expect((await run('server', 'exec', '--dry-run')).code).toBe(2);
    expect(splitAtCommand(['-d', 'x', '--hosts', 'a', 'ls', '-la'], REMOTE_FLAGS)).toEqual({ flags: ['-d', 'x', '--hosts', 'a'], rest: ['ls', '-la'] });
    expect(splitAtCommand(['--json', '--', '-x'], REMOTE_FLAGS)).toEqual({ flags: ['--json'], rest: ['-x'] });
  });

  it('lock acquire needs a message and works on the primary host only', async () => {
    expect((await run('lock', 'acquire', '--dry-run')).code).toBe(2);
    const r = await run('lock', 'acquire', '-m', 'maintenance window', '--dry-run');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\nacquired the deploy lock: /);
    expect(r.stdout).toMatch(/web1.example.com: sh -c .*mkdir -- .*# with stdin/);
    expect(r.stdout).not.toContain('web2.example.com');
    expect((await run('lock', 'status', '--dry-run')).stdout).toMatch(/\nlocked by/);
  });

  it('app maintenance and app live read the canary state before they replace the route (a running canary refuses them, as a deploy)', async () => {
    for (const action of ['maintenance', 'live']) {
      const r = await run('app', action, '--dry-run');
      expect(r.code, r.stderr).toBe(0);
      const read = r.stdout.indexOf('web1.example.com: sh -c \'if [ -f "$1" ]; then cat "$1"; fi; printf "\\n%s\\n" "$2"\' sh /opt/xamal/shop/canary.json');
      const patch = r.stdout.indexOf('web1.example.com: caddy PATCH /id/xamal-shop/handle');
      expect(read).toBeGreaterThan(-1);
      expect(patch).toBeGreaterThan(read);
    }
  });

  it('rejects an unknown host pattern naming the hosts, and unknown actions', async () => {
    const r = await run('audit', '--hosts', 'db*', '--dry-run');
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('no host matches "db*" (hosts: web1.example.com, web2.example.com, jobs1.example.com)');
    expect((await run('caddy', 'nope')).code).toBe(2);
    expect((await run('caddy', 'details', '--dry-run')).stdout).toContain('web1.example.com: caddy GET /id/xamal-shop');
  });
});

describe('-p, app logs flags and ~/.ssh/config, with --dry-run', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('-p runs on the primary host only; beside --hosts it is refused naming both flags', async () => {
    const r = await run('server', 'exec', '-p', '--dry-run', 'uptime');
    expect(r.code, r.stderr).toBe(0);
    expect(new Set(r.stdout.split('\n').map((l) => l.split(':')[0]))).toEqual(new Set(['web1.example.com']));
    const both = await run('server', 'exec', '-p', '-h', 'web2*', '--dry-run', 'uptime');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^xamal: --primary and --hosts cannot be combined/);
  });

  it('app logs accepts --since, -g and -n; a bad value is refused before any host is contacted', async () => {
    const r = await run('app', 'logs', '-r', 'web', '-g', 'GET /', '--since', '10m', '-n', '5', '--dry-run');
    expect(r.code, r.stderr).toBe(0);
    // Nothing is deployed in a dry run (empty answers): only each host's slot state is read.
    expect(r.stdout.split('\n').filter((l) => / sh -c /.test(l)).map((l) => l.split(':')[0])).toEqual(['web1.example.com', 'web2.example.com']);
    const bad = await run('app', 'logs', '--since', 'soon', '--dry-run');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--since: expected a time like');
    expect((await run('app', 'logs', '-n', '0', '--dry-run')).stderr).toContain('--lines: expected a positive integer, got "0"');
    expect((await run('app', 'logs', '-f', '--json', '--dry-run')).stderr).toContain('--follow: --json is not supported');
  });

  it("a host named only by its ~/.ssh/config alias gets that file's User: root steps use sudo there, not on a host the file does not name", async () => {
    await writeFile(join(root, 'config/deploy.yml'), ['service: shop', 'servers:', '  web: [shopbox, other.example.com]', 'caddy:', '  host: shop.example.com', ''].join('\n'));
    await mkdir(join(root, 'home/.ssh'), { recursive: true });
    await writeFile(join(root, 'home/.ssh/config'), 'Host shopbox\n  HostName 192.0.2.10\n  User deploy\n  Port 2222\n');
    vi.stubEnv('HOME', join(root, 'home'));
    const setup = await run('setup', '--dry-run');
    expect(setup.stdout).toMatch(/^shopbox: sudo -n /m);
    expect(setup.stdout).not.toMatch(/^other\.example\.com: sudo -n /m);
    vi.stubEnv('HOME', join(root, 'nowhere'));
    expect((await run('setup', '--dry-run')).stdout).not.toMatch(/^shopbox: sudo -n /m);
  });
});

describe('withRemote', () => {
  it("gives the opened remote to the function, returns its result, and closes the pool after it, even when it throws", async () => {
    const close = vi.spyOn(RecordingPool.prototype, 'close');
    try {
      const got = await withRemote({ 'dry-run': true }, { command: 'test', secrets: false }, async (remote) => {
        expect(remote.recording).toBeInstanceOf(RecordingPool);
        expect(close).not.toHaveBeenCalled();
        return remote.ctx.targets.hosts;
      });
      expect(got).toEqual(['web1.example.com', 'web2.example.com', 'jobs1.example.com']);
      expect(close).toHaveBeenCalledTimes(1);
      await expect(withRemote({ 'dry-run': true }, { command: 'test', secrets: false }, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
      expect(close).toHaveBeenCalledTimes(2);
    } finally {
      close.mockRestore();
    }
  });
});
