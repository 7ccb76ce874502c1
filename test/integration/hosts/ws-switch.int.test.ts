import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { PROJECT_ROOT } from '../../../localservices/config.ts';
import { buildLabArtifacts, caddyRootCa, labDeployYml, labDeps, labFarmApi, labProject, upLab, type Lab, type LabHost } from '../../../testkit/hosts/index.ts';
import { loadReport, startLoad } from '../../../testkit/hosts/load.ts';
import { startWsLoad, wsReport } from '../../../testkit/hosts/ws-load.ts';
import { xamalCli } from '../../../testkit/cli.ts';
import { git, helloRepo } from '../../../testkit/example-repo.ts';
import { cliEntry, services } from '../../../testkit/integration.ts';

const TOKEN = 'e'.repeat(40);
const CLIENTS = 60;
const SWITCHES = 3;

const xamal = (cwd: string, args: string[]) => xamalCli(cwd, args, {}, cliEntry());

/** Polls `ok` every 100 ms until it holds or `ms` pass; resolves with whether it held. */
async function until(ok: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (ok()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return ok();
}

describe('WebSockets across a switch through Caddy: the old slot closes them (1001), clients reconnect to the new version, HTTP loses nothing', () => {
  let lab: Lab;
  let h: LabHost;
  let tmp: string;
  let api: FastifyInstance;
  let project: string;
  let ca: string;
  let v1: string;
  let v2: string;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-ws-'));
    lab = await upLab(labDeps(), { suites: ['bookworm'] });
    h = lab.hosts[0]!;
    const repo = join(tmp, 'repo');
    const src = await helloRepo(repo);
    v1 = src.commit;
    await writeFile(join(repo, 'CHANGES'), 'v2\n');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'v2');
    v2 = git(repo, 'rev-parse', 'HEAD');
    const store = await buildLabArtifacts(services(), tmp, src, [v1, v2], ['bookworm']);
    const farm = await labFarmApi(lab, store, TOKEN);
    api = farm.api;
    project = join(tmp, 'project');
    await labProject(project, {
      'config/deploy.yml': labDeployYml(lab, { service: 'hello', appPort: 4000, farmUrl: farm.url, extra: { env: { clear: { MIX_ENV: 'prod', DRAIN_TIMEOUT_MS: '10000' } } } }),
      // A second app whose slots are stand-ins (testkit/hosts/upstream.mjs) that never close their WebSockets.
      'config/deploy.standin.yml': stringify({ service: 'standin', caddy: { hosts: ['standin.lab.test'], ssl: 'internal', app_port: 4100 } }),
      '.xamal/secrets-common': `XAMAL_FARM_TOKEN=${TOKEN}\n`,
    });
  }, 1_500_000);

  afterAll(async () => {
    await api?.close();
    await lab?.down();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('setup and deploy: GET /ws through Caddy answers the deployed version and echoes', { timeout: 300_000 }, async () => {
    const setup = await xamal(project, ['setup']);
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    const r = await xamal(project, ['deploy', '--version', v1, '-q']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    ca = await caddyRootCa(lab, h);
    const caddy = await lab.ssh(h, { argv: ['caddy', 'version'] });
    process.stderr.write(`[ws-switch] ${h.name}: caddy ${caddy.stdout.trim()}\n`);
    const one = startWsLoad({ target: { url: `wss://${h.address}/ws`, servername: 'hello.lab.test', ca }, clients: 1, maxDurationMs: 10_000, messageIntervalMs: 100 });
    expect(await until(() => one.current()[0] !== undefined, 8_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    const run = await one.stop();
    expect(run.records[0]).toMatchObject({ version: v1, closedBy: 'client', code: 1000 });
    expect(run.records[0]!.echoed).toBeGreaterThan(0);
  });

  it(`${CLIENTS} WebSocket clients plus HTTP load, ${SWITCHES} switches: 0 failed HTTP requests, every socket on the old slot ends with a close frame 1001 (no 1006, no reset), every client ends on the new version`, { timeout: 600_000 }, async () => {
    const target = { url: `https://${h.address}/up`, servername: 'hello.lab.test', ca };
    const http = startLoad({ target, keepAliveClients: 2, closeClients: 2, maxRequests: 100_000, maxDurationMs: 400_000, intervalMs: 40 });
    const ws = startWsLoad({ target: { ...target, url: `wss://${h.address}/ws` }, clients: CLIENTS, maxDurationMs: 400_000, messageIntervalMs: 1000 });
    const moved: boolean[] = [];
    try {
      expect(await until(() => ws.current().every((v) => v === v1), 20_000), JSON.stringify(ws.current())).toBe(true);
      for (let i = 0; i < SWITCHES; i++) {
        const to = i % 2 === 0 ? v2 : v1;
        ws.mark(`switch ${i + 1}`, to);
        http.mark(`switch ${i + 1}`, to);
        const r = i % 2 === 0 ? await xamal(project, ['deploy', '--version', v2, '-q']) : await xamal(project, ['rollback', v1, '-q']);
        expect(r.code, r.stdout + r.stderr).toBe(0);
        moved.push(await until(() => ws.current().every((v) => v === to), 15_000));
      }
    } finally {
      const w = await ws.stop();
      const hr = await http.stop();
      const report = wsReport(w.records);
      const httpReport = loadReport(hr.records, hr.marks);
      process.stderr.write(`[ws-switch] ${SWITCHES} switches: websockets ${JSON.stringify(report)}; http ${JSON.stringify({ total: httpReport.total, failed: httpReport.failed, errors: httpReport.errors, non2xx: httpReport.non2xx })}\n`);
      expect(httpReport.failed).toBe(0);
      expect(report.abnormal).toBe(0);
      expect(report.resets).toBe(0);
      expect(report.connectErrors).toEqual({});
      // Every switch closed every client's socket on the old slot, each with a close frame 1001.
      expect(Object.keys(report.serverCloses)).toEqual(['1001']);
      expect(report.serverCloses['1001']).toBeGreaterThanOrEqual(CLIENTS * SWITCHES);
      expect(report.sameVersionReconnects).toBe(0);
      expect(report.reconnectMs.count).toBeGreaterThanOrEqual(CLIENTS * SWITCHES);
      expect(report.finalVersions).toEqual({ [SWITCHES % 2 === 1 ? v2 : v1]: CLIENTS });
      expect(report.echoed).toBeGreaterThan(0);
    }
    expect(moved).toEqual(Array(SWITCHES).fill(true));
  });

  it('an app that does not close its WebSockets: when it is killed after its drain, Caddy 2.6 ends each client connection with no close frame (1006) and no reset; clients reconnect to the new slot', { timeout: 300_000 }, async () => {
    expect((await xamal(project, ['setup', '-d', 'standin'])).code).toBe(0);
    // Caddy 2.6 has neither stream_close_delay nor stream_timeout (both came in 2.7).
    const validate = await lab.ssh(h, { argv: ['sh', '-c', 'printf %s "$0" > /tmp/xamal-stream.json && caddy validate --config /tmp/xamal-stream.json 2>&1 | tail -1', JSON.stringify({ apps: { http: { servers: { s: { listen: [':18080'], routes: [{ handle: [{ handler: 'reverse_proxy', upstreams: [{ dial: '127.0.0.1:1' }], stream_close_delay: '5s' }] }] } } } } })] });
    process.stderr.write(`[ws-switch] caddy validate with stream_close_delay: ${validate.stdout.trim()}\n`);
    const procs: ChildProcess[] = [];
    const start = async (port: number, revision: string) => {
      const child = spawn('ip', ['netns', 'exec', h.netns, process.execPath, join(PROJECT_ROOT, 'testkit', 'hosts', 'upstream.mjs'), String(port), revision], { stdio: ['ignore', 'pipe', 'inherit'] });
      procs.push(child);
      await new Promise<void>((resolve, reject) => (child.once('error', reject), child.stdout!.once('data', () => resolve())));
      return child;
    };
    try {
      const blue = await start(4100, 'old');
      const ws = startWsLoad({ target: { url: `wss://${h.address}/ws`, servername: 'standin.lab.test', ca }, clients: 10, maxDurationMs: 60_000, messageIntervalMs: 200, rampMs: 200 });
      expect(await until(() => ws.current().every((v) => v === 'old'), 15_000)).toBe(true);
      await start(4101, 'new');
      // As systemd does: SIGTERM, the drain (2 s here), then SIGKILL. The stand-in closes no WebSocket.
      blue.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 2_000));
      expect(ws.current().every((v) => v === 'old')).toBe(true);
      blue.kill('SIGKILL');
      expect(await until(() => ws.current().every((v) => v === 'new'), 15_000)).toBe(true);
      const report = wsReport((await ws.stop()).records);
      process.stderr.write(`[ws-switch] stand-in killed without closing its WebSockets: ${JSON.stringify(report)}\n`);
      expect(report.serverCloses).toEqual({ '1006': 10 });
      expect(report.resets).toBe(0);
      expect(report.finalVersions).toEqual({ new: 10 });
    } finally {
      for (const p of procs) p.kill('SIGKILL');
    }
  });
});
