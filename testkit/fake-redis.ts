import type { Redis } from '../queue/index.ts';

/**
 * An in-memory stand-in for the two Redis commands the webhook delivery ledger sends
 * (queue/deliveries.ts), with Redis's answers: `SET key value EX n NX` is "OK" or null, `DEL` a
 * count. Several ledgers given the same one behave like API processes sharing one Redis.
 */
export function fakeLedgerRedis(): { redis: Redis; calls: unknown[][]; advance(ms: number): void } {
  const keys = new Map<string, number>();
  const calls: unknown[][] = [];
  let now = 0;
  const client = {
    async set(key: string, value: string, ...args: unknown[]) {
      calls.push(['set', key, value, ...args]);
      const until = keys.get(key);
      if (args.includes('NX') && until !== undefined && until > now) return null;
      const ex = args.indexOf('EX');
      keys.set(key, ex >= 0 ? now + Number(args[ex + 1]) * 1000 : Infinity);
      return 'OK';
    },
    async del(key: string) {
      calls.push(['del', key]);
      return keys.delete(key) ? 1 : 0;
    },
  };
  return { redis: client as unknown as Redis, calls, advance: (ms) => void (now += ms) };
}
