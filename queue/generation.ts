import { Redis } from 'ioredis';
import { connectionOptions, type QueueSettings } from './connection.ts';

/**
 * The artifact generation: a counter in the farm's Redis that workers move after they store an
 * artifact, so every API process knows when its kept artifact listings are out of date
 * (store/artifact-index.ts `IndexFreshness`). Reads fail fast (no offline queue, 500 ms): while Redis
 * is away the API reads the store itself instead of waiting. At most one GET is in flight: lookups
 * that arrive meanwhile share the next one, sent when it returns (so none sees a value read before
 * it arrived): under load one round trip serves many requests.
 */
export function artifactGeneration(s: QueueSettings): { generation(): Promise<string | undefined>; bump(): Promise<void>; close(): Promise<void> } {
  const key = `${s.prefix ?? 'bull'}:xamal:artifacts:generation`;
  const redis = new Redis({ ...connectionOptions(s), enableOfflineQueue: false, commandTimeout: 500 });
  // ioredis reconnects by itself; while it cannot, generation() answers undefined.
  redis.on('error', () => {});
  let inFlight: Promise<string | undefined> | undefined;
  let next: Promise<string | undefined> | undefined;
  const read = () =>
    redis.get(key).then(
      (v) => v ?? '0',
      () => undefined,
    ).finally(() => {
      inFlight = undefined;
    });
  return {
    generation() {
      if (redis.status !== 'ready') return Promise.resolve(undefined);
      if (!inFlight) return (inFlight = read());
      next ??= inFlight.then(() => {
        next = undefined;
        return (inFlight = read());
      });
      return next;
    },
    async bump() {
      await redis.incr(key);
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
