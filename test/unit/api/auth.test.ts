import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { hashToken, parseTokenEntries } from '../../../api/auth.ts';
import type { BuildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { localStore } from '../../../store/local.ts';

const ADMIN = 'admin-token-0123456789abcdefghij';
const READER = 'reader-token-0123456789abcdefghi';
const BUILDER = 'builder-token-0123456789abcdefgh';
const OPS = 'ops-token-0123456789abcdefghijklm';
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
  list: async () => ({ builds: [] }),
};
const stubQueues = {
  counts: async () => ({ x86_64: { waiting: 0, active: 0, delayed: 0, prioritized: 0, completed: 0, failed: 0, workers: 0 } }),
  recentlyFinished: async () => [],
  boardAdapters: () => [],
};

/** Every protected route, the scope it needs, and a request that passes validation. */
const ROUTES: { scope: 'read' | 'build' | 'admin'; method: 'GET' | 'POST' | 'DELETE'; url: string; payload?: object; type?: string }[] = [
  { scope: 'read', method: 'GET', url: `/v1/artifacts?app=hello&version=${C}` },
  { scope: 'read', method: 'GET', url: `/v1/artifacts/hello/${C}/${T}` },
  { scope: 'read', method: 'GET', url: `/v1/artifacts/hello/${C}/${T}/download` },
  { scope: 'read', method: 'GET', url: `/v1/artifacts/hello/${C}/${T}/link` },
  { scope: 'read', method: 'GET', url: `/v1/artifacts/hello/${C}/${T}/attestations` },
  { scope: 'read', method: 'GET', url: `/v1/artifacts/hello/${C}/${T}/provenance` },
  { scope: 'read', method: 'GET', url: `/v1/artifacts/hello/${C}/${T}/sbom` },
  { scope: 'read', method: 'POST', url: '/v1/resolve', payload: { app: 'hello', version: C, host: HOST } },
  { scope: 'read', method: 'GET', url: '/v1/builds' },
  { scope: 'read', method: 'GET', url: `/v1/builds/${B}` },
  { scope: 'read', method: 'GET', url: `/v1/builds/${B}/logs` },
  { scope: 'read', method: 'GET', url: `/v1/build-sets/s${'0'.repeat(32)}` },
  { scope: 'build', method: 'POST', url: '/v1/builds', payload: { app: 'hello', source: { git: 'https://x/y.git', commit: C }, targets: [T] } },
  { scope: 'build', method: 'DELETE', url: `/v1/builds/${B}` },
  { scope: 'build', method: 'POST', url: '/v1/sources', payload: undefined, type: 'application/gzip' },
  { scope: 'read', method: 'GET', url: '/metrics' },
  { scope: 'admin', method: 'GET', url: '/admin/queues' },
  { scope: 'admin', method: 'GET', url: '/admin/queues/api/queues' },
  { scope: 'admin', method: 'GET', url: '/admin/queues/static/favicon-32x32.png' },
];

/** Routes anyone may call (probes, the farm's public signing keys, the OpenAPI document and its UI, the builds page's static files). */
const PUBLIC = ['/healthz', '/readyz', '/v1/health', '/v1/keys', '/v1/openapi.json', '/docs', '/docs/json', '/builds/', '/builds/builds.js'];
/** Public routes of something this farm is not configured with (XAMAL_CLI_PACKAGE): 404 without a token too. */
const PUBLIC_UNCONFIGURED = ['/v1/cli', '/v1/cli/xamal-0.1.0.tgz'];
/** Public routes that check something else instead of a token: a signed link, GitHub's HMAC. */
const OWN_AUTH: { method: 'GET' | 'POST'; url: string; status: number }[] = [
  { method: 'GET', url: '/v1/downloads/not-a-signed-link', status: 403 },
  { method: 'POST', url: '/v1/hooks/github', status: 401 },
];

