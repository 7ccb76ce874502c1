import { performance } from 'node:perf_hooks';
import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import WebSocket, { type ClientOptions } from 'ws';
import { isLabAddress, type LoadMark } from './load.ts';

/**
 * A bounded WebSocket load for switch checks: N clients that each hold one WebSocket, send a message
 * now and then and expect it echoed, and reconnect as Phoenix's socket does when the server closes
 * (its `reconnectAfterMs` back-off, reset by a successful open) and, as a browser does, resume their
 * TLS session to the same origin (the ticket their previous connection got). Every connection is recorded: the
 * version its first message named, how it ended (the close code; 1006 = no close frame) and any
 * error on its TCP socket (a reset). Bounded by time and by connection count, and only for loopback
 * or test-lab addresses.
 */

export interface WsLoadOptions {
  /** `wss://10.213.1.11/ws`: the address is dialled; `servername` is sent as SNI and Host. */
  target: { url: string; servername?: string; ca?: string };
  clients: number;
  maxDurationMs: number;
  /** Connections opened in all, reconnects included (a bound); default clients × 100. */
  maxConnections?: number;
  /** Phoenix's `reconnectAfterMs`: the n-th retry in a row waits `backoffMs[n-1]` (the last one after that). */
  backoffMs?: readonly number[];
  /** Each client sends a text message this often (ms) and expects it echoed; 0 = never. Default 1000. */
  messageIntervalMs?: number;
  /** Client starts spread over this many ms (a burst of N handshakes is not what a switch tests). Default 1000. */
  rampMs?: number;
  handshakeTimeoutMs?: number;
  /** Offer the client's last TLS session (ticket) on its next dial, as browsers do; default true. */
  resumeTls?: boolean;
  /** The version named by a connection's first message; default: its JSON `revision`. */
  version?: (firstMessage: string) => string | undefined;
}

/**
 * Phoenix.Socket's default `reconnectAfterMs` (phoenix.js: `[10, 50, 100, 150, 200, 250, 500, 1000,
 * 2000][tries - 1] || 5000`, no jitter). A close with any code but 1000 schedules the reconnect timer
 * (so a server's 1001 redials after 10 ms); the timer's tries reset when a connection opens.
 */
export const PHOENIX_BACKOFF_MS: readonly number[] = [10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000];

export interface WsConnectionRecord {
  client: number;
  /** performance.now() ms, the clock `mark` uses. */
  start: number;
  /** TCP connected, TLS handshake done (wss only). */
  tcpAt?: number;
  tlsAt?: number;
  /** A TLS session was offered (the client's previous one) and whether the server resumed it. */
  tlsOffered?: boolean;
  tlsResumed?: boolean;
  /** The upgrade answered (101). */
  openAt?: number;
  /** The first message, naming the version. */
  version?: string;
  versionAt?: number;
  end: number;
  /** The close code the client saw: the server's close frame's code, 1005 for one with none, 1006 for none at all. */
  code?: number;
  /** Who began the close: the server (a close frame or the connection's end) or this client (stop()). */
  closedBy?: 'server' | 'client';
  /** An error before the upgrade (`Unexpected server response: 502`, ECONNREFUSED, timeout). */
  connectError?: string;
  /** An error on the TCP socket at any time (ECONNRESET, EPIPE): a reset. */
  socketError?: string;
  sent: number;
  echoed: number;
}

export interface WsLoadRun {
  mark(label: string, to?: string): LoadMark;
  /** The client's current connection versions: which version each client holds a socket to now. */
  current(): (string | undefined)[];
  /** Closes every client's socket (code 1000), waits for them (bounded), resolves with every record. */
  stop(): Promise<{ records: WsConnectionRecord[]; marks: LoadMark[] }>;
}

