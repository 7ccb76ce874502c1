import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { services } from '../../../testkit/integration.ts';

/** Issue 18 item 2: the embedded Redis answers only clients that know its password. */
describe('the embedded Redis requires its password', () => {
  it('refuses a client without the password (NOAUTH) or with a wrong one, and answers the farm\'s URL', async () => {
    const withPw = new URL(services().redisUrl);
    const bare = `redis://${withPw.hostname}:${withPw.port}`;
    const attempts: Record<string, string> = {};
    for (const [name, url] of Object.entries({ none: bare, wrong: `redis://:wrong-password@${withPw.hostname}:${withPw.port}`, farm: withPw.toString() })) {
      const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => {});
      try {
        await r.connect().catch(() => {});
        attempts[name] = String(await r.set('xamal-auth-probe', name, 'EX', 5).catch((e: Error) => e.message));
      } finally {
        r.disconnect();
      }
    }
    console.log(`reliability: Redis auth → ${Object.values(attempts).filter((a) => a !== 'OK').length}/2 unauthenticated writes refused`);
    expect(attempts.none).toMatch(/NOAUTH/);
    expect(attempts.wrong).toMatch(/WRONGPASS|invalid password|NOAUTH/i);
    expect(attempts.farm).toBe('OK');
  });
});
