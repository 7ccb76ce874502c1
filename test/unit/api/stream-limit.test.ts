import { describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { hashToken } from '../../../api/auth.ts';
import { farmConfig } from '../../../api/config.ts';
import type { BuildStatus } from '../../../api/schemas/builds.ts';
import type { BuildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { streamLimit } from '../../../api/stream-limit.ts';
import { localStore } from '../../../store/local.ts';

const ADMIN = 'a'.repeat(32);
const CI = 'c'.repeat(32);
const B = `b${'0'.repeat(32)}`;

/** A build that runs until `finish()`: every follower's stream stays open until then. */
function runningBuild() {
  let state: BuildStatus['state'] = 'active';
  let polls = 0;
  const status = (): BuildStatus => ({ id: B, arch: 'x86_64', state, phase: 'compile', attemptsMade: 1, createdAt: 0, startedAt: 0 });
  const builds: BuildService = {
    submit: async () => ({ buildSet: 's', builds: [], unresolved: [] }),
    status: async () => (polls++, status()),
    logs: async () => ({ lines: ['compiling'], count: 1 }),
    cancel: async () => 'unknown',
    buildSet: async () => undefined,
    list: async () => ({ builds: [] }),
  };
  return { builds, finish: () => void (state = 'completed'), polls: () => polls };
}

describe('log streams per token', () => {
  it('counts open streams per key, gives a place back once, and refuses past the most', () => {
    const l = streamLimit(2);
    const a1 = l.open('a')!;
    const a2 = l.open('a')!;
    expect(l.open('a')).toBeUndefined();
    expect(l.open('b')).toBeDefined();
    a1();
    a1();
    expect(l.count('a')).toBe(1);
    expect(l.open('a')).toBeDefined();
    a2();
  });

  it('a token with 8 streams open gets 429 naming the limit for a 9th; another token is not affected; once one closes it may open again', async () => {
    const run = runningBuild();
    const tokens = [{ name: 'ci', scopes: ['read'] as const, sha256: hashToken(CI) }];
    const app = await buildApp({ token: ADMIN, tokens, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(localStore('/nonexistent-xamal-streams')), builds: run.builds } });
    try {
      const follow = (token: string) => app.inject({ url: `/v1/builds/${B}/logs?follow=1`, headers: { authorization: `Bearer ${token}` } });
      const open = Array.from({ length: 8 }, () => follow(ADMIN));
      while (run.polls() < 8) await new Promise((r) => setTimeout(r, 10));
      const ninth = await follow(ADMIN);
      expect(ninth.statusCode).toBe(429);
      expect(ninth.headers['retry-after']).toBe('5');
      expect(ninth.json()).toEqual({
        statusCode: 429,
        error: 'too_many_streams',
        message: 'token admin has 8 log streams open, the most one token may hold on this API process (XAMAL_API_MAX_STREAMS_PER_TOKEN); close one and retry',
      });
      const other = follow(CI);
      const plain = await app.inject({ url: `/v1/builds/${B}/logs`, headers: { authorization: `Bearer ${ADMIN}` } });
      expect(plain.statusCode).toBe(200);
      run.finish();
      const ended = await Promise.all([...open, other]);
      expect(ended.map((r) => r.statusCode)).toEqual(Array(9).fill(200));
      expect(ended.every((r) => r.body.includes('event: end'))).toBe(true);
      const again = await follow(ADMIN);
      expect(again.statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('takes the limit from XAMAL_API_MAX_STREAMS_PER_TOKEN (default 8) and refuses 0', () => {
    expect(farmConfig({}).maxStreamsPerToken).toBe(8);
    expect(farmConfig({ XAMAL_API_MAX_STREAMS_PER_TOKEN: '2' }).maxStreamsPerToken).toBe(2);
    expect(() => farmConfig({ XAMAL_API_MAX_STREAMS_PER_TOKEN: '0' })).toThrow(/XAMAL_API_MAX_STREAMS_PER_TOKEN/);
  });
});
