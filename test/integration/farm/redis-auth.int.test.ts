import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { services } from '../../../testkit/integration.ts';

/** Issue 18 item 2: the embedded Redis answers only clients that know its password. */
describe('the embedded Redis requires its password', () => {
  it('refuses a client without the password (NOAUTH) or with a wrong one, and answers the farm\'s URL', async () => {
    const farmUrl = new URL(services().redisUrl);
    const bare = new Redis(`redis://${farmUrl.hostname}:${farmUrl.port}`, { lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const farm = new Redis(farmUrl.toString(), { lazyConnect: true, maxRetriesPerRequest: 0 });
    for (const r of [bare, farm]) r.on('error', () => {});
    const message = (p: Promise<unknown>) => p.then(String, (e: Error) => e.message);
    try {
      await bare.connect();
      const none = await message(bare.set('xamal-auth-probe', 'none', 'EX', 5));
      const wrong = await message(bare.auth('wrong-password'));
      const afterWrong = await message(bare.get('xamal-auth-probe'));
      await farm.connect();
      const ok = await message(farm.set('xamal-auth-probe', 'farm', 'EX', 5));
      console.log(`reliability: Redis auth → ${[none, wrong, afterWrong].filter((m) => /NOAUTH|WRONGPASS/.test(m)).length}/3 unauthenticated commands refused`);
      expect(none).toMatch(/^NOAUTH/);
      expect(wrong).toMatch(/^WRONGPASS/);
      expect(afterWrong).toMatch(/^NOAUTH/);
      expect(ok).toBe('OK');
    } finally {
      bare.disconnect();
      farm.disconnect();
    }
  });
});
