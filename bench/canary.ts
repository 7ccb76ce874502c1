/**
 * Issue 22 — canary releases through Caddy 2.6 on one Debian 12 test host: the deployer's own route
 * requests (deployer/commands/canary.ts: the app's route, the boot pin, the split at 10 %, the
 * ordinary route of promote and abort, in their plans' order) against two stand-in slots
 * (testkit/hosts/upstream.mjs: a graceful SIGTERM, as a release's), so the figures are Caddy's split
 * and switch, not a BEAM's boot time. Per round: start a canary (pin, boot, split) → 10,000 new
 * sessions (no cookie, a new connection each): the canary's share; 1,000 of them again with their
 * cookie: stickiness → abort under load; a canary again → promote under load. Paced HTTP load
 * (keep-alive and close clients, without cookies) runs through each round: failed requests and
 * retries of reused connections a reload reset (FACTS.md#caddy) counted.
 *
 *   npx tsx bench/canary.ts [--rounds 5] [--sessions 10000]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../localservices/config.ts';
import { appLayout, type Slot } from '../deployer/commands/layout.ts';
import { abortPlan, canaryBootRequest, canaryRouteRequest, promotePlan, type CanaryPlanInput, type CanaryState, type CanaryStep } from '../deployer/commands/canary.ts';
import { caddyCall, ensureCaddySite } from '../deployer/flows/caddy.ts';
import { ensureCaddyAdmin } from '../deployer/flows/setup.ts';
import { sshPool } from '../deployer/ssh.ts';
import type { HostSession } from '../deployer/remote.ts';
import { caddyRootCa, labDeps, upLab, type LabHost } from '../testkit/hosts/index.ts';
import { loadReport, startLoad } from '../testkit/hosts/load.ts';
import { sessionRequests } from '../testkit/hosts/sessions.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, sessions: { type: 'string', default: '10000' } } });
const rounds = Number(values.rounds);
const sessions = Number(values.sessions);
if (!(rounds >= 1 && sessions >= 100 && sessions <= 20_000)) throw new Error('--rounds ≥ 1, --sessions 100–20000');
const say = (l: string) => process.stderr.write(`[canary-bench] ${l}\n`);

const lab = await upLab(labDeps(), { suites: ['bookworm'] });
const h = lab.hosts[0]!;
const pool = sshPool({ user: 'deploy', port: 22, keys: [lab.privateKeyPath], keyData: [], connectTimeoutMs: 5_000, knownHostsPath: lab.knownHostsPath, hostKeys: {}, trustNewHosts: false });
const PORTS: Record<Slot, number> = { blue: 4000, green: 4001 };
const layout = appLayout('bench', undefined);
const site = { app: layout.app, hosts: ['bench.lab.test'], ssl: 'internal' as const, ports: [PORTS.blue, PORTS.green], healthPath: '/up' };
const input: CanaryPlanInput = { layout, site, primaryRole: 'web', drainTimeout: 10, healthPath: '/up', healthTimeout: 10, sshUser: 'deploy' };
const running = new Map<Slot, ChildProcess>();
let revisions = 0;

const start = (host: LabHost, slot: Slot) =>
  new Promise<string>((resolve, reject) => {
    const rev = `r${revisions++}`;
    const c = spawn('ip', ['netns', 'exec', host.netns, process.execPath, join(PROJECT_ROOT, 'testkit', 'hosts', 'upstream.mjs'), String(PORTS[slot]), rev], { stdio: ['ignore', 'pipe', 'inherit'] });
    c.once('error', reject);
    c.stdout!.once('data', () => (running.set(slot, c), resolve(rev)));
  });
const stop = (slot: Slot) => {
  const c = running.get(slot);
  running.delete(slot);
  return c ? new Promise<void>((r) => (c.once('exit', () => r()), c.kill('SIGTERM'))) : Promise.resolve();
};
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A plan as the flow applies it, with the stand-ins: Caddy requests as they are; `stop <role>-<slot>` is the stand-in's SIGTERM; file steps skipped (no app directory here). */
async function apply(s: HostSession, steps: readonly CanaryStep[]): Promise<void> {
  for (const step of steps) {
    if (step.kind === 'caddy') await caddyCall(s, step.request);
    else if (/^stop web-(blue|green)$/.test(step.command.label ?? '')) await stop(step.command.label!.slice('stop web-'.length) as Slot);
  }
}