describe('token scopes on every route', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    const tokens = parseTokenEntries(`reader:read:${hashToken(READER).toString('hex')}; builder:build:${hashToken(BUILDER).toString('hex')}; ops:admin:${hashToken(OPS).toString('hex')}`);
    app = await buildApp({ token: ADMIN, tokens, logLevel: 'silent', githubHooks: { repos: {} }, services: { health: healthService({}), ...storeBackedServices(localStore('/nonexistent-xamal-auth')), builds: stubBuilds, queues: stubQueues } });
  });
  afterAll(async () => app.close());

  const send = (r: (typeof ROUTES)[number], token?: string) =>
    app.inject({
      method: r.method,
      url: r.url,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(r.type ? { 'content-type': r.type } : {}) },
      ...(r.type ? { payload: Buffer.from('\x1f\x8b not really gzip but long enough') } : r.payload ? { payload: r.payload } : {}),
    });

  const right = { read: READER, build: BUILDER, admin: OPS } as const;
  const wrongToken = { read: BUILDER, build: READER, admin: BUILDER } as const;
  for (const r of ROUTES) {
    it(`${r.method} ${r.url.split('/').slice(0, 4).join('/')}…: 401 without a token, 403 with the wrong scope, allowed with ${r.scope} and with admin`, async () => {
      expect((await send(r)).statusCode).toBe(401);
      expect((await send(r, 'not-a-token-of-this-farm-at-all')).statusCode).toBe(401);
      const wrong = await send(r, wrongToken[r.scope]);
      expect(wrong.statusCode).toBe(403);
      expect(wrong.json().message).toMatch(new RegExp(`lacks the ${r.scope} scope`));
      if (r.scope === 'admin') expect((await send(r, READER)).statusCode).toBe(403);
      for (const token of [right[r.scope], ADMIN]) {
        const ok = await send(r, token);
        expect([401, 403]).not.toContain(ok.statusCode);
        expect(ok.statusCode).toBeLessThan(500);
      }
    });
  }

  it('answers the public routes without a token; signed links and webhooks refuse on their own terms', async () => {
    for (const url of PUBLIC) expect((await app.inject({ url })).statusCode, url).toBeLessThan(400);
    for (const url of PUBLIC_UNCONFIGURED) expect((await app.inject({ url })).statusCode, url).toBe(404);
    for (const r of OWN_AUTH) {
      const res = await app.inject({ method: r.method, url: r.url, ...(r.method === 'POST' ? { payload: { zen: 'x' }, headers: { 'x-github-event': 'ping' } } : {}) });
      expect(res.statusCode, r.url).toBe(r.status);
    }
  });

  it('covers every route of the OpenAPI document (so a new route cannot skip this matrix)', async () => {
    const doc = (await app.inject({ url: '/v1/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
    const known = [...ROUTES, ...[...PUBLIC, ...PUBLIC_UNCONFIGURED].map((url) => ({ method: 'GET', url })), ...OWN_AUTH];
    const missing: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      const re = new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/?]+')}(\\?.*)?$`);
      for (const method of Object.keys(ops)) if (!known.some((k) => k.method === method.toUpperCase() && re.test(k.url))) missing.push(`${method.toUpperCase()} ${path}`);
    }
    expect(missing).toEqual([]);
  });

  it('asks a browser for the admin token as HTTP Basic auth under /admin and accepts it there', async () => {
    const denied = await app.inject({ url: '/admin/queues' });
    expect(denied.statusCode).toBe(401);
    expect(denied.headers['www-authenticate']).toMatch(/^Basic realm="xamal farm admin"/);
    const basic = (token: string) => ({ authorization: `Basic ${Buffer.from(`anyone:${token}`).toString('base64')}` });
    const page = await app.inject({ url: '/admin/queues', headers: basic(OPS) });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect((await app.inject({ url: '/admin/queues', headers: basic(READER) })).statusCode).toBe(403);
    expect((await app.inject({ url: '/v1/builds/x', headers: { authorization: 'Basic !!!' } })).statusCode).toBe(401);
    expect((await app.inject({ url: `/v1/build-sets/s${'0'.repeat(32)}` })).headers['www-authenticate']).toBeUndefined();
  });

  it('reports every bad XAMAL_FARM_TOKENS entry at once, naming its position', () => {
    expect(() => parseTokenEntries('ci:build:zz; Bad Name:read:' + 'a'.repeat(64) + '; x:fly:' + 'a'.repeat(64))).toThrow(
      /XAMAL_FARM_TOKENS\/0\/sha256[\s\S]*XAMAL_FARM_TOKENS\/1\/name[\s\S]*XAMAL_FARM_TOKENS\/2\/scopes/,
    );
  });
});