function defaultVersion(msg: string): string | undefined {
  try {
    const v = (JSON.parse(msg) as { revision?: unknown }).revision;
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export function startWsLoad(opts: WsLoadOptions): WsLoadRun {
  const url = new URL(opts.target.url);
  if (!isLabAddress(url.hostname)) throw new RangeError(`WebSocket load is only sent to loopback or test-lab addresses, not ${url.hostname}`);
  if (opts.clients < 1 || opts.maxDurationMs < 1) throw new RangeError('clients and maxDurationMs must be positive');
  const backoff = opts.backoffMs ?? PHOENIX_BACKOFF_MS;
  const every = opts.messageIntervalMs ?? 1000;
  const version = opts.version ?? defaultVersion;
  const maxConnections = opts.maxConnections ?? opts.clients * 100;
  const records: WsConnectionRecord[] = [];
  const marks: LoadMark[] = [];
  const live: (WebSocket | undefined)[] = [];
  const holding: (string | undefined)[] = [];
  const sessions: (Buffer | undefined)[] = [];
  const resumeTls = opts.resumeTls ?? true;
  const deadline = performance.now() + opts.maxDurationMs;
  let opened = 0;
  let stopped = false;

  /** One connection, from dial to its end; resolves when it has ended. */
  const connect = (client: number) =>
    new Promise<WsConnectionRecord>((resolve) => {
      const rec: WsConnectionRecord = { client, start: performance.now(), end: 0, sent: 0, echoed: 0 };
      const ws = new WebSocket(url, {
        ...(url.protocol === 'wss:' ? { createConnection: ((o: ConnectionOptions & { path?: string; host?: string }) => dialTls(o, client, rec)) as unknown as ClientOptions['createConnection'] } : {}),
        ...(opts.target.ca ? { ca: opts.target.ca } : {}),
        ...(opts.target.servername ? { servername: opts.target.servername, headers: { host: opts.target.servername } } : {}),
        handshakeTimeout: opts.handshakeTimeoutMs ?? 10_000,
        perMessageDeflate: false,
      });
      live[client] = ws;
      let timer: NodeJS.Timeout | undefined;
      ws.on('upgrade', (res) => {
        rec.openAt = performance.now();
        (res.socket as Socket).on('error', (e: NodeJS.ErrnoException) => (rec.socketError ??= e.code ?? e.message));
      });
      ws.on('message', (data) => {
        const text = data.toString();
        if (rec.versionAt === undefined) {
          rec.versionAt = performance.now();
          rec.version = version(text);
          holding[client] = rec.version;
          if (every > 0) {
            timer = setInterval(() => {
              if (ws.readyState !== WebSocket.OPEN) return;
              rec.sent++;
              ws.send(`m ${client} ${rec.sent}`);
            }, every);
          }
        } else if (text.startsWith(`m ${client} `)) rec.echoed++;
      });
      ws.on('error', (e: NodeJS.ErrnoException) => {
        // A dial this client itself abandoned (stop() while it was connecting) is not the server's failure.
        if (rec.openAt === undefined && rec.closedBy !== 'client') rec.connectError ??= e.code ?? e.message;
      });
      ws.on('close', (code) => {
        clearInterval(timer);
        rec.end = performance.now();
        if (rec.openAt !== undefined) {
          rec.code = code;
          rec.closedBy ??= 'server';
        }
        holding[client] = undefined;
        if (live[client] === ws) live[client] = undefined;
        resolve(rec);
      });
      // stop(): this client closes (recorded as such, never counted as the server's close).
      (ws as WebSocket & { closeByClient?: () => void }).closeByClient = () => {
        rec.closedBy ??= 'client';
        ws.close(1000, 'client stopping');
      };
    });

  /** As ws's own TLS dial, plus the client's last session offered, and the phases and resumption recorded. */
  const dialTls = (o: ConnectionOptions & { path?: string; host?: string }, client: number, rec: WsConnectionRecord): TLSSocket => {
    const session = resumeTls ? sessions[client] : undefined;
    rec.tlsOffered = session !== undefined;
    const sock = tlsConnect({
      ...o,
      path: undefined,
      servername: o.servername || o.servername === '' ? o.servername : isIP(o.host ?? '') ? '' : o.host,
      ...(session ? { session } : {}),
    } as ConnectionOptions);
    sock.once('connect', () => (rec.tcpAt = performance.now()));
    sock.once('secureConnect', () => {
      rec.tlsAt = performance.now();
      rec.tlsResumed = sock.isSessionReused();
    });
    sock.on('session', (s: Buffer) => (sessions[client] = s));
    return sock;
  };

  const client = async (id: number) => {
    await sleep(((opts.rampMs ?? 1000) * id) / opts.clients);
    let tries = 0;
    while (!stopped && performance.now() < deadline && opened < maxConnections) {
      opened++;
      const rec = await connect(id);
      records.push(rec);
      if (rec.openAt !== undefined) tries = 0;
      if (stopped) break;
      tries++;
      await sleep(backoff[Math.min(tries, backoff.length) - 1]!);
    }
  };

  const all = Promise.all(Array.from({ length: opts.clients }, (_, i) => client(i)));
  const stopTimer = setTimeout(() => void stopAll(), opts.maxDurationMs);
  const stopAll = () => {
    stopped = true;
    for (const ws of live) (ws as (WebSocket & { closeByClient?: () => void }) | undefined)?.closeByClient?.();
  };
  return {
    mark(label, to) {
      const m: LoadMark = { label, at: performance.now(), ...(to !== undefined ? { to } : {}) };
      marks.push(m);
      return m;
    },
    current: () => Array.from({ length: opts.clients }, (_, i) => holding[i]),
    async stop() {
      clearTimeout(stopTimer);
      stopAll();
      // A socket that does not finish its closing handshake in 5 s is torn down (and recorded as it ends).
      const force = setTimeout(() => live.forEach((ws) => ws?.terminate()), 5_000);
      await all;
      clearTimeout(force);
      return { records: records.sort((a, b) => a.start - b.start), marks };
    },
  };
}

export interface WsReport {
  connections: number;
  /** Upgrades that failed (by error). */
  connectErrors: Record<string, number>;
  /** Closes the server began, by code. */
  serverCloses: Record<string, number>;
  /** Server closes without a close frame (1006) plus sockets that saw a reset: the number that must be 0. */
  abnormal: number;
  resets: number;
  /** Close by the server → first message from another version on the same client's next connections. */
  reconnectMs: { count: number; p50: number; p99: number; max: number };
  /**
   * Where reconnect time goes (p50 and p99 of each, ms): close → next dial (the back-off, plus any
   * failed attempts), dial → upgrade answered (TLS and the proxy reaching a slot), upgrade → first
   * message; the upgrade split into dial → TCP connected, → TLS handshake done, → upgrade answered
   * (Caddy reaching a slot and the app's 101).
   */
  reconnectPhasesMs: Record<'wait' | 'upgrade' | 'tcp' | 'tls' | 'http' | 'firstMessage', { p50: number; p99: number }>;
  /** Reconnect time by the version reconnected to (a switch's direction: which slot is first in Caddy's list). */
  reconnectByVersionMs: Record<string, { count: number; p50: number; p99: number }>;
  /** TLS handshakes done, how many offered the client's previous session, how many the server resumed. */
  tls: { handshakes: number; offered: number; resumed: number };
  /** Reconnects after a server close whose first message came from the same version again. */
  sameVersionReconnects: number;
  /** Messages sent and echoed (a message in flight when the socket closed is not echoed). */
  sent: number;
  echoed: number;
  /** Per client, the version of its last connection: how many clients ended on each. */
  finalVersions: Record<string, number>;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (n: number) => Math.round(n * 10) / 10;

/** Pure: close codes, resets and reconnect times of a WebSocket load's records. */
export function wsReport(records: readonly WsConnectionRecord[]): WsReport {
  const inc = (o: Record<string, number>, k: string) => (o[k] = (o[k] ?? 0) + 1);
  const connectErrors: Record<string, number> = {};
  const serverCloses: Record<string, number> = {};
  const finalVersions: Record<string, number> = {};
  const reconnect: number[] = [];
  const byVersion: Record<string, number[]> = {};
  const phases = { wait: [] as number[], upgrade: [] as number[], tcp: [] as number[], tls: [] as number[], http: [] as number[], firstMessage: [] as number[] };
  let abnormal = 0;
  let resets = 0;
  let same = 0;
  const byClient = new Map<number, WsConnectionRecord[]>();
  for (const r of [...records].sort((a, b) => a.start - b.start)) byClient.set(r.client, [...(byClient.get(r.client) ?? []), r]);
  for (const conns of byClient.values()) {
    conns.forEach((r, i) => {
      if (r.connectError !== undefined) inc(connectErrors, r.connectError);
      if (r.socketError !== undefined) resets++;
      if (r.closedBy !== 'server') return;
      inc(serverCloses, String(r.code));
      if (r.code === 1006 || r.socketError !== undefined) abnormal++;
      const next = conns.slice(i + 1).find((n) => n.version !== undefined);
      if (next === undefined || r.version === undefined) return;
      if (next.version === r.version) same++;
      else {
        reconnect.push(next.versionAt! - r.end);
        (byVersion[next.version!] ??= []).push(next.versionAt! - r.end);
        phases.wait.push(next.start - r.end);
        phases.upgrade.push(next.openAt! - next.start);
        if (next.tcpAt !== undefined) phases.tcp.push(next.tcpAt - next.start);
        if (next.tcpAt !== undefined && next.tlsAt !== undefined) phases.tls.push(next.tlsAt - next.tcpAt);
        const sent = next.tlsAt ?? next.tcpAt;
        if (sent !== undefined) phases.http.push(next.openAt! - sent);
        phases.firstMessage.push(next.versionAt! - next.openAt!);
      }
    });
    const last = [...conns].reverse().find((r) => r.version !== undefined);
    inc(finalVersions, last?.version ?? 'none');
  }
  reconnect.sort((a, b) => a - b);
  const p = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return { p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)) };
  };
  return {
    connections: records.length,
    connectErrors,
    serverCloses,
    abnormal,
    resets,
    reconnectMs: { count: reconnect.length, p50: round(percentile(reconnect, 50)), p99: round(percentile(reconnect, 99)), max: round(reconnect.at(-1) ?? 0) },
    reconnectPhasesMs: { wait: p(phases.wait), upgrade: p(phases.upgrade), tcp: p(phases.tcp), tls: p(phases.tls), http: p(phases.http), firstMessage: p(phases.firstMessage) },
    reconnectByVersionMs: Object.fromEntries(Object.entries(byVersion).map(([v, xs]) => [v, { count: xs.length, ...p(xs) }])),
    tls: {
      handshakes: records.filter((r) => r.tlsAt !== undefined).length,
      offered: records.filter((r) => r.tlsAt !== undefined && r.tlsOffered).length,
      resumed: records.filter((r) => r.tlsResumed).length,
    },
    sameVersionReconnects: same,
    sent: records.reduce((n, r) => n + r.sent, 0),
    echoed: records.reduce((n, r) => n + r.echoed, 0),
    finalVersions,
  };
}
