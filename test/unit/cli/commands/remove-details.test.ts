import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { detailsLines } from '../../../../cli/commands/details.ts';
import { confirmOrStop } from '../../../../cli/confirm.ts';
import type { Io } from '../../../../cli/io.ts';
import { main } from '../../../../cli/main.ts';

/** remove, app remove, details and a deploy's prune through the CLI: --dry-run (a recording pool) or refused before any host is contacted. */

let root: string;
const startDir = process.cwd();

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'xamal-cli-remove-'));
  process.chdir(root);
  await mkdir(join(root, 'config'));
  await mkdir(join(root, '.xamal'));
  await writeFile(
    join(root, 'config/deploy.yml'),
    ['service: shop', 'servers:', '  web: [web1.example.com, web2.example.com]', '  jobs:', '    hosts: [jobs1.example.com]', '    cmd: bin/jobs', 'ssh:', '  user: deploy', 'caddy:', '  host: shop.example.com', 'retain_releases: 2', ''].join('\n'),
  );
  await writeFile(join(root, '.xamal/secrets'), 'RELEASE_COOKIE=c00kie\n');
});
afterEach(async () => {
  process.chdir(startDir);
  await rm(root, { recursive: true, force: true });
});

async function run(argv: string[], confirm?: (q: string) => Promise<boolean>) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => void out.push(t), err: (t) => void err.push(t), interrupted: () => new Promise<string>(() => {}), ...(confirm ? { confirm } : {}) };
  const code = await main(argv, io, { debug: false });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('xamal remove and app remove', () => {
  it('remove --dry-run needs no confirmation and shows, per host, the route deleted by id, the units stopped and removed, /opt/xamal/<app> and the user', async () => {
    const r = await run(['remove', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        'web1.example.com: caddy DELETE /id/xamal-shop',
        'web1.example.com: sudo -n systemctl stop -- xamal-shop-web@blue.service xamal-shop-web@green.service',
        'web1.example.com: sudo -n rm -rf -- /opt/xamal/shop',
        'jobs1.example.com: sudo -n rm -rf -- /etc/systemd/system/xamal-shop-jobs@.service',
      ]),
    );
    expect(r.stdout).toMatch(/^jobs1\.example\.com: sudo -n sh -c 'u=\$1\n[^']*userdel -- [^']*' sh xamal-shop \/etc\/systemd\/system$/m);
    // The app's data stays: never removed, given to root once its user is gone.
    expect(lines).toContain('web1.example.com: sudo -n chown -R -- 0:0 /var/lib/xamal/shop');
    expect(r.stdout).not.toMatch(/rm -rf .*\/var\/lib/);
    expect(r.stderr).toContain('3 hosts: 3 ok');
  });

  it('app remove -r jobs --dry-run touches only the jobs role (the lock aside, on the primary host): no Caddy, no web unit, the app directory stays', async () => {
    const r = await run(['app', 'remove', '-r', 'jobs', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('web2.example.com');
    expect(r.stdout).not.toContain('xamal-shop-web');
    expect(r.stdout).not.toContain('caddy');
    expect(r.stdout).toContain('jobs1.example.com: sudo -n rm -rf -- /opt/xamal/shop/releases /opt/xamal/shop/current /opt/xamal/shop/slots /opt/xamal/shop/tmp');
    expect(r.stdout).not.toMatch(/rm -rf -- \/opt\/xamal\/shop$/m);
  });

  it('without a terminal and without -y, both refuse before contacting any host, saying to pass -y', async () => {
    for (const argv of [['remove'], ['app', 'remove']]) {
      const r = await run(argv);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`xamal ${argv.join(' ')} asks for confirmation and there is no terminal to ask on: pass -y (--confirmed)`);
    }
  });

  it('asks on the terminal what goes from which hosts; a no stops it with nothing done (exit 10)', async () => {
    const asked: string[] = [];
    const r = await run(['remove', '-h', 'web1.example.com'], async (q) => (asked.push(q), false));
    expect(asked).toEqual(['This removes shop (roles web, jobs) from web1.example.com: everything of it: the Caddy route, slot units, releases, slots, /opt/xamal/shop (env files, lock, audit log) and its user xamal-shop. Are you sure?']);
    expect(r.code).toBe(10);
    expect(r.stderr).toContain('xamal remove: not confirmed; nothing was done');
  });

  it('goes ahead on a yes, and with -y without asking', async () => {
    const asked: string[] = [];
    const io: Io = { out: () => {}, err: () => {}, interrupted: () => new Promise<string>(() => {}), confirm: async (q) => (asked.push(q), true) };
    await expect(confirmOrStop(io, 'Sure?', undefined, 'xamal remove')).resolves.toBeUndefined();
    await expect(confirmOrStop(io, 'Again?', true, 'xamal remove')).resolves.toBeUndefined();
    expect(asked).toEqual(['Sure?']);
  });

  it('an unknown argument is a usage error', async () => {
    expect((await run(['remove', 'now', '-y'])).code).toBe(2);
  });
});

describe('xamal details', () => {
  it('--dry-run reads each role slot state on every host and the route and upstreams on hosts of the primary role only', async () => {
    const r = await run(['details', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('web1.example.com: caddy GET /id/xamal-shop');
    expect(r.stdout).toContain('web2.example.com: caddy GET /reverse_proxy/upstreams');
    expect(r.stdout).not.toContain('jobs1.example.com: caddy');
    expect(r.stdout).toMatch(/jobs1.example.com: sh -c .* sh xamal-shop-jobs /s);
  });

  it('one view per host: live slot, version and running slots per role, then the route state and its upstreams', () => {
    const lines = detailsLines(
      {
        roles: [{ role: 'web', live: 'green', running: ['green'], version: 'v2' }],
        caddy: { route: { '@id': 'xamal-shop' }, state: 'serving', upstreams: [{ address: '127.0.0.1:3001', num_requests: 2, fails: 0 }] },
      },
      'shop',
    );
    expect(lines).toEqual(['web: live green (v2), running: green', 'caddy route xamal-shop: serving', 'upstream 127.0.0.1:3001: 2 in flight, 0 recent failures']);
    expect(detailsLines({ roles: [{ role: 'jobs', live: undefined, running: [], version: undefined }] }, 'shop')).toEqual(['jobs: live none (never deployed), running: none']);
  });

  it('is in xamal help with remove, and app remove is in app\'s help', async () => {
    const r = await run(['help']);
    expect(r.stdout).toMatch(/^ {2}details +Show this app per host/m);
    expect(r.stdout).toMatch(/^ {2}remove +Remove everything of this app/m);
    expect((await run(['app', '--help'])).stdout).toMatch(/\|remove \[-y\]/);
  });
});

describe('a deploy prunes', () => {
  it('deploy --dry-run lists the releases on each host after the new version went live; rollback does not', async () => {
    const d = await run(['deploy', '--version', 'v9', '--dry-run', '-r', 'web']);
    expect(d.code, d.stderr).toBe(0);
    const web1 = d.stdout.split('\n').filter((l) => l.startsWith('web1.example.com: '));
    const live = web1.findIndex((l) => l.includes('.live'));
    const list = web1.findIndex((l) => l.includes('ls -1t'));
    expect(live).toBeGreaterThan(0);
    expect(list).toBeGreaterThan(live);
    const rb = await run(['rollback', 'v8', '--dry-run', '-r', 'web']);
    expect(rb.code, rb.stderr).toBe(0);
    expect(rb.stdout).not.toContain('ls -1t');
  });
});