/** The canary started as `deploy --canary` does: traffic pinned to the live slot, the idle one booted, then the split. */
async function startCanary(s: HostSession, live: Slot, liveRev: string): Promise<CanaryState> {
  const idle: Slot = live === 'blue' ? 'green' : 'blue';
  await caddyCall(s, canaryBootRequest(site, live));
  const rev = await start(h, idle);
  await pause(500);
  const state: CanaryState = { version: rev, slot: idle, live: { version: liveRev, slot: live }, percent: 10, startedAt: new Date().toISOString(), performer: 'bench' };
  await caddyCall(s, canaryRouteRequest(site, { percent: 10, canary: { slot: idle, version: rev }, live: state.live }));
  await pause(500);
  return state;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results: { share: number; sticky: number; stickyOf: number; abort: { failed: number; retried: number; total: number }; promote: { failed: number; retried: number; total: number } }[] = [];

try {
  const s = await pool.session(h.address);
  await ensureCaddyAdmin(s, 'deploy');
  await ensureCaddySite(s, site);
  const ca = await caddyRootCa(lab, h);
  await lab.aliasInNetns(h, ['bench.lab.test']);
  const target = { url: `https://${h.address}/`, servername: 'bench.lab.test', ca };
  let live: Slot = 'blue';
  let liveRev = await start(h, live);
  await pause(1_000);
  for (let round = 1; round <= rounds; round++) {
    // 1. A canary; the share of new sessions and their stickiness.
    let st = await startCanary(s, live, liveRev);
    const fresh = await sessionRequests({ target, cookieName: `xamal_${layout.app}`, count: sessions, concurrency: 32, maxDurationMs: 600_000 });
    const bad = fresh.filter((a) => a.status !== 200 || !a.version || a.cookie !== a.version).length;
    const share = fresh.filter((a) => a.version === st.version).length / fresh.length;
    const sample = fresh.slice(0, 1_000);
    const again = await sessionRequests({ target, cookieName: `xamal_${layout.app}`, count: sample.length, concurrency: 32, maxDurationMs: 300_000, cookieFor: (i) => sample[i]!.cookie });
    const sticky = again.filter((a, i) => a.status === 200 && a.version === sample[i]!.version && a.cookie === undefined).length;
    say(`round ${round}: ${fresh.length} new sessions, ${(share * 100).toFixed(2)} % on the canary (${bad} without a matching cookie or not 200); sticky ${sticky}/${sample.length}`);

    // 2. Abort under load.
    let load = startLoad({ target, keepAliveClients: 4, closeClients: 4, maxRequests: 200_000, maxDurationMs: 120_000, intervalMs: 20, retryReusedReset: true });
    await pause(1_000);
    await apply(s, abortPlan(input, st));
    await pause(1_500);
    const aborted = loadReport((await load.stop()).records);

    // 3. A canary again, promoted under load.
    st = await startCanary(s, live, liveRev);
    load = startLoad({ target, keepAliveClients: 4, closeClients: 4, maxRequests: 200_000, maxDurationMs: 120_000, intervalMs: 20, retryReusedReset: true });
    await pause(1_000);
    await apply(s, promotePlan(input, st));
    await pause(1_500);
    const promoted = loadReport((await load.stop()).records);
    live = st.slot;
    liveRev = st.version;
    const pick = (r: typeof aborted) => ({ failed: r.failed, retried: r.retried, total: r.total });
    results.push({ share, sticky, stickyOf: sample.length, abort: pick(aborted), promote: pick(promoted) });
    say(`round ${round}: abort ${JSON.stringify({ ...pick(aborted), errors: aborted.errors, non2xx: aborted.non2xx })}; promote ${JSON.stringify({ ...pick(promoted), errors: promoted.errors, non2xx: promoted.non2xx })}`);
  }
  const shares = results.map((r) => r.share * 100);
  const sum = (f: (r: (typeof results)[number]) => number) => results.reduce((n, r) => n + f(r), 0);
  console.log(
    `| canary 10 %, ${sessions} new sessions × ${rounds} rounds | share median ${median(shares).toFixed(2)} %, min–max ${Math.min(...shares).toFixed(2)}–${Math.max(...shares).toFixed(2)} % | sticky ${sum((r) => r.sticky)}/${sum((r) => r.stickyOf)} | abort: ${sum((r) => r.abort.failed)} failed of ${sum((r) => r.abort.total)}, ${sum((r) => r.abort.retried)} retried | promote: ${sum((r) => r.promote.failed)} failed of ${sum((r) => r.promote.total)}, ${sum((r) => r.promote.retried)} retried |`,
  );
} finally {
  for (const slot of [...running.keys()]) await stop(slot);
  await pool.close();
  await lab.down();
}
