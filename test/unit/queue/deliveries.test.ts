import { describe, expect, it } from 'vitest';
import { deliveryLedger, type Redis } from '../../../queue/index.ts';
import { fakeLedgerRedis as fakeRedis } from '../../../testkit/fake-redis.ts';

const SETTINGS = { redisUrl: 'redis://127.0.0.1:6379', prefix: 'p1' };

describe('deliveryLedger (Redis)', () => {
  it('claims an id once with SET NX EX under the queue prefix, for every ledger on the same Redis', async () => {
    const { redis, calls } = fakeRedis();
    const a = deliveryLedger(SETTINGS, redis, 604_800);
    const b = deliveryLedger(SETTINGS, redis, 604_800);
    expect(await a.claim('d-1')).toBe(true);
    expect(await b.claim('d-1')).toBe(false);
    expect(await a.claim('d-1')).toBe(false);
    expect(await b.claim('d-2')).toBe(true);
    expect(calls[0]).toEqual(['set', 'p1:xamal:github-delivery:d-1', '1', 'EX', 604_800, 'NX']);
  });

  it('takes an id again after its ttl, or after release', async () => {
    const { redis, advance } = fakeRedis();
    const ledger = deliveryLedger(SETTINGS, redis, 60);
    expect(await ledger.claim('d')).toBe(true);
    advance(59_000);
    expect(await ledger.claim('d')).toBe(false);
    advance(2_000);
    expect(await ledger.claim('d')).toBe(true);
    await ledger.release('d');
    expect(await ledger.claim('d')).toBe(true);
  });

  it('a Redis that does not answer is "build queue unavailable" (503), not a hang', async () => {
    const silent = { set: () => new Promise(() => {}), del: () => new Promise(() => {}) } as unknown as Redis;
    const ledger = deliveryLedger({ ...SETTINGS, timeoutMs: 50 }, silent, 60);
    await expect(ledger.claim('d')).rejects.toMatchObject({ code: 'unavailable', message: expect.stringMatching(/Redis at 127.0.0.1:6379 did not answer webhook delivery check within 50 ms/) });
  });
});
