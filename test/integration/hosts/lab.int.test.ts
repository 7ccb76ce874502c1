import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor, type Command } from '../../../core/index.ts';
import { PROJECT_ROOT } from '../../../localservices/config.ts';
import { sleep } from '../../../localservices/process.ts';
import { labDeps, publicKeyFingerprint, reapStaleLabs, upLab, type Lab, type LabHost } from '../../../testkit/hosts/index.ts';
import { loadReport, parseWrk, startLoad, wrkCommand } from '../../../testkit/hosts/load.ts';

const exec = new LocalExecutor();
const UPSTREAM = join(PROJECT_ROOT, 'testkit', 'hosts', 'upstream.mjs');

/** A Caddy site for the host (name and address both get a certificate from Caddy's internal CA). */
function caddySite(h: LabHost, upstreams: string[], balanced: boolean) {
  const names = [`${h.name}.lab.test`, h.address];
  return {
    apps: {
      http: {
        servers: {
          lab: {
            listen: [':443'],
            routes: [
              {
                match: [{ host: names }],
                handle: [
                  {
                    handler: 'reverse_proxy',
                    upstreams: upstreams.map((dial) => ({ dial })),
                    // Balanced: the no-reload switch (FACTS.md#caddy) (both slots listed, `first`, active health
                    // checks, retries). Otherwise a plain proxy that answers 502 as soon as its upstream is gone.
                    ...(balanced
                      ? {
                          load_balancing: { selection_policy: { policy: 'first' }, try_duration: '5s', try_interval: '100ms' },
                          health_checks: { active: { uri: '/up', interval: '200ms', timeout: '1s' } },
                        }
                      : {}),
                  },
                ],
              },
            ],
          },
        },
      },
      tls: { automation: { policies: [{ subjects: names, issuers: [{ module: 'internal' }] }] } },
    },
  };
}

const curl = (args: string[], stdin?: string): Command => ({ argv: ['curl', '-sS', '--fail-with-body', '--max-time', '10', ...args], label: 'caddy admin', ...(stdin ? { stdin } : {}) });

/** Loads a config through the host's admin API (reached from its network namespace) and returns its CA. */
async function configureCaddy(lab: Lab, h: LabHost, upstreams: string[], balanced = true): Promise<string> {
  const load = await lab.netns(h, curl(['-X', 'POST', '-H', 'Content-Type: application/json', '--data-binary', '@-', 'http://127.0.0.1:2019/load'], JSON.stringify(caddySite(h, upstreams, balanced))));
  expect(load.code, load.stdout + load.stderr).toBe(0);
  const ca = await lab.netns(h, curl(['http://127.0.0.1:2019/pki/ca/local']));
  expect(ca.code, ca.stdout + ca.stderr).toBe(0);
  return (JSON.parse(ca.stdout) as { root_certificate: string }).root_certificate;
}

/** A stand-in upstream on the host's loopback (its network namespace), saying which revision answered. */
async function startUpstream(h: LabHost, port: number, revision: string): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', h.netns, process.execPath, UPSTREAM, String(port), revision], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`upstream exited ${code}`)));
    child.stdout!.once('data', () => resolve());
  });
  return child;
}

const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

async function waitThroughCaddy(url: string, servername: string, ca: string, revision: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const run = startLoad({ target: { url, servername, ca }, keepAliveClients: 0, closeClients: 1, maxRequests: 1, maxDurationMs: 2_000 });
    const { records } = await run.stop();
    if (records[0]?.status === 200 && records[0].version === revision) return;
    await sleep(100);
  }
  throw new Error(`${revision} never answered through Caddy at ${url}`);
}

