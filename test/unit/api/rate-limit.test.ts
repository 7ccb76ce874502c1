import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { hashToken, parseTokenEntries } from '../../../api/auth.ts';
import { farmConfig, parseRateLimit } from '../../../api/config.ts';
import type { BuildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { localStore } from '../../../store/local.ts';

const ADMIN = 'admin-token-0123456789abcdefghij';
const CI = 'ci-token-0123456789abcdefghijklm';
const OTHER = 'other-token-0123456789abcdefghij';
const T = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
const BODY = { app: 'hello', source: { git: 'https://x/y.git', commit: 'a'.repeat(40) }, targets: [T] };
const MAX = 5;

const stubBuilds: BuildService = {
  submit: async () => ({ buildSet: 's', builds: [{ id: `b${'0'.repeat(32)}`, tuple: T, status: 'queued' }], unresolved: [] }),
  status: async () => undefined,
  logs: async () => undefined,
  cancel: async () => 'unknown',
  buildSet: async () => undefined,
  list: async () => ({ builds: [] }),
};

describe('the per-token rate limit on POST routes', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    const tokens = parseTokenEntries(`ci:build+read:${hashToken(CI).toString('hex')}; other:build+read:${hashToken(OTHER).toString('hex')}`);
    app = await buildApp({
      token: ADMIN,
      tokens,
      logLevel: 'silent',
      githubHooks: { repos: {} },
      rateLimit: { max: MAX, windowMs: 60_000 },
      services: { health: healthService({}), ...storeBackedServices(localStore('/nonexistent-xamal-rl')), builds: stubBuilds },
    });
  });
  afterAll(async () => app.close());

  const post = (token: string, url = '/v1/builds') => app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` }, payload: BODY });

  it(`lets a token make ${MAX} POSTs per window and answers the next with 429, Retry-After and a body naming the limit; another token is unaffected`, async () => {
    for (let i = 0; i < MAX; i++) expect((await post(CI)).statusCode).toBe(202);
    const over = await post(CI);
    expect(over.statusCode).toBe(429);
    const retryAfter = Number(over.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const body = over.json();
    expect(body).toMatchObject({ statusCode: 429, error: 'rate_limited' });
    expect(body.message).toContain('token ci is over the rate limit of 5 POST requests per minute');
    expect(body.message).toContain('XAMAL_API_RATE_LIMIT');
    expect(body.message).not.toContain(CI);
    // The same token's POSTs to another route that starts work share its budget.
    expect((await app.inject({ method: 'POST', url: '/v1/sources', headers: { authorization: `Bearer ${CI}`, 'content-type': 'application/gzip' }, payload: Buffer.from('x') })).statusCode).toBe(429);

    expect((await post(OTHER)).statusCode).toBe(202);
  });

  it('does not count reads (also POST /v1/resolve: a deploy to more hosts than the budget resolves once per host), unauthenticated requests or the signed GitHub webhook', async () => {
    for (let i = 0; i < MAX + 2; i++) {
      expect((await post(ADMIN, '/v1/resolve')).statusCode).not.toBe(429);
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: `/v1/builds/b${'0'.repeat(32)}`, headers: { authorization: `Bearer ${ADMIN}` } })).statusCode).toBe(404);
      expect((await app.inject({ method: 'POST', url: '/v1/builds', payload: BODY })).statusCode).toBe(401);
      expect((await app.inject({ method: 'POST', url: '/v1/hooks/github', payload: {} })).statusCode).not.toBe(429);
    }
    expect((await post(ADMIN)).statusCode).toBe(202);
  });

  it('reads XAMAL_API_RATE_LIMIT as requests per window (60/min by default, off turns it off) and rejects nonsense naming the setting', () => {
    expect(farmConfig({}).rateLimit).toEqual({ max: 60, windowMs: 60_000 });
    expect(farmConfig({ XAMAL_API_RATE_LIMIT: '600/h' }).rateLimit).toEqual({ max: 600, windowMs: 3_600_000 });
    expect(parseRateLimit('20/10s')).toEqual({ max: 20, windowMs: 10_000 });
    expect(parseRateLimit('off').max).toBe(0);
    expect(() => farmConfig({ XAMAL_API_RATE_LIMIT: 'lots' })).toThrow(/XAMAL_API_RATE_LIMIT[\s\S]*60\/min/);
  });
});
