import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import type { BuildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { localStore } from '../../../store/local.ts';

const TOKEN = 'f'.repeat(32);
const AUTH = { authorization: `Bearer ${TOKEN}` };
const VALID = {
  app: 'hello',
  source: { git: 'https://git.example.com/a/hello.git', commit: 'a'.repeat(40) },
  targets: ['linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', { otp: '27' }],
};

/** A builds service that accepts whatever passed validation (the fuzz is about the HTTP edge). */
const stubBuilds: BuildService = {
  submit: async () => ({ buildSet: 's', builds: [{ id: `b${'0'.repeat(32)}`, tuple: 'x', status: 'queued' }], unresolved: [] }),
  status: async () => undefined,
  logs: async () => undefined,
  cancel: async () => 'unknown',
  buildSet: async () => undefined,
  list: async () => ({ builds: [] }),
};

describe('the API under malformed and hostile input', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildApp({ token: TOKEN, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(localStore('/nonexistent-xamal-fuzz')), builds: stubBuilds } });
  });
  afterAll(async () => app.close());

  it('answers 1,000 generated build bodies (random JSON and mutations of a valid one) without a single 5xx', { timeout: 60_000 }, async () => {
    const mutated = fc.record({
      app: fc.oneof(fc.constant('hello'), fc.string(), fc.constant('../../etc'), fc.constant('a'.repeat(100))),
      source: fc.oneof(fc.constant(VALID.source), fc.jsonValue(), fc.record({ git: fc.string(), ref: fc.string() }), fc.record({ archive: fc.string(), sha256: fc.string() })),
      targets: fc.oneof(fc.constant(VALID.targets), fc.array(fc.oneof(fc.string(), fc.jsonValue(), fc.dictionary(fc.constantFrom('otp', 'arch', 'distro', 'elixir', 'x'), fc.string())), { maxLength: 40 })),
    });
    const bodies = fc.oneof(fc.jsonValue(), mutated, fc.string());
    let count = 0;
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        count++;
        const payload = typeof body === 'string' ? body : JSON.stringify(body);
        const res = await app.inject({ method: 'POST', url: '/v1/builds', headers: { ...AUTH, 'content-type': 'application/json' }, payload });
        expect(res.statusCode).toBeLessThan(500);
        if (res.statusCode === 400) expect((res.json() as { message: string }).message.length).toBeGreaterThan(0);
      }),
      { numRuns: 1000 },
    );
    expect(count).toBe(1000);
  });

  it('answers random artifact paths and resolve bodies without a 5xx', { timeout: 60_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.string(), fc.string(), fc.string(), fc.jsonValue(), async (a, v, t, body) => {
        const seg = (s: string) => encodeURIComponent(s) || 'x';
        const r1 = await app.inject({ url: `/v1/artifacts/${seg(a)}/${seg(v)}/${seg(t)}`, headers: AUTH });
        expect(r1.statusCode).toBeLessThan(500);
        const r2 = await app.inject({ method: 'POST', url: '/v1/resolve', headers: AUTH, payload: body as object });
        expect(r2.statusCode).toBeLessThan(500);
        const r3 = await app.inject({ url: `/v1/builds/${seg(a)}/logs?follow=${seg(v)}`, headers: AUTH });
        expect(r3.statusCode).toBeLessThan(500);
      }),
      { numRuns: 300 },
    );
  });
});
