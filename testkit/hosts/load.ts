import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from '../../core/index.ts';

/**
 * A bounded load generator for zero-downtime checks: clients that keep their connection alive and
 * clients that open a fresh one per request (`Connection: close`), every request recorded. Bounded by
 * request count and by time, and only for loopback or test-lab addresses.
 */

export interface LoadTarget {
  /** `https://10.213.1.11/up` — the address is dialled; `servername` is sent as SNI and Host. */
  url: string;
  servername?: string;
  /** PEM of the CA that signed the server's certificate (Caddy's internal CA). */
  ca?: string;
}

export interface LoadOptions {
  target: LoadTarget;
  keepAliveClients: number;
  closeClients: number;
  /** Hard bounds: the run stops itself at whichever comes first. */
  maxRequests: number;
  maxDurationMs: number;
  requestTimeoutMs?: number;
  /**
   * Each client starts a request at most this often (ms). Without it a client sends the next as soon
   * as the last answered (closed loop): the load then takes whatever CPU the machine has.
   */
  intervalMs?: number;
  /** Which version answered; default: the JSON body's `revision`, else the `x-revision` header. */
  version?: (res: { headers: IncomingHttpHeaders; body: string }) => string | undefined;
  /**
   * Retry as browsers, curl and Node's documented `reusedSocket` check do (RFC 9110 §9.2.2): a GET
   * sent on a kept-alive connection that the server closed before any byte of an answer (ECONNRESET)
   * is sent once more, on a new connection. Counted (`retried`), never hidden: a reset on a new
   * connection, or of a request that got an answer, is a failure as always. Default off.
   */
  retryReusedReset?: boolean;
  /**
   * As retryReusedReset, for a GET on a new connection reset before any byte of an answer: what a
   * Caddy 2.6.2 reload does to a few connections it is handing over (FACTS.md#caddy; measured with
   * bench/caddy-reloads.ts). For tests of operations that change Caddy's config; counted (`retried`,
   * `retriedAfter` says which), never hidden. Default off.
   */
  retryFreshReset?: boolean;
}

export type ClientMode = 'keep-alive' | 'close';

export interface RequestRecord {
  client: number;
  mode: ClientMode;
  /** performance.now() milliseconds, the clock `mark` uses. */
  start: number;
  end: number;
  status?: number;
  /** `ECONNRESET`, `ECONNREFUSED`, `timeout`, … */
  error?: string;
  /** The error's message (e.g. the TLS alert behind an EPROTO), to tell two failures of one code apart. */
  errorMessage?: string;
  reused: boolean;
  version?: string;
  /** With `retryReusedReset` or `retryFreshReset`: the first attempt's error (`ECONNRESET`, or `ECONNRESET (new connection)`), before this one. */
  retriedAfter?: string;
}

export interface LoadMark {
  label: string;
  at: number;
  /** The version that should answer from here on. */
  to?: string;
}

export interface LoadRun {
  /** Records a moment (a switch call) on the run's clock. */
  mark(label: string, to?: string): LoadMark;
  /** Stops the clients (each finishes its request in flight) and resolves with every record. */
  stop(): Promise<{ records: RequestRecord[]; marks: LoadMark[] }>;
  /** Resolves once every client has ended, at the run's bounds or after stop(). */
  readonly ended: Promise<void>;
}

/** Loopback, the lab subnet, and `*.lab.test` names (resolvable only inside a lab namespace). */
export const LAB_ADDRESS = /^(127\.\d+\.\d+\.\d+|10\.213\.\d+\.\d+|localhost|\[::1\]|[a-z0-9-]+(\.[a-z0-9-]+)*\.lab\.test)$/;

/** May test load go to this host name? Loopback, the lab subnet, `*.lab.test`. */
export const isLabAddress = (hostname: string): boolean => LAB_ADDRESS.test(hostname);

function defaultVersion(res: { headers: IncomingHttpHeaders; body: string }): string | undefined {
  try {
    const v = (JSON.parse(res.body) as { revision?: unknown }).revision;
    if (typeof v === 'string') return v;
  } catch {
    /* not JSON */
  }
  const h = res.headers['x-revision'];
  return typeof h === 'string' ? h : undefined;
}

