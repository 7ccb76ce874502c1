import { describe, expect, it } from 'vitest';
import { loadReport, parseWrk, startLoad, wrkCommand, type LoadOptions, type RequestRecord } from '../../../../testkit/hosts/load.ts';

const rec = (start: number, end: number, patch: Partial<RequestRecord> = {}): RequestRecord => ({ client: 0, mode: 'keep-alive', start, end, reused: false, status: 200, version: 'v1', ...patch });

describe('load report', () => {
  it('counts non-2xx and connection errors as failures, by kind and by client mode', () => {
    const r = loadReport([
      rec(0, 1),
      rec(1, 2, { status: 502 }),
      rec(2, 3, { status: undefined, error: 'ECONNRESET', mode: 'close' }),
      rec(3, 4, { mode: 'close', reused: false }),
      rec(4, 5, { reused: true }),
    ]);
    expect(r).toMatchObject({ total: 5, ok: 3, failed: 2, non2xx: { '502': 1 }, errors: { ECONNRESET: 1 } });
    expect(r.byMode).toEqual({ 'keep-alive': { total: 3, failed: 1, reusedSockets: 1 }, close: { total: 2, failed: 1, reusedSockets: 0 } });
  });

  it('measures switch latency from the mark to the first response of the new version, and counts stale answers after it', () => {
    const records = [
      rec(90, 95),
      rec(100, 105), // sent after the switch, old version, before the new one first answered: not stale
      rec(101, 130, { version: 'v2' }), // first new-version response ends at 130
      rec(131, 133, { version: 'v1' }), // sent after the new version answered: stale
      rec(134, 136, { version: 'v2' }),
    ];
    const r = loadReport(records, [{ label: 'switch', at: 100, to: 'v2' }]);
    expect(r.switches).toEqual([{ label: 'switch', to: 'v2', latencyMs: 30, stale: 1 }]);
    expect(r.versions).toEqual({ v1: 3, v2: 2 });
  });

  it('reports no latency when the new version never answered', () => {
    expect(loadReport([rec(100, 101)], [{ label: 's', at: 50, to: 'v9' }]).switches[0]).toEqual({ label: 's', to: 'v9', stale: 0 });
  });
});

