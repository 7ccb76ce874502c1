import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { hashToken, parseTokenEntries } from '../../../api/auth.ts';
import type { BuildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { localStore } from '../../../core/storage/local.ts';

const ADMIN = 'admin-token-0123456789abcdefghij';
const READER = 'reader-token-0123456789abcdefghi';
const BUILDER = 'builder-token-0123456789abcdefgh';
const C = 'a'.repeat(40);
const T = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
const B = `b${'0'.repeat(32)}`;
const HOST = { os: 'linux', arch: 'x86_64', libc: 'gnu', libcVersion: '2.36', distro: 'debian', distroVersion: '12', libraries: [] };

const stubBuilds: BuildService = {
  submit: async () => ({ buildSet: 's', builds: [{ id: B, tuple: T, status: 'queued' }], unresolved: [] }),
  status: async () => undefined,
  logs: async () => undefined,
  cancel: async () => 'unknown',
  buildSet: async () => undefined,
};

/** Every protected route, the scope it needs, and a request that passes validation. */
const ROUTES: { scope: 'read' | 'build'; method: 'GET' | 'POST' | 'DELETE'; url: string; payload?: object; type?: string }[] = [
  { scope: 'read', method: 'GET', url: `/v1/artifacts/hello/${C}/${T}` },
  { scope: 'read', method: 'GET', url: `/v1/artifacts/hello/${C}/${T}/download` },
  { scope: 'read', method: 'POST', url: '/v1/resolve', payload: { app: 'hello', version: C, host: HOST } },
  { scope: 'read', method: 'GET', url: `/v1/builds/${B}` },
  { scope: 'read', method: 'GET', url: `/v1/builds/${B}/logs` },
  { scope: 'read', method: 'GET', url: `/v1/build-sets/s${'0'.repeat(32)}` },
  { scope: 'build', method: 'POST', url: '/v1/builds', payload: { app: 'hello', source: { git: 'https://x/y.git', commit: C }, targets: [T] } },
  { scope: 'build', method: 'DELETE', url: `/v1/builds/${B}` },
  { scope: 'build', method: 'POST', url: '/v1/sources', payload: undefined, type: 'application/gzip' },
];

describe('token scopes on every route', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    const tokens = parseTokenEntries(`reader:read:${hashToken(READER).toString('hex')}; builder:build:${hashToken(BUILDER).toString('hex')}`);
    app = await buildApp({ token: ADMIN, tokens, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(localStore('/nonexistent-xamal-auth')), builds: stubBuilds } });
  });
  afterAll(async () => app.close());

  const send = (r: (typeof ROUTES)[number], token?: string) =>
    app.inject({
      method: r.method,
      url: r.url,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(r.type ? { 'content-type': r.type } : {}) },
      ...(r.type ? { payload: Buffer.from('\x1f\x8b not really gzip but long enough') } : r.payload ? { payload: r.payload } : {}),
    });

  for (const r of ROUTES) {
    it(`${r.method} ${r.url.split('/').slice(0, 3).join('/')}…: 401 without a token, 403 with the wrong scope, allowed with ${r.scope} and with admin`, async () => {
      expect((await send(r)).statusCode).toBe(401);
      const wrong = await send(r, r.scope === 'read' ? BUILDER : READER);
      expect(wrong.statusCode).toBe(403);
      expect(wrong.json().message).toMatch(new RegExp(`lacks the ${r.scope} scope`));
      for (const token of [r.scope === 'read' ? READER : BUILDER, ADMIN]) {
        const ok = await send(r, token);
        expect([401, 403]).not.toContain(ok.statusCode);
        expect(ok.statusCode).toBeLessThan(500);
      }
    });
  }

  it('reports every bad XAMAL_FARM_TOKENS entry at once, naming its position', () => {
    expect(() => parseTokenEntries('ci:build:zz; Bad Name:read:' + 'a'.repeat(64) + '; x:fly:' + 'a'.repeat(64))).toThrow(
      /XAMAL_FARM_TOKENS\/0\/sha256[\s\S]*XAMAL_FARM_TOKENS\/1\/name[\s\S]*XAMAL_FARM_TOKENS\/2\/scopes/,
    );
  });
});
