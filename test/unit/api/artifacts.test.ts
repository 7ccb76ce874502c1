import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { signDownload } from '../../../api/downloads.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { healthService } from '../../../api/services/health.ts';
import { localStore } from '../../../store/local.ts';
import { putArtifact } from '../../../testkit/api/artifact.ts';

const TOKEN = 't'.repeat(32);
const AUTH = { authorization: `Bearer ${TOKEN}` };
const TUPLE = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
const COMMIT = 'a'.repeat(40);

describe('artifact routes', () => {
  let dir: string;
  let app: FastifyInstance;
  const body = Buffer.from('not really a tarball, but bytes all the same');
  const sha256 = createHash('sha256').update(body).digest('hex');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-art-'));
    const store = localStore(dir);
    await putArtifact(store, { app: 'hello', version: COMMIT, tuple: TUPLE, body }, { glibcNeeded: '2.34', sonames: ['libc.so.6'] });
    app = await buildApp({ token: TOKEN, services: { health: healthService({}), ...storeBackedServices(store) }, logLevel: 'silent' });
  });
  afterAll(async () => {
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('returns the manifest of a stored artifact', async () => {
    const res = await app.inject({ url: `/v1/artifacts/hello/${COMMIT}/${TUPLE}`, headers: AUTH });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ tuple: TUPLE, glibcNeeded: '2.34', tarball: { sha256 } });
  });

  it('redirects a download to a short-lived link the API signed, which serves the tarball with its sha256 without a token', async () => {
    const res = await app.inject({ url: `/v1/artifacts/hello/${COMMIT}/${TUPLE}/download`, headers: { ...AUTH, host: 'farm.test:7420' } });
    expect(res.statusCode).toBe(302);
    expect(res.headers['x-xamal-sha256']).toBe(sha256);
    const location = new URL(String(res.headers.location));
    expect(location.origin).toBe('http://farm.test:7420');
    expect(location.pathname).toMatch(/^\/v1\/downloads\/[\w-]+\.[\w-]+$/);
    expect(Date.parse(String(res.headers['x-xamal-expires'])) - Date.now()).toBeGreaterThan(290_000);
    const got = await app.inject({ url: location.pathname });
    expect(got.statusCode).toBe(200);
    expect(got.headers['x-xamal-sha256']).toBe(sha256);
    expect(got.headers['content-length']).toBe(String(body.length));
    expect(got.rawPayload.equals(body)).toBe(true);
  });

  it('answers the same short-lived link as JSON at …/link (for a browser, whose fetch cannot read a redirect), and that link serves the tarball', async () => {
    const res = await app.inject({ url: `/v1/artifacts/hello/${COMMIT}/${TUPLE}/link`, headers: { ...AUTH, host: 'farm.test:7420' } });
    expect(res.statusCode).toBe(200);
    const link = res.json() as { url: string; sha256: string; expires: string };
    expect(link.sha256).toBe(sha256);
    expect(new URL(link.url).origin).toBe('http://farm.test:7420');
    expect(Date.parse(link.expires) - Date.now()).toBeGreaterThan(290_000);
    const got = await app.inject({ url: new URL(link.url).pathname });
    expect(got.rawPayload.equals(body)).toBe(true);
    expect((await app.inject({ url: `/v1/artifacts/hello/${COMMIT}/${TUPLE}/link` })).statusCode).toBe(401);
    expect((await app.inject({ url: `/v1/artifacts/hello/${'b'.repeat(40)}/${TUPLE}/link`, headers: AUTH })).statusCode).toBe(404);
  });

  it('refuses a download link that was tampered with (403) or has expired (410)', async () => {
    const res = await app.inject({ url: `/v1/artifacts/hello/${COMMIT}/${TUPLE}/download`, headers: AUTH });
    const path = new URL(String(res.headers.location)).pathname;
    const [payload, sig] = path.slice('/v1/downloads/'.length).split('.');
    const grant = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...grant, key: 'secrets/other' })).toString('base64url');
    const tampered = await app.inject({ url: `/v1/downloads/${forged}.${sig}` });
    expect(tampered.statusCode).toBe(403);
    expect(tampered.json().message).toMatch(/signature/);
    const expired = signDownload(app.settings.downloads.secret, { ...grant, exp: Math.floor(Date.now() / 1000) - 1 });
    const gone = await app.inject({ url: `/v1/downloads/${expired}` });
    expect(gone.statusCode).toBe(410);
    expect(gone.json().message).toMatch(/expired/);
    expect((await app.inject({ url: '/v1/downloads/garbage' })).statusCode).toBe(403);
  });

  it('answers 404 for an artifact that was never built', async () => {
    const res = await app.inject({ url: `/v1/artifacts/hello/${'c'.repeat(40)}/${TUPLE}`, headers: AUTH });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'not_found' });
  });

  it('refuses a bad tuple, app or version with 400 naming the field, before touching the store', async () => {
    const bad = await app.inject({ url: `/v1/artifacts/hello/${COMMIT}/linux-arm65-gnu2.36-debian12-otp25.2.3-elixir1.14.0`, headers: AUTH });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/tuple.*arch: expected one of/s);
    const trav = await app.inject({ url: `/v1/artifacts/..%2F..%2Fetc/${COMMIT}/${TUPLE}`, headers: AUTH });
    expect(trav.statusCode).toBe(400);
    expect(trav.json().message).toMatch(/app/);
    const ver = await app.inject({ url: `/v1/artifacts/hello/main/${TUPLE}`, headers: AUTH });
    expect(ver.statusCode).toBe(400);
    expect(ver.json().message).toMatch(/version/);
  });

  it('lists artifacts by commit prefix, tuple or selector string, and names a bad selector key', async () => {
    const all = await app.inject({ url: `/v1/artifacts?app=hello&version=${COMMIT.slice(0, 7)}`, headers: AUTH });
    expect(all.statusCode, all.body).toBe(200);
    expect(all.json().artifacts.map((a: { tuple: string }) => a.tuple)).toEqual([TUPLE]);
    const none = await app.inject({ url: `/v1/artifacts?app=hello&version=${COMMIT}&selector=otp%3D27`, headers: AUTH });
    expect(none.json().artifacts).toEqual([]);
    const bad = await app.inject({ url: `/v1/artifacts?app=hello&version=${COMMIT}&selector=colour%3Dred`, headers: AUTH });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/unknown key/);
  });

  it('takes a unique commit prefix, the mix.exs version or latest wherever it takes a commit, and names an ambiguous prefix (409)', async () => {
    const store = localStore(join(dir, 'versions'));
    const older = '1234567a'.padEnd(40, '0');
    const newer = '1234567b'.padEnd(40, '0');
    await putArtifact(store, { app: 'shop', version: older, tuple: TUPLE, body }, { releaseVersion: '1.0.0', builtAt: '2026-12-01T10:00:00.000Z' });
    await putArtifact(store, { app: 'shop', version: newer, tuple: TUPLE, body: Buffer.from('newer') }, { releaseVersion: '1.1.0', builtAt: '2026-12-02T10:00:00.000Z' });
    const api = await buildApp({ token: TOKEN, services: { health: healthService({}), ...storeBackedServices(store) }, logLevel: 'silent' });
    try {
      const versionOf = async (v: string) => {
        const res = await api.inject({ url: `/v1/artifacts/shop/${v}/${TUPLE}`, headers: AUTH });
        return res.statusCode === 200 ? res.json().version : `${res.statusCode} ${res.json().message}`;
      };
      expect(await versionOf(older.slice(0, 8))).toBe(older);
      expect(await versionOf('1.0.0')).toBe(older);
      expect(await versionOf('1.1.0')).toBe(newer);
      expect(await versionOf('latest')).toBe(newer);
      expect(await versionOf('1234567')).toMatch(/^409 version 1234567 is ambiguous for shop/);
      expect(await versionOf('2.0.0')).toMatch(/^404 no artifact for shop 2.0.0/);
      const dl = await api.inject({ url: `/v1/artifacts/shop/latest/${TUPLE}/download`, headers: AUTH });
      expect(dl.statusCode).toBe(302);
      expect(dl.headers['x-xamal-sha256']).toBe(createHash('sha256').update('newer').digest('hex'));
      const list = await api.inject({ url: `/v1/artifacts?app=shop&version=latest`, headers: AUTH });
      expect(list.json().artifacts.map((a: { version: string }) => a.version)).toEqual([newer]);
    } finally {
      await api.close();
    }
  });

  it('keeps each MIX_ENV of a commit apart: the default answers prod, `?mixEnv=` and resolve\'s `mixEnv` the other', async () => {
    const store = localStore(join(dir, 'variants'));
    const staging = Buffer.from('the staging build');
    await putArtifact(store, { app: 'shop', version: COMMIT, tuple: TUPLE, body }, { sonames: ['libc.so.6'] });
    await putArtifact(store, { app: 'shop', version: COMMIT, tuple: TUPLE, body: staging }, { mixEnv: 'staging', sonames: ['libc.so.6'] });
    const farm = await buildApp({ token: TOKEN, services: { health: healthService({}), ...storeBackedServices(store) }, logLevel: 'silent' });
    try {
      const get = (url: string) => farm.inject({ url, headers: AUTH });
      expect((await get(`/v1/artifacts/shop/${COMMIT}/${TUPLE}`)).json()).toMatchObject({ mixEnv: 'prod', tarball: { sha256 } });
      expect((await get(`/v1/artifacts/shop/${COMMIT}/${TUPLE}?mixEnv=staging`)).json()).toMatchObject({ mixEnv: 'staging', tarball: { key: expect.stringContaining('/staging/shop/') } });
      expect((await get(`/v1/artifacts/shop/${COMMIT}/${TUPLE}/download?mixEnv=staging`)).headers['x-xamal-sha256']).toBe(createHash('sha256').update(staging).digest('hex'));
      expect((await get(`/v1/artifacts?app=shop&version=latest&mixEnv=staging`)).json().artifacts).toEqual([expect.objectContaining({ mixEnv: 'staging', release: 'shop' })]);
      const missing = await get(`/v1/artifacts/shop/${COMMIT}/${TUPLE}?mixEnv=dev`);
      expect(missing.statusCode).toBe(404);
      expect(missing.json().message).toBe(`no artifact for shop ${COMMIT} (MIX_ENV=dev, release shop) on that target`);
      expect((await get(`/v1/artifacts/shop/${COMMIT}/${TUPLE}?mixEnv=Bad!`)).statusCode).toBe(400);
      const host = { os: 'linux', arch: 'x86_64', libc: 'gnu', libcVersion: '2.36', distro: 'debian', distroVersion: '12', distroCodename: 'bookworm', libraries: ['libc.so.6'], hostname: 'h', kernel: '6' };
      const resolved = await farm.inject({ method: 'POST', url: '/v1/resolve', headers: AUTH, payload: { app: 'shop', version: COMMIT, host, mixEnv: 'staging' } });
      expect(resolved.json().artifact.manifestKey).toBe(`artifacts/shop/${COMMIT}/${TUPLE}/staging/shop/manifest.json`);
    } finally {
      await farm.close();
    }
  });

  it('requires the token', async () => {
    const res = await app.inject({ url: `/v1/artifacts/hello/${COMMIT}/${TUPLE}` });
    expect(res.statusCode).toBe(401);
  });
});
