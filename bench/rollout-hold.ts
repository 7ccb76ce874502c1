/**
 * Issue 22, item 3 and `rollout.max_5xx_percent` — what a failing version's rollback loses through
 * Caddy, and what the app's access log counts, against the Caddy binary the test hosts run (Debian's
 * 2.6.2), started per run in a network and mount namespace of its own (`unshare -n -m`: its own
 * loopback, a tmpfs on /var/log/caddy; needs root). The deployer's own route and access log
 * (`planCaddy`, `planAccessLog` through the admin API) front two stand-in slots: the new version in
 * blue, whose health path answers 503 from 2 s on (Caddy's checks take it out at once), and the old
 * version in green, which starts listening when a rollback would have it back — after the watch's
 * failed checks and a boot: +7 s with `interval: 0.25s`, +16 s with the default 2 s. Paced load through
 * Caddy (2 paths × a keep-alive and a close client, every 40 ms, each waiting up to 30 s). Per run:
 * the requests lost other than the new version's own 5xx (Caddy's 503 after try_duration), the
 * slowest answer, and the access log's counts next to the clients' own (`countAccessLogCommand`).
 * Modes: `before` (no watch: try_duration 5 s), `watch` (0.25 s interval: 17 s), `default` (2 s: 27 s),
 * `5xx` (no failing health; /boom answers 500: the counts only).
 *
 *   flock /tmp/xamal-int.lock npx tsx bench/rollout-hold.ts [--runs 5] [--modes before,watch,default,5xx]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { accessLogFile, countAccessLogCommand, parseAccessLogCount, planAccessLog } from '../deployer/commands/access-log.ts';
import { appSite, planCaddy, serverFor } from '../deployer/commands/caddy.ts';
import { appLayout } from '../deployer/commands/layout.ts';
import { validateDeployConfig } from '../deployer/config/load.ts';
import { startLoad, type RequestRecord } from '../testkit/hosts/load.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, modes: { type: 'string', default: 'before,watch,default,5xx' }, inner: { type: 'string' }, dir: { type: 'string' } } });
type Mode = 'before' | 'watch' | 'default' | '5xx';

const api = (method: string, path: string, body?: unknown) => {
  const out = execFileSync('curl', ['-sS', '-X', method, ...(body !== undefined ? ['-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body)] : []), '-w', '\n%{http_code}', `http://127.0.0.1:2019${path}`], { encoding: 'utf8' });
  const i = out.lastIndexOf('\n');
  if (Number(out.slice(i + 1)) !== 200) throw new Error(`Caddy ${method} ${path}: ${out}`);
  return out.slice(0, i);
};
const current = () => {
  const b = api('GET', '/config/');
  return b.trim() ? (JSON.parse(b) as Record<string, never>) : null;
};

/** Inside the namespaces, with Caddy up: one run. Prints one JSON line. */
async function inner(mode: Mode, dir: string): Promise<void> {
  const rollout = mode === 'before' ? undefined : { watch: '40s', interval: mode === 'default' ? '2s' : '0.25s', max_5xx_percent: 10 };
  const cfg = validateDeployConfig({ service: 'hello', servers: ['10.0.0.1'], caddy: { hosts: ['hello.lab.test'], ssl: 'internal', app_port: 9001 }, ...(rollout ? { rollout } : {}) });
  const site = { ...appSite(cfg, appLayout('hello', undefined)), accessLog: true };
  for (const r of planCaddy(current(), site).requests) api(r.method, r.path, r.body);
  const server = serverFor(site);
  for (const r of planAccessLog(current(), { app: 'hello', hosts: site.hosts, server: server.name, port: '443', on: true }).requests) api(r.method, r.path, r.body);
  const t0 = Date.now();
  const slot = (port: number, version: string, failAtMs: number) =>
    createServer((req, res) => {
      const code = req.url === '/boom' ? 500 : req.url === '/up' && Date.now() - t0 >= failAtMs ? 503 : 200;
      res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify({ revision: version }));
    }).listen(port, '127.0.0.1');
  const [bluePort, greenPort] = site.ports as [number, number];
  const failAt = mode === '5xx' ? Infinity : 2000;
  const blue = slot(bluePort, 'new', failAt);
  await sleep(1500);
  const ca = readFileSync(`${dir}/data/caddy/pki/authorities/local/root.crt`, 'utf8');
  const size0 = Number(execFileSync('sh', ['-c', 'stat -c %s "$1" 2>/dev/null || echo 0', 'sh', accessLogFile('hello')], { encoding: 'utf8' }).trim());
  const loads = (mode === '5xx' ? ['/up', '/boom'] : ['/up', '/']).map((p) =>
    startLoad({ target: { url: `https://127.0.0.1${p}`, servername: 'hello.lab.test', ca }, keepAliveClients: 1, closeClients: 1, maxRequests: 100_000, maxDurationMs: 60_000, intervalMs: 40, requestTimeoutMs: 30_000 }),
  );
  let green: ReturnType<typeof slot> | undefined;
  if (mode !== '5xx') {
    await sleep(failAt + (mode === 'default' ? 16_000 : 7_000) - (Date.now() - t0));
    green = slot(greenPort, 'old', Infinity);
    await sleep(2000);
    blue.close();
    await sleep(1000);
  } else await sleep(5000);
  const recs: RequestRecord[] = (await Promise.all(loads.map(async (l) => (await l.stop()).records))).flat();
  const cmd = countAccessLogCommand('hello', size0);
  const counted = parseAccessLogCount(execFileSync(String(cmd.argv[0]), cmd.argv.slice(1).map(String), { encoding: 'utf8' }));
  const own = (r: RequestRecord) => r.version === 'new' && (r.status ?? 0) >= 500;
  const lost = recs.filter((r) => !own(r) && !(r.error === undefined && (r.status ?? 0) < 300));
  const route = current() as unknown as { apps: { http: { servers: { xamal: { routes: { handle: { load_balancing: { try_duration: string } }[] }[] } } } } };
  console.log(JSON.stringify({
    mode,
    tryDuration: route.apps.http.servers.xamal.routes[0]!.handle[0]!.load_balancing.try_duration,
    requests: recs.length,
    ownErrors: recs.filter(own).length,
    lost: lost.map((r) => [r.status ?? r.error, Math.round(r.end - r.start)]),
    slowestMs: Math.round(Math.max(...recs.map((r) => r.end - r.start))),
    clients: { answers: recs.filter((r) => r.status !== undefined).length, errors5xx: recs.filter((r) => (r.status ?? 0) >= 500).length },
    accessLog: counted && { answers: counted.answers, errors5xx: counted.errors5xx },
  }));
  blue.close();
  green?.close();
}

