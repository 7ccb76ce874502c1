import { Redis, type RedisOptions } from 'ioredis';
import { XamalError } from '../core/index.ts';

/**
 * The only module that imports BullMQ: queue names, job options and connections are decided here
 * once, for the API (which enqueues) and the workers (which consume).
 */
export interface QueueSettings {
  redisUrl: string;
  /** Key prefix for every queue (tests use their own). */
  prefix?: string;
  /** Job lock lifetime for workers (default 60 s); a dead worker's job is retried after about this. */
  lockMs?: number;
  /** How long the API waits on Redis before it answers 503 (default 5 s). */
  timeoutMs?: number;
}


/**
 * Connection *options* (not a client): BullMQ then owns the connection and closes it on close(), so a
 * process that closes its queues and workers can exit.
 */
export function connectionOptions(s: QueueSettings, forWorker = false): RedisOptions {
  const u = new URL(s.redisUrl);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    ...(forWorker ? { maxRetriesPerRequest: null } : { maxRetriesPerRequest: 1 }),
  };
}

/**
 * A plain client on the queues' Redis for what the API shares across its processes (rate-limit
 * counters). The caller closes it (`quit()`).
 */
export function redisClient(s: QueueSettings): Redis {
  return new Redis({ ...connectionOptions(s), lazyConnect: false, enableOfflineQueue: true });
}

export type { Redis };

/** Errors of the Redis connection itself (not of a command): the queue is unreachable, not broken. */
const CONNECTION_ERROR = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|EPIPE|Connection is closed|max retries per request|Stream isn't writeable|enableOfflineQueue|connect ETIMEDOUT/i;

/**
 * Runs one queue operation for the API within `timeoutMs`: an unreachable or silent Redis becomes
 * `unavailable` (503) naming where Redis was expected, never a hang or a 500.
 */
export async function withRedis<T>(s: QueueSettings, what: string, fn: () => Promise<T>): Promise<T> {
  const u = new URL(s.redisUrl);
  const where = `Redis at ${u.hostname}:${u.port || 6379}`;
  const ms = s.timeoutMs ?? 5_000;
  let timer: NodeJS.Timeout | undefined;
  const work = fn();
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new XamalError('unavailable', `build queue unavailable: ${where} did not answer ${what} within ${ms} ms; try again shortly`)), ms);
  });
  work.catch(() => {});
  try {
    return await Promise.race([work, late]);
  } catch (err) {
    if (err instanceof XamalError) throw err;
    const e = err as Error;
    if (e?.name === 'MaxRetriesPerRequestError' || CONNECTION_ERROR.test(e?.message ?? '')) {
      throw new XamalError('unavailable', `build queue unavailable: ${where} is unreachable (${what}: ${e.message}); try again shortly`, { cause: err });
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
