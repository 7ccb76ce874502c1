/**
 * Webhook deliveries already taken (`X-GitHub-Delivery`), so a replayed one submits nothing. A farm
 * with Redis keeps them there for all its API processes (queue/deliveries.ts); an API without
 * Redis keeps them in memory.
 */
export interface DeliveryLedger {
  /** True the first time `id` is seen within the ttl, false after. */
  claim(id: string): Promise<boolean>;
  /** Forgets `id` (its delivery failed): a redelivery is taken again. */
  release(id: string): Promise<void>;
}

/** Most ids an in-memory ledger holds; past that the oldest are forgotten first. */
export const MEMORY_LEDGER_MAX = 100_000;

/** One process's ledger: ids expire after `ttlSeconds`; at most `max` kept (oldest dropped). */
export function memoryDeliveryLedger(ttlSeconds: number, max = MEMORY_LEDGER_MAX, now: () => number = Date.now): DeliveryLedger {
  const seen = new Map<string, number>();
  const forgetExpired = (t: number) => {
    for (const [id, until] of seen) {
      if (until > t && seen.size <= max) break;
      seen.delete(id);
    }
  };
  return {
    async claim(id) {
      const t = now();
      forgetExpired(t);
      const until = seen.get(id);
      if (until !== undefined && until > t) return false;
      seen.delete(id);
      seen.set(id, t + ttlSeconds * 1000);
      forgetExpired(t);
      return true;
    },
    async release(id) {
      seen.delete(id);
    },
  };
}
