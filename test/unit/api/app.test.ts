import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { healthService, type HealthCheck } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { localStore } from '../../../store/local.ts';

const TOKEN = 'x'.repeat(32);
const AUTH = { authorization: `Bearer ${TOKEN}` };

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function build(checks: Record<string, HealthCheck> = { a: async () => true }): Promise<FastifyInstance> {
  app = await buildApp({ token: TOKEN, services: { health: healthService(checks), ...storeBackedServices(localStore('/nonexistent-xamal-store')) }, logLevel: 'silent' });
  return app;
}

describe('GET /v1/health', () => {
  it('answers 200 without a token when every check is up', async () => {
    const res = await (await build({ a: async () => true, b: async () => true })).inject({ method: 'GET', url: '/v1/health' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toEqual({ status: 'ok', checks: { a: 'up', b: 'up' } });
  });

  it('answers 503 naming the check that is down', async () => {
    const res = await (await build({ redis: async () => true, docker: async () => false })).inject({ method: 'GET', url: '/v1/health' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'degraded', checks: { redis: 'up', docker: 'down' } });
  });

  it('counts a check that throws as down', async () => {
    const res = await (
      await build({
        store: async () => {
          throw new Error('ECONNREFUSED');
        },
      })
    ).inject({ method: 'GET', url: '/v1/health' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'degraded', checks: { store: 'down' } });
  });

  it('also answers with a valid token', async () => {
    const res = await (await build()).inject({ method: 'GET', url: '/v1/health', headers: AUTH });
    expect(res.statusCode).toBe(200);
  });
});

describe('authentication', () => {
  it.each([
    ['no Authorization header', undefined],
    ['a wrong token of the same length', `Bearer ${'y'.repeat(32)}`],
    ['a wrong token of another length', 'Bearer short'],
    ['the token with a prefix of it only', `Bearer ${TOKEN.slice(0, 31)}`],
    ['the token with extra characters', `Bearer ${TOKEN}x`],
    ['another scheme', `Basic ${TOKEN}`],
    ['the bare token', TOKEN],
    ['an empty bearer', 'Bearer '],
  ])('answers 401 with %s on a private route', async (_what, authorization) => {
    const res = await (await build()).inject({
      method: 'GET',
      url: '/v1/artifacts',
      headers: authorization === undefined ? {} : { authorization },
    });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toEqual({
      statusCode: 401,
      error: 'unauthorized',
      message: 'missing or wrong bearer token (Authorization: Bearer <token>)',
    });
  });

  it('answers 401 for POST without a token before looking at the body', async () => {
    const res = await (await build()).inject({ method: 'POST', url: '/v1/builds', payload: '{not json', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(401);
  });
});

describe('unknown routes', () => {
  it('answer 404 with a JSON error body when the token is right', async () => {
    const res = await (await build()).inject({ method: 'GET', url: '/v1/nope?x=1', headers: AUTH });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toEqual({ statusCode: 404, error: 'not_found', message: 'no route GET /v1/nope' });
  });

  it('name the method in the 404', async () => {
    const res = await (await build()).inject({ method: 'DELETE', url: '/v1/health', headers: AUTH });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ statusCode: 404, error: 'not_found', message: 'no route DELETE /v1/health' });
  });
});

describe('liveness and readiness', () => {
  it('answers /healthz whenever the process runs and /readyz like /v1/health', async () => {
    const a = await build({ redis: async () => false });
    expect((await a.inject({ url: '/healthz' })).statusCode).toBe(200);
    const ready = await a.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ status: 'degraded', checks: { redis: 'down' } });
  });
});