export function startLoad(opts: LoadOptions): LoadRun {
  const url = new URL(opts.target.url);
  if (!LAB_ADDRESS.test(url.hostname)) throw new RangeError(`load is only sent to loopback or test-lab addresses, not ${url.hostname}`);
  if (opts.maxRequests < 1 || opts.maxDurationMs < 1) throw new RangeError('maxRequests and maxDurationMs must be positive');
  const https = url.protocol === 'https:';
  const tls = https ? { ca: opts.target.ca, servername: opts.target.servername } : {};
  const request = https ? httpsRequest : httpRequest;
  const version = opts.version ?? defaultVersion;
  const timeout = opts.requestTimeoutMs ?? 10_000;
  const records: RequestRecord[] = [];
  const marks: LoadMark[] = [];
  const deadline = performance.now() + opts.maxDurationMs;
  let issued = 0;
  let stopped = false;
  let stopTimer: NodeJS.Timeout | undefined;

  const attempt = (client: number, mode: ClientMode, agent: HttpAgent | false): Promise<RequestRecord & { answered: boolean }> =>
    new Promise((resolve) => {
      const rec: RequestRecord & { answered: boolean } = { client, mode, start: performance.now(), end: 0, reused: false, answered: false };
      let settled = false;
      const finish = (patch: Partial<RequestRecord>) => {
        if (settled) return;
        settled = true;
        Object.assign(rec, patch, { end: performance.now() });
        resolve(rec);
      };
      const req = request(
        {
          ...tls,
          host: url.hostname,
          port: url.port || (https ? 443 : 80),
          path: `${url.pathname}${url.search}`,
          method: 'GET',
          agent,
          headers: { host: opts.target.servername ?? url.host, ...(mode === 'close' ? { connection: 'close' } : {}) },
          timeout,
        },
        (res) => {
          rec.answered = true;
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e: NodeJS.ErrnoException) => finish({ status: res.statusCode, error: e.code ?? e.name, errorMessage: e.message.slice(0, 200) }));
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            finish({ status: res.statusCode, version: version({ headers: res.headers, body }) });
          });
        },
      );
      req.on('socket', () => {
        rec.reused = req.reusedSocket;
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
      req.on('error', (e: NodeJS.ErrnoException) => finish({ error: e.code ?? e.name, errorMessage: e.message.slice(0, 200) }));
      req.end();
    });

  const one = async (client: number, mode: ClientMode, agent: HttpAgent | false): Promise<void> => {
    const first = await attempt(client, mode, agent);
    const unanswered = !first.answered && first.error === 'ECONNRESET';
    const again = unanswered && (first.reused ? opts.retryReusedReset : opts.retryFreshReset);
    const after = first.reused ? 'ECONNRESET' : 'ECONNRESET (new connection)';
    const { answered: _a, ...rec } = again ? { ...(await attempt(client, mode, agent)), start: first.start, retriedAfter: after } : first;
    records.push(rec);
  };

  const client = async (id: number, mode: ClientMode) => {
    const agent = mode === 'keep-alive' ? new (https ? HttpsAgent : HttpAgent)({ keepAlive: true, maxSockets: 1, ...tls }) : false;
    try {
      while (!stopped && issued < opts.maxRequests && performance.now() < deadline) {
        issued++;
        const started = performance.now();
        await one(id, mode, agent);
        const rest = (opts.intervalMs ?? 0) - (performance.now() - started);
        if (rest > 0 && !stopped) await sleep(rest);
      }
    } finally {
      if (agent) agent.destroy();
    }
  };

  const clients = [
    ...Array.from({ length: opts.keepAliveClients }, (_, i) => client(i, 'keep-alive')),
    ...Array.from({ length: opts.closeClients }, (_, i) => client(opts.keepAliveClients + i, 'close')),
  ];
  const all = Promise.all(clients);
  stopTimer = setTimeout(() => (stopped = true), opts.maxDurationMs);
  return {
    ended: all.then(() => undefined),
    mark(label, to) {
      const m: LoadMark = { label, at: performance.now(), ...(to !== undefined ? { to } : {}) };
      marks.push(m);
      return m;
    },
    async stop() {
      stopped = true;
      clearTimeout(stopTimer);
      await all;
      return { records: records.sort((a, b) => a.start - b.start), marks };
    },
  };
}

export interface SwitchReport {
  label: string;
  to?: string;
  /** Mark → first response from the new version (ms); undefined if it never answered. */
  latencyMs?: number;
  /** Responses from another version to requests sent after the new version first answered. */
  stale: number;
}

