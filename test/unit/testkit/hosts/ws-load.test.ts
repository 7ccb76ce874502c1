import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { startWsLoad, wsReport, type WsConnectionRecord } from '../../../../testkit/hosts/ws-load.ts';
import { startWsLoadThread } from '../../../../testkit/hosts/ws-load-thread.ts';

const conn = (client: number, start: number, end: number, patch: Partial<WsConnectionRecord> = {}): WsConnectionRecord => ({
  client,
  start,
  openAt: start + 1,
  version: 'v1',
  versionAt: start + 2,
  end,
  code: 1001,
  closedBy: 'server',
  sent: 1,
  echoed: 1,
  ...patch,
});

describe('WebSocket load report', () => {
  it('measures reconnect time from the server close to the first message of another version, per client', () => {
    const r = wsReport([
      conn(0, 0, 100),
      conn(0, 110, 120, { connectError: 'Unexpected server response: 502', openAt: undefined, version: undefined, versionAt: undefined, code: undefined, closedBy: undefined }),
      conn(0, 130, 500, { version: 'v2', versionAt: 140, closedBy: 'client', code: 1000 }),
      conn(1, 0, 200),
      conn(1, 210, 500, { version: 'v2', versionAt: 260, closedBy: 'client', code: 1000 }),
    ]);
    expect(r.reconnectMs).toEqual({ count: 2, p50: 40, p99: 60, max: 60 });
    expect(r.reconnectByVersionMs).toEqual({ v2: { count: 2, p50: 40, p99: 60 } });
    // Client 0: closed at 100, dialled at 130 (after a failed upgrade), upgraded at 131, message at 140.
    expect(r.reconnectPhasesMs).toMatchObject({ wait: { p50: 10, p99: 30 }, upgrade: { p50: 1, p99: 1 }, firstMessage: { p50: 9, p99: 49 } });
    expect(r.connectErrors).toEqual({ 'Unexpected server response: 502': 1 });
    expect(r.serverCloses).toEqual({ '1001': 2 });
    expect(r.finalVersions).toEqual({ v2: 2 });
    expect(r).toMatchObject({ abnormal: 0, resets: 0, sameVersionReconnects: 0, connections: 5 });
  });

  it('counts a server close without a close frame (1006) or with a reset as abnormal, and a reconnect to the same version', () => {
    const r = wsReport([conn(0, 0, 100, { code: 1006 }), conn(0, 110, 200, { socketError: 'ECONNRESET' }), conn(0, 210, 300, { closedBy: 'client', code: 1000 })]);
    expect(r).toMatchObject({ abnormal: 2, resets: 1, sameVersionReconnects: 2, serverCloses: { '1006': 1, '1001': 1 } });
    expect(r.reconnectMs.count).toBe(0);
  });

  it('does not count the client\'s own closes as the server\'s', () => {
    expect(wsReport([conn(0, 0, 10, { closedBy: 'client', code: 1000 })]).serverCloses).toEqual({});
  });

  it('splits the upgrade into TCP, TLS and HTTP, and counts TLS sessions offered and resumed', () => {
    const r = wsReport([
      conn(0, 0, 100, { tcpAt: 0.5, tlsAt: 0.8, tlsOffered: false, tlsResumed: false }),
      conn(0, 110, 500, { tcpAt: 112, tlsAt: 117, openAt: 120, version: 'v2', versionAt: 125, closedBy: 'client', code: 1000, tlsOffered: true, tlsResumed: true }),
    ]);
    expect(r.reconnectPhasesMs).toMatchObject({ wait: { p50: 10 }, upgrade: { p50: 10 }, tcp: { p50: 2 }, tls: { p50: 5 }, http: { p50: 3 }, firstMessage: { p50: 5 } });
    expect(r.tls).toEqual({ handshakes: 2, offered: 1, resumed: 1 });
  });
});

describe.each([
  ['in this thread', startWsLoad],
  ['in a worker thread of their own', startWsLoadThread],
])('WebSocket load clients %s', (_where, start) => {
  it('redial after a server close 1001 and offer their previous TLS session, which a TLS 1.3 server resumes', { timeout: 20_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xamal-ws-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=ws.lab.test', '-addext', 'subjectAltName=DNS:ws.lab.test', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const server = createServer({ cert, key: readFileSync(join(dir, 'key.pem'), 'utf8') });
    const wss = new WebSocketServer({ server });
    let served = 0;
    wss.on('connection', (sock) => {
      served++;
      sock.send('{"revision":"r1"}');
      setTimeout(() => sock.close(1001, 'going away'), 50);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    try {
      const load = start({ target: { url: `wss://127.0.0.1:${port}/ws`, servername: 'ws.lab.test', ca: cert }, clients: 2, maxDurationMs: 10_000, maxConnections: 8, rampMs: 0, messageIntervalMs: 0 });
      while (served < 8) await new Promise((r) => setTimeout(r, 20));
      const { records } = await load.stop();
      const r = wsReport(records);
      expect(records.every((x) => x.end >= x.start)).toBe(true);
      // Each client's last connection may be stopped before its first message arrived (a busy machine): only those that got one have versionAt.
      const versioned = records.filter((x) => x.versionAt !== undefined);
      expect(versioned.length).toBeGreaterThanOrEqual(6);
      expect(versioned.every((x) => x.versionAt! >= x.start)).toBe(true);
      expect(r.serverCloses['1001']).toBeGreaterThanOrEqual(6);
      expect(r.connectErrors).toEqual({});
      // Each client's first dial has no session to offer; every later one offers it and is resumed.
      expect(r.tls).toEqual({ handshakes: 8, offered: 6, resumed: 6 });
    } finally {
      wss.close();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('WebSocket load stopped while a client dials', () => {
  it('records the abandoned dial as closed by the client, not as a failed upgrade', { timeout: 20_000 }, async () => {
    // A plain HTTP server that never answers the upgrade: the client stays connecting until stop().
    const { createServer: createHttpServer } = await import('node:http');
    let upgrades = 0;
    const server = createHttpServer();
    server.on('upgrade', () => upgrades++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    try {
      const load = startWsLoad({ target: { url: `ws://127.0.0.1:${port}/ws` }, clients: 1, maxDurationMs: 10_000, maxConnections: 1, rampMs: 0 });
      while (upgrades < 1) await new Promise((r) => setTimeout(r, 10));
      const { records } = await load.stop();
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ closedBy: 'client' });
      expect(records[0]!.connectError).toBeUndefined();
      expect(wsReport(records).connectErrors).toEqual({});
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('WebSocket load bounds', () => {
  it('refuses to connect anywhere but loopback or a test lab', () => {
    expect(() => startWsLoad({ target: { url: 'wss://example.com/ws' }, clients: 1, maxDurationMs: 1 })).toThrow(/loopback or test-lab/);
    expect(() => startWsLoad({ target: { url: 'ws://127.0.0.1:1/ws' }, clients: 0, maxDurationMs: 1 })).toThrow(/positive/);
  });
});
