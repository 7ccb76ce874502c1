import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { performance } from 'node:perf_hooks';
import { LAB_ADDRESS, type LoadTarget } from './load.ts';

/**
 * Sessions as a browser starts them, for canary checks: each request on a new connection, with the
 * cookie its session holds (none for a new session), answered by a version and maybe a Set-Cookie.
 * Bounded by count and time, and only for loopback or test-lab addresses.
 */

export interface SessionAnswer {
  status?: number;
  /** The JSON body's `revision`. */
  version?: string;
  /** The value the answer's Set-Cookie gave the cookie named in the options, if it set one. */
  cookie?: string;
  error?: string;
}

export interface SessionOptions {
  target: LoadTarget;
  /** The cookie a canary keeps each client on its version with (`xamal_<app>`). */
  cookieName: string;
  /** How many requests; request `i` carries `cookieFor(i)` when it gives one. */
  count: number;
  concurrency: number;
  maxDurationMs: number;
  cookieFor?: (i: number) => string | undefined;
}

function one(o: SessionOptions, cookie: string | undefined): Promise<SessionAnswer> {
  const url = new URL(o.target.url);
  const https = url.protocol === 'https:';
  return new Promise((resolve) => {
    const req = (https ? httpsRequest : httpRequest)(
      {
        ...(https ? { ca: o.target.ca, servername: o.target.servername } : {}),
        host: url.hostname,
        port: url.port || (https ? 443 : 80),
        path: `${url.pathname}${url.search}`,
        agent: false,
        headers: { host: o.target.servername ?? url.host, connection: 'close', ...(cookie !== undefined ? { cookie: `${o.cookieName}=${cookie}` } : {}) },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e: NodeJS.ErrnoException) => resolve({ status: res.statusCode, error: e.code ?? e.name }));
        res.on('end', () => {
          let version: string | undefined;
          try {
            version = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { revision?: string }).revision;
          } catch {
            version = undefined;
          }
          const set = (res.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]!).find((c) => c.startsWith(`${o.cookieName}=`));
          resolve({ status: res.statusCode, version, ...(set ? { cookie: set.slice(o.cookieName.length + 1) } : {}) });
        });
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.name }));
    req.end();
  });
}

/** `count` requests, `concurrency` at a time, each answer at its index (requests not sent by the deadline are absent). */
export async function sessionRequests(o: SessionOptions): Promise<SessionAnswer[]> {
  const url = new URL(o.target.url);
  if (!LAB_ADDRESS.test(url.hostname)) throw new RangeError(`sessions are only sent to loopback or test-lab addresses, not ${url.hostname}`);
  const deadline = performance.now() + o.maxDurationMs;
  const out: SessionAnswer[] = [];
  let next = 0;
  const worker = async () => {
    while (next < o.count && performance.now() < deadline) {
      const i = next++;
      out[i] = await one(o, o.cookieFor?.(i));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, o.count)) }, worker));
  return out;
}
