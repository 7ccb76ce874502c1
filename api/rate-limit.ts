import type { FastifyInstance, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { Redis } from '../queue/index.ts';
import type { TokenEntry } from './auth.ts';

/** Requests a token may make to the POST routes per window. */
export interface RateLimitSettings {
  /** Requests per window and token; 0 turns the limit off. */
  max: number;
  windowMs: number;
  /**
   * The shared Redis: every API process of the farm counts in the same place (keys
   * `<prefix>:ratelimit:<token name>:<hash prefix>`). Without it each process counts for itself.
   */
  redis?: Redis;
  /** Key prefix in Redis (default `xamal`). */
  prefix?: string;
}

export const DEFAULT_RATE_LIMIT: RateLimitSettings = { max: 60, windowMs: 60_000 };

declare module 'fastify' {
  interface FastifyRequest {
    /** The token entry the request authenticated with (set by the auth hook). */
    farmToken?: TokenEntry;
  }
}

/** A token's identity for counting: its name and a prefix of its hash, never the token. */
export function rateLimitKey(req: FastifyRequest): string {
  const t = req.farmToken;
  return t ? `${t.name}:${t.sha256.toString('hex').slice(0, 16)}` : `ip:${req.ip}`;
}

function describeWindow(ms: number): string {
  if (ms % 3_600_000 === 0) return ms === 3_600_000 ? 'hour' : `${ms / 3_600_000} hours`;
  if (ms % 60_000 === 0) return ms === 60_000 ? 'minute' : `${ms / 60_000} minutes`;
  return `${ms / 1000} s`;
}

/** The limit as people read it: `60 POST requests per minute`. */
export function describeRateLimit(s: Pick<RateLimitSettings, 'max' | 'windowMs'>): string {
  return `${s.max} POST requests per ${describeWindow(s.windowMs)}`;
}

/**
 * Counts POST requests that start work (routes needing the `build` or `admin` scope: builds, source
 * uploads) per token, one budget across them (after authentication, before the body is read), and
 * answers 429 with `Retry-After` and a body naming the limit once a token is over it. Reads are not
 * counted, including `POST /v1/resolve` (a read with a body: a deploy resolves once per host, and a
 * fleet of more hosts than the budget must not be refused), nor public POST routes (the GitHub
 * webhook, which GitHub signs). Redis errors let the request through: the
 * limit protects the farm, it must not take it down.
 */
export async function installRateLimit(app: FastifyInstance, s: RateLimitSettings): Promise<void> {
  if (s.max <= 0) return;
  await app.register(rateLimit, {
    // One budget per token across every POST route (per-route limits would multiply it).
    global: true,
    allowList: (req) => req.method !== 'POST' || req.routeOptions.config?.public === true || (req.routeOptions.config?.scope ?? 'read') === 'read',
    max: s.max,
    timeWindow: s.windowMs,
    hook: 'preParsing',
    keyGenerator: rateLimitKey,
    skipOnError: true,
    nameSpace: `${s.prefix ?? 'xamal'}:ratelimit:`,
    ...(s.redis ? { redis: s.redis } : {}),
    errorResponseBuilder: (req, ctx) => {
      const retry = Math.max(1, Math.ceil(ctx.ttl / 1000));
      const who = req.farmToken ? `token ${req.farmToken.name}` : `client ${req.ip}`;
      return Object.assign(new Error(`${who} is over the rate limit of ${describeRateLimit({ max: Number(ctx.max), windowMs: s.windowMs })} (XAMAL_API_RATE_LIMIT); retry after ${retry} s`), {
        statusCode: 429,
        code: 'rate_limited',
      });
    },
  });
}