export interface LoadReport {
  total: number;
  ok: number;
  /** non-2xx responses plus connection errors: the number that must be 0. */
  failed: number;
  non2xx: Record<string, number>;
  errors: Record<string, number>;
  byMode: Record<ClientMode, { total: number; failed: number; reusedSockets: number }>;
  /** Requests sent again after their connection was reset before any answer (`retryReusedReset`, `retryFreshReset`). */
  retried: number;
  versions: Record<string, number>;
  latencyMs: { p50: number; p99: number; max: number };
  durationMs: number;
  switches: SwitchReport[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const isOk = (r: RequestRecord) => r.error === undefined && r.status !== undefined && r.status >= 200 && r.status < 300;

/** Pure: counts, failures by kind, and per switch its latency and stale responses. */
export function loadReport(records: readonly RequestRecord[], marks: readonly LoadMark[] = []): LoadReport {
  const inc = (o: Record<string, number>, k: string) => (o[k] = (o[k] ?? 0) + 1);
  const non2xx: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const versions: Record<string, number> = {};
  const byMode: LoadReport['byMode'] = { 'keep-alive': { total: 0, failed: 0, reusedSockets: 0 }, close: { total: 0, failed: 0, reusedSockets: 0 } };
  for (const r of records) {
    const m = byMode[r.mode];
    m.total++;
    if (r.reused) m.reusedSockets++;
    if (r.error !== undefined) inc(errors, r.error);
    else if (!isOk(r)) inc(non2xx, String(r.status));
    if (!isOk(r)) m.failed++;
    else if (r.version !== undefined) inc(versions, r.version);
  }
  const switches: SwitchReport[] = marks.map((m, i) => {
    const until = marks[i + 1]?.at ?? Infinity;
    const window = records.filter((r) => r.start >= m.at && r.start < until && isOk(r));
    if (m.to === undefined) return { label: m.label, stale: 0 };
    const firstNew = window.filter((r) => r.version === m.to).reduce<number | undefined>((t, r) => (t === undefined || r.end < t ? r.end : t), undefined);
    const stale = firstNew === undefined ? 0 : window.filter((r) => r.start > firstNew && r.version !== m.to).length;
    return { label: m.label, to: m.to, ...(firstNew !== undefined ? { latencyMs: Math.round((firstNew - m.at) * 10) / 10 } : {}), stale };
  });
  const lat = records.map((r) => r.end - r.start).sort((a, b) => a - b);
  const ok = records.filter(isOk).length;
  const first = records.reduce((t, r) => Math.min(t, r.start), Infinity);
  const last = records.reduce((t, r) => Math.max(t, r.end), 0);
  return {
    total: records.length,
    ok,
    failed: records.length - ok,
    non2xx,
    errors,
    byMode,
    retried: records.filter((r) => r.retriedAfter !== undefined).length,
    versions,
    latencyMs: { p50: Math.round(percentile(lat, 50) * 10) / 10, p99: Math.round(percentile(lat, 99) * 10) / 10, max: Math.round((lat.at(-1) ?? 0) * 10) / 10 },
    durationMs: records.length ? Math.round(last - first) : 0,
    switches,
  };
}

// ---------------------------------------------------------------------------------------------
// wrk, as an independent count.

export interface WrkOptions {
  url: string;
  durationS: number;
  connections: number;
  threads?: number;
  headers?: Record<string, string>;
  /** A Lua script file (`-s`), e.g. one that sets wrk.method and wrk.body for a POST. */
  script?: string;
}

/** wrk bounded by its own duration and, in case it hangs, by `timeout`. */
export function wrkCommand(o: WrkOptions): Command {
  const host = new URL(o.url).hostname;
  if (!LAB_ADDRESS.test(host)) throw new RangeError(`wrk only targets loopback or test-lab addresses, not ${host}`);
  const threads = Math.max(1, Math.min(o.threads ?? 1, o.connections));
  return {
    argv: [
      'timeout', '--kill-after=5', String(o.durationS + 15),
      'wrk', '--latency', '-t', String(threads), '-c', String(o.connections), '-d', `${o.durationS}s`,
      ...Object.entries(o.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
      ...(o.script ? ['-s', o.script] : []),
      o.url,
    ],
    label: `wrk ${o.url}`,
    timeoutMs: (o.durationS + 30) * 1000,
  };
}

export interface WrkResult {
  requests: number;
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  /** non-2xx plus every socket error. */
  failed: number;
  requestsPerSecond: number;
  /** `--latency` percentiles in milliseconds (wrk prints 50, 75, 90 and 99). */
  latencyMs: Partial<Record<'p50' | 'p75' | 'p90' | 'p99', number>>;
}

const UNIT_MS: Record<string, number> = { us: 1e-3, ms: 1, s: 1000, m: 60_000 };

/** Pure: wrk's summary. Throws if the output has no request count (wrk did not run). */
export function parseWrk(out: string): WrkResult {
  const req = /(\d+) requests in /.exec(out);
  if (!req) throw new Error(`no request count in wrk output:\n${out.trim().slice(0, 500)}`);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = { connect: Number(se?.[1] ?? 0), read: Number(se?.[2] ?? 0), write: Number(se?.[3] ?? 0), timeout: Number(se?.[4] ?? 0) };
  return {
    requests: Number(req[1]),
    non2xx,
    socketErrors,
    failed: non2xx + socketErrors.connect + socketErrors.read + socketErrors.write + socketErrors.timeout,
    requestsPerSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    latencyMs: Object.fromEntries(
      [...out.matchAll(/^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$/gm)].map((m) => [`p${m[1]}`, Number(m[2]) * UNIT_MS[m[3]!]!]),
    ),
  };
}
