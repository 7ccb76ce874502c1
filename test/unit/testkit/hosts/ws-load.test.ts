import { describe, expect, it } from 'vitest';
import { startWsLoad, wsReport, type WsConnectionRecord } from '../../../../testkit/hosts/ws-load.ts';

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
    // Client 0: closed at 100, dialled at 130 (after a failed upgrade), upgraded at 131, message at 140.
    expect(r.reconnectPhasesMs).toEqual({ wait: { p50: 10, p99: 30 }, upgrade: { p50: 1, p99: 1 }, firstMessage: { p50: 9, p99: 49 } });
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
});

describe('WebSocket load bounds', () => {
  it('refuses to connect anywhere but loopback or a test lab', () => {
    expect(() => startWsLoad({ target: { url: 'wss://example.com/ws' }, clients: 1, maxDurationMs: 1 })).toThrow(/loopback or test-lab/);
    expect(() => startWsLoad({ target: { url: 'ws://127.0.0.1:1/ws' }, clients: 0, maxDurationMs: 1 })).toThrow(/positive/);
  });
});
