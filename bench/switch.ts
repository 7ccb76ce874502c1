/**
 * P5 — the Caddy switch the deployer uses, under load: both slots listed permanently with the
 * `first` policy and health checks (deployer/commands/caddy.ts, set up through the admin API by the
 * deployer's own flow), the new slot started, and as soon as it answers on its port the old one
 * stopped gracefully. 20 switches back and forth on one test host; counts failed requests (harness
 * and wrk) and the switch latency: new slot healthy on its port → first response through Caddy
 * from the new version. The slots are stand-in upstreams (testkit/hosts/upstream.mjs) so the figure is
 * Caddy's, not a BEAM's boot time.
 *
 *   npx tsx bench/switch.ts [--switches 20]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../localservices/config.ts';
import { appLayout } from '../deployer/commands/layout.ts';
import { ensureCaddySite } from '../deployer/flows/caddy.ts';
import { sshPool } from '../deployer/ssh.ts';
import { ensureCaddyAdmin } from '../deployer/flows/setup.ts';
import { caddyRootCa, labDeps, upLab, type LabHost } from '../testkit/hosts/index.ts';
import { loadReport, parseWrk, startLoad, wrkCommand } from '../testkit/hosts/load.ts';

const { values } = parseArgs({ options: { switches: { type: 'string', default: '20' } } });
const switches = Number(values.switches);
const lab = await upLab(labDeps(), { suites: ['bookworm'] });
const h = lab.hosts[0]!;
const pool = sshPool({ user: 'deploy', port: 22, keys: [lab.privateKeyPath], keyData: [], connectTimeoutMs: 5_000, knownHostsPath: lab.knownHostsPath, hostKeys: {}, trustNewHosts: false });
const PORTS = [4000, 4001];
const site = { app: appLayout('bench', undefined).app, hosts: ['bench.lab.test'], ssl: 'internal' as const, ports: PORTS, healthPath: '/up' };

const start = (host: LabHost, port: number, rev: string) =>
  new Promise<ChildProcess>((resolve, reject) => {
    const c = spawn('ip', ['netns', 'exec', host.netns, process.execPath, join(PROJECT_ROOT, 'testkit', 'hosts', 'upstream.mjs'), String(port), rev], { stdio: ['ignore', 'pipe', 'inherit'] });
    c.once('error', reject);
    c.stdout!.once('data', () => resolve(c));
  });
const stop = (c: ChildProcess) => new Promise<void>((r) => (c.once('exit', () => r()), c.kill('SIGTERM')));

try {
  const s = await pool.session(h.address);
  await ensureCaddyAdmin(s, 'deploy');
  await ensureCaddySite(s, site);
  const ca = await caddyRootCa(lab, h);
  await lab.aliasInNetns(h, ['bench.lab.test']);
  let live = await start(h, PORTS[0]!, 'r0');
  let liveIdx = 0;
  await new Promise((r) => setTimeout(r, 1_000));
  const load = startLoad({ target: { url: `https://${h.address}/`, servername: 'bench.lab.test', ca }, keepAliveClients: 4, closeClients: 4, maxRequests: 500_000, maxDurationMs: 600_000 });
  const wrk = lab.netns(h, wrkCommand({ url: 'https://bench.lab.test/', durationS: Math.ceil(switches * 1.5) + 5, connections: 4 }));
  await new Promise((r) => setTimeout(r, 1_000));
  for (let i = 1; i <= switches; i++) {
    const idle = 1 - liveIdx;
    const next = await start(h, PORTS[idle]!, `r${i}`);
    load.mark(`switch ${i}`, `r${i}`);
    await stop(live);
    live = next;
    liveIdx = idle;
    await new Promise((r) => setTimeout(r, 1_000));
  }
  const run = await load.stop();
  const report = loadReport(run.records, run.marks);
  const w = parseWrk((await wrk).stdout);
  live.kill('SIGTERM');
  const lat = report.switches.map((x) => x.latencyMs ?? NaN).sort((a, b) => a - b);
  console.log(`| ${switches} switches under load | harness: ${report.failed} failed of ${report.total} (${JSON.stringify(report.errors)}, non-2xx ${JSON.stringify(report.non2xx)}); wrk: ${w.failed} failed of ${w.requests} | latency median ${lat[Math.floor(lat.length / 2)]} ms, min–max ${lat[0]}–${lat.at(-1)} ms; stale ${report.switches.reduce((n, x) => n + x.stale, 0)} |`);
} finally {
  await pool.close();
  await lab.down();
}
