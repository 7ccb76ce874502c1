import { describe, expect, it } from 'vitest';
import { memoryDeliveryLedger } from '../../../api/services/deliveries.ts';

describe('memoryDeliveryLedger', () => {
  it('claims an id once within the ttl, again after it or after release', async () => {
    let now = 1_000;
    const ledger = memoryDeliveryLedger(60, 100, () => now);
    expect(await ledger.claim('a')).toBe(true);
    expect(await ledger.claim('a')).toBe(false);
    now += 60_001;
    expect(await ledger.claim('a')).toBe(true);
    await ledger.release('a');
    expect(await ledger.claim('a')).toBe(true);
  });

  it('holds at most max ids, forgetting the oldest first', async () => {
    const ledger = memoryDeliveryLedger(3600, 3, () => 0);
    for (const id of ['a', 'b', 'c', 'd']) expect(await ledger.claim(id)).toBe(true);
    expect(await ledger.claim('d')).toBe(false);
    expect(await ledger.claim('b')).toBe(false);
    expect(await ledger.claim('a')).toBe(true);
  });
});