/** One run in fresh namespaces: Caddy with only its admin API, then `inner`. */
function run(mode: Mode): Record<string, unknown> {
  const dir = `/tmp/xamal-rollout-hold-${process.pid}`;
  const self = fileURLToPath(import.meta.url);
  const script = `set -e; ip link set lo up; mount -t tmpfs tmpfs /var/log/caddy; rm -rf "$1"; mkdir -p "$1/data"
echo '{"admin":{"listen":"127.0.0.1:2019"}}' > "$1/boot.json"
XDG_DATA_HOME="$1/data" XDG_CONFIG_HOME="$1/conf" caddy run --config "$1/boot.json" > "$1/caddy.log" 2>&1 & P=$!
sleep 1.5; npx tsx "$2" --inner "$3" --dir "$1"; r=$?; kill $P; wait $P 2>/dev/null; rm -rf "$1"; exit $r`;
  const r = spawnSync('unshare', ['-n', '-m', 'sh', '-c', script, 'sh', dir, self, mode], { encoding: 'utf8', timeout: 120_000 });
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || !line.startsWith('{')) throw new Error(`${mode}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(line) as Record<string, unknown>;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

if (values.inner) {
  await inner(values.inner as Mode, values.dir!);
  process.exit(0);
}
for (const mode of values.modes.split(',') as Mode[]) {
  const runs = Array.from({ length: Number(values.runs) }, () => run(mode));
  for (const r of runs) console.error(JSON.stringify(r));
  const lost = runs.map((r) => (r.lost as unknown[]).length);
  const slow = runs.map((r) => r.slowestMs as number);
  const agree = runs.every((r) => JSON.stringify(r.clients) === JSON.stringify(r.accessLog));
  console.log(`${mode} (try_duration ${String(runs[0]!.tryDuration)}), ${runs.length} runs: lost beyond the new version's own 5xx median ${median(lost)} (${Math.min(...lost)}–${Math.max(...lost)}); slowest answer median ${median(slow)} ms (${Math.min(...slow)}–${Math.max(...slow)}); access log counts = clients' counts in ${runs.filter((r) => JSON.stringify(r.clients) === JSON.stringify(r.accessLog)).length}/${runs.length}${agree ? '' : ' (see the runs above)'}`);
}