describe('load bounds', () => {
  it('refuses to send load anywhere but loopback or a test lab', () => {
    expect(() => startLoad({ target: { url: 'https://example.com/' }, keepAliveClients: 1, closeClients: 0, maxRequests: 1, maxDurationMs: 1 })).toThrow(/loopback or test-lab/);
    expect(() => wrkCommand({ url: 'http://8.8.8.8/', durationS: 1, connections: 1 })).toThrow(/loopback or test-lab/);
  });

  it('stops by itself at its request count', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((_q, res) => res.end('{"revision":"r1"}'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const run = startLoad({ target: { url: `http://127.0.0.1:${port}/` }, keepAliveClients: 2, closeClients: 2, maxRequests: 40, maxDurationMs: 20_000 });
    await run.ended;
    const { records } = await run.stop();
    server.close();
    expect(records).toHaveLength(40);
    const report = loadReport(records);
    expect(report.failed).toBe(0);
    expect(report.versions).toEqual({ r1: 40 });
    expect(report.byMode['keep-alive'].reusedSockets).toBeGreaterThan(0);
    expect(report.byMode.close.reusedSockets).toBe(0);
  });

  /**
   * A loopback HTTP server that resets unanswered the requests `reset` picks (by the count on their
   * connection and overall), and a bounded load against it with the given options; resolves with its records.
   */
  async function resettingServer(reset: (onConnection: number, overall: number) => boolean) {
    const { createServer } = await import('node:http');
    let overall = 0;
    const server = createServer((q, res) => {
      const onConnection = ((q.socket as { served?: number }).served = ((q.socket as { served?: number }).served ?? 0) + 1);
      if (reset(onConnection, ++overall)) return void q.socket.destroy();
      res.end('{"revision":"r1"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const run = async (opts: Pick<LoadOptions, 'keepAliveClients' | 'closeClients' | 'maxRequests' | 'retryReusedReset' | 'retryFreshReset'>) => {
      overall = 0;
      const load = startLoad({ target: { url: `http://127.0.0.1:${port}/` }, maxDurationMs: 10_000, ...opts });
      await load.ended;
      return (await load.stop()).records;
    };
    return { run, close: () => server.close() };
  }

  it('with retryReusedReset, a GET whose kept-alive connection the server reset before answering is sent once more on a new connection and counted; without, it is a failure', async () => {
    // The third request on a connection is reset unanswered (as a server closing idle connections at a reload).
    const server = await resettingServer((onConnection) => onConnection === 3);
    const run = (retryReusedReset: boolean) => server.run({ keepAliveClients: 1, closeClients: 0, maxRequests: 5, retryReusedReset });
    try {
      const plain = loadReport(await run(false));
      expect(plain.failed).toBe(1);
      expect(plain.errors).toEqual({ ECONNRESET: 1 });
      expect(plain.retried).toBe(0);
      const records = await run(true);
      const retrying = loadReport(records);
      // Requests 3 and 5: each the third on its connection (the retry opened a new one).
      expect(retrying.failed).toBe(0);
      expect(retrying.retried).toBe(2);
      for (const r of records.filter((x) => x.retriedAfter)) expect(r).toMatchObject({ retriedAfter: 'ECONNRESET', status: 200, reused: false });
    } finally {
      server.close();
    }
  });

  it('with retryFreshReset, a GET whose new connection the server reset before answering is sent once more and counted as such; without, it is a failure', async () => {
    // The second request the server sees is reset unanswered (as a connection Caddy hands over at a reload).
    const server = await resettingServer((_onConnection, overall) => overall === 2);
    const run = (retryFreshReset: boolean) => server.run({ keepAliveClients: 0, closeClients: 1, maxRequests: 4, retryReusedReset: true, retryFreshReset });
    try {
      const plain = loadReport(await run(false));
      expect(plain.failed).toBe(1);
      expect(plain.errors).toEqual({ ECONNRESET: 1 });
      const records = await run(true);
      expect(loadReport(records)).toMatchObject({ failed: 0, retried: 1 });
      expect(records.filter((x) => x.retriedAfter)).toEqual([expect.objectContaining({ retriedAfter: 'ECONNRESET (new connection)', status: 200, reused: false })]);
    } finally {
      server.close();
    }
  });

  it('paced, each client starts a request at most every intervalMs', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((_q, res) => res.end('{"revision":"r1"}'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const run = startLoad({ target: { url: `http://127.0.0.1:${port}/` }, keepAliveClients: 1, closeClients: 1, maxRequests: 10_000, maxDurationMs: 10_000, intervalMs: 100 });
    await new Promise((r) => setTimeout(r, 1_000));
    const { records } = await run.stop();
    server.close();
    // 2 clients × ~10 starts in 1 s (a closed loop on loopback makes thousands).
    expect(records.length).toBeGreaterThanOrEqual(12);
    expect(records.length).toBeLessThanOrEqual(24);
    for (const client of [0, 1]) {
      const starts = records.filter((r) => r.client === client).map((r) => r.start);
      for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(95);
    }
  });

  it('bounds wrk by its duration and by timeout, and reads its summary', () => {
    expect(wrkCommand({ url: 'https://10.213.1.11/', durationS: 3, connections: 8, threads: 2 }).argv.slice(0, 4)).toEqual(['timeout', '--kill-after=5', '18', 'wrk']);
    const out = `Running 3s test @ https://10.213.1.11/
  2 threads and 8 connections
  3301 requests in 3.06s, 1.02MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 3277
Requests/sec:   1077.61
`;
    expect(parseWrk(out)).toEqual({ requests: 3301, non2xx: 3277, socketErrors: { connect: 0, read: 2, write: 0, timeout: 1 }, failed: 3280, requestsPerSecond: 1077.61, latencyMs: {} });
    expect(() => parseWrk('unable to connect')).toThrow(/no request count/);
  });

  it('passes a Lua script to wrk and reads its latency percentiles in milliseconds', () => {
    expect(wrkCommand({ url: 'http://127.0.0.1:7420/v1/resolve', durationS: 5, connections: 4, script: '/tmp/post.lua' }).argv.slice(-3)).toEqual(['-s', '/tmp/post.lua', 'http://127.0.0.1:7420/v1/resolve']);
    const out = `Running 5s test @ http://127.0.0.1:7420/v1/resolve
  1 threads and 4 connections
  Latency Distribution
     50%  635.91us
     75%    1.20ms
     90%    3.50ms
     99%    1.02s
  27000 requests in 5.00s, 9.10MB read
Requests/sec:   5400.12
`;
    expect(parseWrk(out).latencyMs).toEqual({ p50: 0.63591, p75: 1.2, p90: 3.5, p99: 1020 });
  });
});
