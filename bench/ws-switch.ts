/**
 * Issue 22 — WebSockets across switches: examples/hello (its `/ws` endpoint closes every open
 * WebSocket with 1001 on SIGTERM) deployed by the real CLI to one test host per Debian release, each
 * behind its Caddy; on each host `--clients` WebSocket clients (Phoenix's reconnect back-off, a
 * message a second, echoed) plus paced HTTP load through Caddy; `--switches` deploys (v2, then a
 * rollback to v1, and so on), each to every host at once, as a team runs them. Reports failed HTTP
 * requests, the server's closes by code (abnormal = 1006 or a reset), and the time from a close to
 * the first message from the new version on the client's next connection (p50, p99, max), where that
 * time goes (close → dial, TCP, TLS, Caddy + the app's 101, first message), the TLS sessions the
 * clients offered and the hosts' Caddy resumed, and the load generator's own event-loop delay (a
 * timer or a handshake waiting for the loop is the load generator's time, not the server's). Every
 * client of every host runs in this process's thread (its delay measured during the switches);
 * `--thread-per-host` gives each host's WebSocket clients a worker thread of their own (each
 * thread's delay measured over its life) — no faster on 2 cores (BENCHMARKS.md).
 *
 *   npx tsx bench/ws-switch.ts [--switches 20] [--clients 200] [--suites bullseye,bookworm,trixie] [--thread-per-host]
 *
 * Runs as root (test hosts) under the integration lock; needs the local services.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { serviceEndpoints, servicesConfig, servicesDown, servicesUp } from '../localservices/index.ts';
import type { DebianSuite } from '../images/distros.ts';
import { commitFiles, helloRepo } from '../testkit/example-repo.ts';
import { caddyRootCa, LAB_SUITES, labDeployYml, labDeps, labProject, upLab } from '../testkit/hosts/index.ts';
import { startTestFarm } from '../testkit/farm.ts';
import { loadReport, startLoad } from '../testkit/hosts/load.ts';
import { startWsLoad, wsReport } from '../testkit/hosts/ws-load.ts';
import { startWsLoadThread, type WsLoadThreadRun } from '../testkit/hosts/ws-load-thread.ts';
import { xamalCli } from '../testkit/cli.ts';

const { values } = parseArgs({ options: { switches: { type: 'string', default: '20' }, clients: { type: 'string', default: '200' }, suites: { type: 'string', default: LAB_SUITES.join(',') }, 'thread-per-host': { type: 'boolean', default: false } } });
const switches = Number(values.switches);
const clients = Number(values.clients);
const suites = values.suites.split(',') as DebianSuite[];
if (!(switches >= 1 && clients >= 1 && suites.every((s) => (LAB_SUITES as readonly string[]).includes(s)))) throw new Error(`--switches ≥ 1, --clients ≥ 1, --suites from ${LAB_SUITES.join(',')}`);

const say = (l: string) => process.stderr.write(`[ws-switch] ${l}\n`);
const sc = servicesConfig();
// Stops at the end only what it started here (the next user of the shared ports starts its own).
const { started } = await servicesUp(sc, ['redis', 'dockerd', 'registry', 's3'], say);
const tmp = await mkdtemp(join(tmpdir(), 'xamal-bench-ws-'));
const TOKEN = randomBytes(20).toString('hex');
const lab = await upLab(labDeps(), { suites });
const until = async (ok: () => boolean, ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end && !ok()) await new Promise((r) => setTimeout(r, 100));
  return ok();
};

try {
  const t0 = performance.now();
  const repo = join(tmp, 'repo');
  const v1 = (await helloRepo(repo)).commit;
  const v2 = await commitFiles(repo, 'v2', { CHANGES: 'v2\n' });
  // A real farm (API + worker + S3 store) builds both versions for each host's release, as bench/deploy.ts does.
  const farm = await startTestFarm({ services: serviceEndpoints(sc), prefix: `bench-ws-${randomBytes(3).toString('hex')}`, host: lab.gateway, token: TOKEN, workDir: tmp, cacheDir: join(sc.cacheDir, 'test-builds') });
  for (const v of [v1, v2]) for (const suite of suites) await farm.build('hello', { url: `file://${repo}`, commit: v }, suite);
  say(`${suites.join(', ')}: hosts up and 2 versions built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const project = join(tmp, 'project');
  await labProject(project, {
    'config/deploy.yml': labDeployYml(lab, { service: 'hello', appPort: 4000, farmUrl: farm.url, extra: { env: { clear: { MIX_ENV: 'prod', DRAIN_TIMEOUT_MS: '10000' } } } }),
    '.xamal/secrets-common': `XAMAL_FARM_TOKEN=${TOKEN}\n`,
  });
  const cli = async (args: string[]) => {
    const r = await xamalCli(project, args);
    if (r.code !== 0) throw new Error(`xamal ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  };
  await cli(['setup']);
  await cli(['deploy', '--version', v1, '-q']);

  const loads = await Promise.all(
    lab.hosts.map(async (h) => {
      const target = { url: `https://${h.address}/up`, servername: 'hello.lab.test', ca: await caddyRootCa(lab, h) };
      return {
        host: h,
        http: startLoad({ target, keepAliveClients: 2, closeClients: 2, maxRequests: 500_000, maxDurationMs: 900_000, intervalMs: 40 }),
        ws: (values['thread-per-host'] ? startWsLoadThread : startWsLoad)({ target: { ...target, url: `wss://${h.address}/ws` }, clients, maxDurationMs: 900_000, maxConnections: clients * (switches + 5) * 3, rampMs: 3_000 }),
      };
    }),
  );
  const everyOn = (v: string) => loads.every((l) => l.ws.current().every((x) => x === v));
  if (!(await until(() => everyOn(v1), 60_000))) throw new Error('not every WebSocket client connected to v1 within 60 s');
  let laggards = 0;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const ts = performance.now();
  for (let i = 0; i < switches; i++) {
    const to = i % 2 === 0 ? v2 : v1;
    for (const l of loads) l.ws.mark(`switch ${i + 1}`, to), l.http.mark(`switch ${i + 1}`, to);
    await cli(i % 2 === 0 ? ['deploy', '--version', v2, '-q'] : ['rollback', v1, '-q']);
    if (!(await until(() => everyOn(to), 20_000))) laggards++;
  }
  const switchS = (performance.now() - ts) / 1000;
  loop.disable();
  const ms = (ns: number) => Math.round(ns / 1e5) / 10;
  const lag = `event-loop delay of the ${values['thread-per-host'] ? 'main thread (HTTP load)' : 'load process (every client)'} during the switches p50 ${ms(loop.percentile(50))} ms, p99 ${ms(loop.percentile(99))} ms, max ${ms(loop.max)} ms`;
  const rows: string[] = [];
  for (const l of loads) {
    const w = wsReport((await l.ws.stop()).records);
    const wl = (l.ws as Partial<WsLoadThreadRun>).loopDelayMs?.();
    if (wl) say(`${l.host.name}: event-loop delay of its WebSocket clients' thread p50 ${wl.p50} ms, p99 ${wl.p99} ms, max ${wl.max} ms`);
    const run = await l.http.stop();
    const http = loadReport(run.records, run.marks);
    say(`${l.host.name}: ${JSON.stringify({ websockets: w, http: { total: http.total, failed: http.failed, errors: http.errors, non2xx: http.non2xx } })}`);
    rows.push(
      `| ${l.host.name} (Debian ${l.host.release}) | ${switches} switches, ${clients} WebSockets + HTTP | HTTP: ${http.failed} failed of ${http.total}; WebSocket closes by the server ${JSON.stringify(w.serverCloses)}, abnormal (1006/reset) ${w.abnormal}, failed upgrades ${Object.values(w.connectErrors).reduce((a, b) => a + b, 0)}, same-version reconnects ${w.sameVersionReconnects} | reconnect to new version (${w.reconnectMs.count}): p50 ${w.reconnectMs.p50} ms, p99 ${w.reconnectMs.p99} ms, max ${w.reconnectMs.max} ms (by version reconnected to ${JSON.stringify(w.reconnectByVersionMs)}); clients ending on the last version ${JSON.stringify(w.finalVersions)}; phases p50/p99 ms ${Object.entries(w.reconnectPhasesMs).map(([k, v]) => `${k} ${v.p50}/${v.p99}`).join(', ')}; TLS resumed ${w.tls.resumed} of ${w.tls.offered} offered (${w.tls.handshakes} handshakes) |`,
    );
  }
  say(`${switches} switches in ${switchS.toFixed(0)} s; switches after which some client had not moved within 20 s: ${laggards}; ${lag}`);
  console.log(rows.join('\n'));
  await farm.close();
} finally {
  await lab.down();
  await rm(tmp, { recursive: true, force: true });
  await servicesDown(sc, started, say);
}