describe('test hosts: Debian 11, 12 and 13 with systemd, sshd and Caddy in their own network namespaces', () => {
  let lab: Lab;
  let bootMs = 0;
  const upstreams: ChildProcess[] = [];

  beforeAll(async () => {
    // Packages and the cached roots are prepared by the global setup.
    const deps = labDeps((l) => process.stderr.write(`[lab] ${l}\n`));
    const t0 = Date.now();
    lab = await upLab(deps, { suites: ['bullseye', 'bookworm', 'trixie', 'bookworm', 'trixie'] });
    bootMs = Date.now() - t0;
    process.stderr.write(`[lab] 5 hosts running in ${bootMs} ms\n`);
  }, 900_000);

  afterAll(async () => {
    for (const u of upstreams) u.kill('SIGKILL');
    await lab?.down();
  });

  it('boots 5 hosts in parallel, each `running` under systemd over SSH as deploy, with the Debian release asked for', async () => {
    expect(lab.hosts).toHaveLength(5);
    const results = await Promise.all(
      lab.hosts.map(async (h) => {
        const r = await lab.ssh(h, { argv: ['sh', '-c', 'systemctl is-system-running; cut -d. -f1 /etc/debian_version; id -un; sudo -n id -un; systemctl is-active caddy-api ssh'] });
        return { host: h.release, out: r.stdout.trim().split('\n') };
      }),
    );
    for (const r of results) expect(r.out).toEqual(['running', r.host, 'deploy', 'root', 'active', 'active']);
    expect(lab.hosts.map((h) => h.release)).toEqual(['11', '12', '13', '12', '13']);
  });

  it('gives every host its own address, no route out, a clean HOME, and lets hosts reach each other on the bridge', async () => {
    const [a, b] = lab.hosts;
    const r = await lab.ssh(a!, { argv: ['sh', '-c', `ip -4 -o addr show dev eth0 | awk '{print $4}'; ip route show default | wc -l; ls -A ~ ; bash -c 'echo > /dev/tcp/${b!.address}/22' && echo reach`] });
    expect(r.stdout.trim().split('\n')).toEqual([`${a!.address}/24`, '0', '.ssh', 'reach']);
    expect(new Set(lab.hosts.map((h) => h.address)).size).toBe(5);
  });

  it('returns each host key fingerprint as the host presents it, and OpenSSH refuses a host whose key does not match', async () => {
    const fingerprints = new Set(lab.hosts.map((h) => h.hostKeyFingerprint));
    expect(fingerprints.size).toBe(5);
    for (const h of lab.hosts) {
      const scan = await exec.run({ argv: ['ssh-keyscan', '-t', 'ed25519', '-T', '5', h.address], label: 'keyscan' });
      const line = scan.stdout.split('\n').find((l) => l.includes('ssh-ed25519'))!;
      expect(publicKeyFingerprint(line.split(' ').slice(1).join(' '))).toBe(h.hostKeyFingerprint);
    }
    // known_hosts claiming host 2's key for host 1: refused at the handshake, before any command.
    const [a, b] = lab.hosts;
    const wrong = join(lab.knownHostsPath + '.wrong');
    await writeFile(wrong, `${a!.address} ${b!.hostPublicKey}\n`);
    const r = await exec.run({ argv: ['ssh', '-F', '/dev/null', '-i', lab.privateKeyPath, '-o', `UserKnownHostsFile=${wrong}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `deploy@${a!.address}`, 'touch', '/tmp/should-not-exist'] });
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    expect((await lab.ssh(a!, { argv: ['test', '-e', '/tmp/should-not-exist'] })).code).toBe(1);
  });

  it('runs Caddy under systemd with its admin API on the host loopback only and its own internal CA per host', async () => {
    const cas = new Set<string>();
    for (const h of lab.hosts.slice(0, 3)) {
      const local = await lab.ssh(h, { argv: ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:2019/config/'] });
      expect(local.stdout).toBe('200');
      cas.add(await configureCaddy(lab, h, ['127.0.0.1:9001']));
    }
    expect(cas.size).toBe(3);
    const fromOutside = await exec.run({ argv: ['curl', '-sS', '--max-time', '3', `http://${lab.hosts[0]!.address}:2019/config/`] });
    expect(fromOutside.code).not.toBe(0);
  });

  it('load harness, negative control: killing an upstream with long requests in flight is reported as failures, by the harness and by wrk', async () => {
    const h = lab.hosts[1]!;
    const ca = await configureCaddy(lab, h, ['127.0.0.1:9101'], false);
    const up = await startUpstream(h, 9101, 'v1');
    upstreams.push(up);
    const target = { url: `https://${h.address}/slow?ms=400`, servername: `${h.name}.lab.test`, ca };
    await waitThroughCaddy(`https://${h.address}/`, target.servername, ca, 'v1');

    const run = startLoad({ target, keepAliveClients: 4, closeClients: 4, maxRequests: 2_000, maxDurationMs: 6_000 });
    const wrk = exec.run(wrkCommand({ url: `https://${h.address}/slow?ms=400`, durationS: 3, connections: 8, threads: 2 }));
    await sleep(1_500);
    run.mark('kill -9 upstream');
    up.kill('SIGKILL');
    await exited(up);
    await sleep(1_500);
    const { records, marks } = await run.stop();
    const report = loadReport(records, marks);
    const w = parseWrk((await wrk).stdout);
    process.stderr.write(`[lab] negative control: ${JSON.stringify({ total: report.total, failed: report.failed, non2xx: report.non2xx, errors: report.errors })}; wrk ${JSON.stringify(w)}\n`);

    const inFlightAtKill = records.filter((r) => r.start < marks[0]!.at && r.end > marks[0]!.at);
    expect(inFlightAtKill.length).toBeGreaterThan(0);
    expect(inFlightAtKill.every((r) => r.status !== 200)).toBe(true);
    expect(report.failed).toBeGreaterThanOrEqual(inFlightAtKill.length);
    expect(report.byMode['keep-alive'].reusedSockets).toBeGreaterThan(0);
    expect(report.byMode.close.reusedSockets).toBe(0);
    expect(w.requests).toBeGreaterThan(0);
    expect(w.failed).toBeGreaterThan(0);
  });

  it('load harness: a switch that drains the old upstream first is counted clean, with its switch latency and no stale responses', async () => {
    const h = lab.hosts[2]!;
    const ca = await configureCaddy(lab, h, ['127.0.0.1:9201', '127.0.0.1:9202']);
    const v1 = await startUpstream(h, 9201, 'v1');
    const v2 = await startUpstream(h, 9202, 'v2');
    upstreams.push(v1, v2);
    const target = { url: `https://${h.address}/`, servername: `${h.name}.lab.test`, ca };
    await waitThroughCaddy(target.url, target.servername, ca, 'v1');

    const run = startLoad({ target, keepAliveClients: 4, closeClients: 4, maxRequests: 20_000, maxDurationMs: 8_000 });
    const wrk = exec.run(wrkCommand({ url: target.url, durationS: 3, connections: 4 }));
    await sleep(1_000);
    run.mark('switch to v2', 'v2');
    v1.kill('SIGUSR2'); // health check fails → Caddy's `first` policy moves to v2 without a reload
    await sleep(1_000);
    v1.kill('SIGTERM');
    await exited(v1);
    await sleep(1_000);
    const { records, marks } = await run.stop();
    const report = loadReport(records, marks);
    const w = parseWrk((await wrk).stdout);
    process.stderr.write(`[lab] clean switch: ${JSON.stringify({ total: report.total, failed: report.failed, switches: report.switches, versions: report.versions, p99: report.latencyMs.p99 })}; wrk ${JSON.stringify(w)}\n`);

    expect(report.failed).toBe(0);
    expect(report.versions.v1).toBeGreaterThan(0);
    expect(report.versions.v2).toBeGreaterThan(0);
    expect(report.switches[0]!.latencyMs).toBeGreaterThan(0);
    expect(report.switches[0]!.stale).toBe(0);
    expect(w.failed).toBe(0);
  });
});

describe('test hosts teardown', () => {
  it('leaves no namespace, link, mount or process after `down`', { timeout: 120_000 }, async () => {
    const deps = labDeps();
    const lab = await upLab(deps, { suites: ['bookworm', 'trixie'] });
    const leaders = await Promise.all(lab.hosts.map(async (h) => (await lab.ssh(h, { argv: ['true'] })).code));
    expect(leaders).toEqual([0, 0]);
    await lab.down();
    const residue = await labResidue(lab.id, deps.labsDir);
    expect(residue).toEqual({ netns: [], links: [], mounts: [], processes: [], dir: false });
  });

  it('caps a host at its `cpus` share: a busy loop inside it is throttled, and the cap goes with `down`', { timeout: 120_000 }, async () => {
    const lab = await upLab(labDeps(), { suites: ['bookworm'], cpus: 0.2 });
    const host = lab.hosts[0]!;
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
    const dir = v2 ? join('/sys/fs/cgroup/xamal-lab', host.name) : join('/sys/fs/cgroup/cpu/xamal-lab', host.name);
    const throttled = async () => Number(/nr_throttled (\d+)/.exec(await readFile(join(dir, 'cpu.stat'), 'utf8'))?.[1] ?? NaN);
    try {
      expect((await readFile(join(dir, v2 ? 'cpu.max' : 'cpu.cfs_quota_us'), 'utf8')).trim().split(' ')[0]).toBe('20000');
      const before = await throttled();
      const t0 = Date.now();
      // Two busy loops for 1 s of wall time: uncapped they would use 2 cores.
      const r = await lab.ssh(host, { argv: ['sh', '-c', 'for i in 1 2; do timeout 1 sh -c "while :; do :; done" & done; wait'] });
      expect(r.code).toBe(0);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1_000);
      expect((await throttled()) - before).toBeGreaterThan(3);
    } finally {
      await lab.down();
    }
    expect(existsSync(dir)).toBe(false);
  });

  it('a lab whose owner died is powered off with it and reaped by the next run', { timeout: 120_000 }, async () => {
    const deps = labDeps();
    const script = `import { labDeps, upLab } from ${JSON.stringify(join(PROJECT_ROOT, 'testkit', 'hosts', 'index.ts'))};
const lab = await upLab(labDeps(), { suites: ['bookworm'] });
process.stdout.write(lab.id + '\\n');
setInterval(() => {}, 1000);`;
    const file = join(deps.labsDir, `owner-${process.pid}.mts`);
    await writeFile(file, script);
    const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: ['ignore', 'pipe', 'inherit'], cwd: PROJECT_ROOT });
    const id = await new Promise<string>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`lab owner exited ${code}`)));
      child.stdout!.on('data', (b: Buffer) => resolve(b.toString().trim()));
    });
    expect((await labResidue(id, deps.labsDir)).processes.length).toBeGreaterThan(0);
    child.kill('SIGKILL');
    await exited(child);
    // The container powers off on its own (its nspawn got SIGTERM when the owner died)…
    for (let i = 0; i < 100 && (await labResidue(id, deps.labsDir)).processes.length > 0; i++) await sleep(100);
    expect((await labResidue(id, deps.labsDir)).processes).toEqual([]);
    // …and the next run removes what is left (namespace, links, mounts).
    expect(await reapStaleLabs(deps)).toContain(id);
    expect(await labResidue(id, deps.labsDir)).toEqual({ netns: [], links: [], mounts: [], processes: [], dir: false });
    await rm(file, { force: true });
  });
});

/** Everything of lab `id` still on this machine. */
async function labResidue(id: string, labsDir: string) {
  const netns = (await exec.run({ argv: ['ip', 'netns', 'list'] })).stdout.split('\n').filter((l) => l.startsWith(`xh${id}-`));
  const links = (await exec.run({ argv: ['ip', '-o', 'link', 'show'] })).stdout.split('\n').filter((l) => l.includes(`xv${id}`) || l.includes(`xb${id}`));
  const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').filter((l) => l.includes(`/labs/${id}/`));
  const processes: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(`--machine=xh${id}-`)) processes.push(pid);
    // A container's processes live in its root: their /proc/<pid>/root points into the lab.
    else {
      const root = await readlink(`/proc/${pid}/root`).catch(() => '');
      if (root.includes(`/labs/${id}/`)) processes.push(pid);
    }
  }
  return { netns, links, mounts, processes, dir: existsSync(join(labsDir, id)) };
}
