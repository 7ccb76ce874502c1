import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor, sensitive, type XamalError } from '../../../core/index.ts';
import type { SessionPool } from '../../../deployer/remote.ts';
import { ensureCaddyAdmin } from '../../../deployer/flows/setup.ts';
import { sshPool, type SshOptions } from '../../../deployer/ssh.ts';
import { labDeps, upLab, type Lab } from '../../../testkit/hosts/index.ts';

describe('SSH executor against real test hosts (ssh2, pooled, host keys verified)', () => {
  let lab: Lab;
  let tmp: string;
  const pools: SessionPool[] = [];
  const options = (patch: Partial<SshOptions> = {}): SshOptions => ({
    user: 'deploy',
    port: 22,
    keys: [lab.privateKeyPath],
    keyData: [],
    connectTimeoutMs: 3_000,
    knownHostsPath: lab.knownHostsPath,
    hostKeys: {},
    trustNewHosts: false,
    ...patch,
  });
  const pool = (patch: Partial<SshOptions> = {}) => {
    const p = sshPool(options(patch));
    pools.push(p);
    return p;
  };

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-ssh-'));
    lab = await upLab(labDeps(), { suites: ['bullseye', 'bookworm', 'trixie', 'bookworm', 'trixie'] });
  }, 300_000);
  afterAll(async () => {
    for (const p of pools) await p.close();
    await lab?.down();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('runs a command on 5 hosts in parallel; with one host down, 4 results and one clear failure', async () => {
    const p = pool();
    const all = await Promise.allSettled(lab.hosts.map(async (h) => (await (await p.session(h.address)).run({ argv: ['uname', '-m'] })).stdout.trim()));
    expect(all.map((r) => (r.status === 'fulfilled' ? r.value : 'failed'))).toEqual(['x86_64', 'x86_64', 'x86_64', 'x86_64', 'x86_64']);

    const down = lab.hosts[4]!;
    await lab.poweroff(down);
    const fresh = pool();
    const again = await Promise.allSettled(lab.hosts.map(async (h) => (await (await fresh.session(h.address)).run({ argv: ['uname', '-m'] })).stdout.trim()));
    expect(again.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
    const failure = again[4] as PromiseRejectedResult;
    expect(failure.status).toBe('rejected');
    expect((failure.reason as XamalError).code).toBe('unavailable');
    expect((failure.reason as Error).message).toContain(down.address);
  });

  it('runs 100 sequential commands over one pooled connection', async () => {
    const s = await pool().session(lab.hosts[0]!.address);
    const t0 = performance.now();
    const outs: string[] = [];
    for (let i = 0; i < 100; i++) outs.push((await s.run({ argv: ['echo', String(i)] })).stdout.trim());
    const perCommand = (performance.now() - t0) / 100;
    process.stderr.write(`[ssh] 100 sequential commands: ${perCommand.toFixed(1)} ms per command\n`);
    expect(outs).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
  });

  it('refuses an unknown host key before any command runs, showing the fingerprint; learns it only when asked', async () => {
    const h = lab.hosts[1]!;
    const empty = join(tmp, 'known_hosts_empty');
    await writeFile(empty, '');
    const refused = await pool({ knownHostsPath: empty })
      .session(h.address)
      .then(() => undefined, (e: XamalError) => e);
    expect(refused?.code).toBe('forbidden');
    expect(refused?.message).toContain(`unknown host ${h.address}`);
    expect(refused?.message).toContain(h.hostKeyFingerprint);
    expect(refused?.message).toContain('--trust-new-host-keys');

    const learnt = join(tmp, 'known_hosts_learnt');
    const s = await pool({ knownHostsPath: learnt, trustNewHosts: true }).session(h.address);
    expect((await s.run({ argv: ['hostname'] })).stdout.trim()).toBe(h.name);
    expect(await readFile(learnt, 'utf8')).toBe(`${h.address} ${h.hostPublicKey.split(' ').slice(0, 2).join(' ')}\n`);
    // Now known: a strict pool accepts it.
    expect((await (await pool({ knownHostsPath: learnt }).session(h.address)).run({ argv: ['true'] })).code).toBe(0);
  });

  it('refuses a changed host key (known_hosts or a pinned fingerprint), even with --trust-new-host-keys', async () => {
    const [a, b] = lab.hosts;
    const wrong = join(tmp, 'known_hosts_wrong');
    await writeFile(wrong, `${a!.address} ${b!.hostPublicKey}\n`);
    const changed = await pool({ knownHostsPath: wrong, trustNewHosts: true })
      .session(a!.address)
      .then(() => undefined, (e: XamalError) => e);
    expect(changed?.code).toBe('forbidden');
    expect(changed?.message).toMatch(/CHANGED/);
    expect(changed?.message).toContain(a!.hostKeyFingerprint);

    const pinnedWrong = await pool({ knownHostsPath: undefined, hostKeys: { [a!.address]: b!.hostKeyFingerprint } })
      .session(a!.address)
      .then(() => undefined, (e: XamalError) => e);
    expect(pinnedWrong?.message).toMatch(/CHANGED.*pins/);
    const pinnedRight = await pool({ knownHostsPath: undefined, hostKeys: { [a!.address]: a!.hostKeyFingerprint } }).session(a!.address);
    expect((await pinnedRight.run({ argv: ['true'] })).code).toBe(0);
  });

  it('reports a rejected key as an authentication failure', async () => {
    const other = join(tmp, 'other_key');
    await new LocalExecutor().run({ argv: ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', other] });
    const e = await pool({ keys: [other] })
      .session(lab.hosts[0]!.address)
      .then(() => undefined, (err: XamalError) => err);
    expect(e?.code).toBe('unauthorized');
    expect(e?.message).toContain(`deploy@${lab.hosts[0]!.address}`);
  });

  it('keeps secrets out of every process argument on the host, and still delivers them and stdin', async () => {
    const h = lab.hosts[2]!;
    const s = await pool().session(h.address);
    const secret = `s3cret-${randomBytes(6).toString('hex')}`;
    const running = s.run({ argv: ['sh', '-c', 'sleep 1.5; printf %s "$TOKEN" | sha256sum; cat'], env: { TOKEN: sensitive(secret) }, stdin: 'stdin-passes\n' });
    await new Promise((r) => setTimeout(r, 600));
    const ps = await s.run({ argv: ['ps', '-eo', 'args'] });
    expect(ps.stdout).toContain('sleep 1.5');
    expect(ps.stdout).not.toContain(secret);
    const out = (await running).stdout.split('\n');
    expect(out[0]).toBe(`${createHash('sha256').update(secret).digest('hex')}  -`);
    expect(out[1]).toBe('stdin-passes');
  });

  it("uploads a file over SFTP intact, moves Caddy's admin API onto its root-only unix socket, and reaches it there through the connection", async () => {
    const h = lab.hosts[3]!;
    const s = await pool().session(h.address);
    const local = join(tmp, 'blob');
    const data = randomBytes(5 << 20);
    await writeFile(local, data);
    await s.upload(local, '/tmp/blob', 0o600);
    const sum = await s.run({ argv: ['sh', '-c', 'sha256sum /tmp/blob; stat -c %a /tmp/blob'] });
    expect(sum.stdout.trim().split('\n')).toEqual([`${createHash('sha256').update(data).digest('hex')}  /tmp/blob`, '600']);

    // A fresh host's Caddy listens on 127.0.0.1:2019; the deployer's bootstrap step moves it.
    expect(await ensureCaddyAdmin(s, 'deploy')).toContain('wrote /etc/systemd/system/caddy-api.service.d/xamal-admin.conf (caddy-api.service restarted)');
    expect(await ensureCaddyAdmin(s, 'deploy')).toEqual([]);
    const config = await s.caddy({ method: 'GET', path: '/config/' });
    expect(config.status).toBe(200);
    const put = await s.caddy({ method: 'POST', path: '/config/', body: { admin: { listen: 'unix//run/caddy/admin.sock' }, apps: { http: { servers: { probe: { listen: [':8081'], routes: [] } } } } } });
    expect(put.status).toBe(200);
    expect(JSON.parse((await s.caddy({ method: 'GET', path: '/config/apps/http/servers/probe/listen' })).body)).toEqual([':8081']);
  });

  it('reaches a host through a jump host (ssh.proxy)', async () => {
    const [jumpHost, target] = lab.hosts;
    const s = await pool({ proxy: { host: jumpHost!.address } }).session(target!.address);
    expect((await s.run({ argv: ['hostname'] })).stdout.trim()).toBe(target!.name);
  });
});
