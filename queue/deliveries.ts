import type { Redis } from 'ioredis';
import { withRedis, type QueueSettings } from './connection.ts';

/**
 * Webhook deliveries already taken, in the farm's Redis so every API process sees them: `claim`
 * is one `SET key 1 NX EX ttl`, true for exactly one caller per id within the ttl (whichever API
 * process it reaches). `release` forgets an id whose delivery failed, so a redelivery is taken.
 */
export function deliveryLedger(s: QueueSettings, redis: Redis, ttlSeconds: number): { claim(id: string): Promise<boolean>; release(id: string): Promise<void> } {
  const key = (id: string) => `${s.prefix ?? 'bull'}:xamal:github-delivery:${id}`;
  return {
    claim: (id) => withRedis(s, 'webhook delivery check', async () => (await redis.set(key(id), '1', 'EX', ttlSeconds, 'NX')) === 'OK'),
    release: (id) => withRedis(s, 'webhook delivery release', async () => void (await redis.del(key(id)))),
  };
}
