import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { localStore } from '../../../store/local.ts';

const TOKEN = 's'.repeat(32);
const AUTH = { authorization: `Bearer ${TOKEN}` };

describe('POST /v1/sources', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-src-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('stores a gzipped archive under its sha256 and answers the source to build from', async () => {
    const store = localStore(dir);
    const app = await buildApp({ token: TOKEN, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(store) } });
    const body = gzipSync(Buffer.from('pretend this is a tarball of a mix project'));
    const sha256 = createHash('sha256').update(body).digest('hex');
    const res = await app.inject({ method: 'POST', url: '/v1/sources', headers: { ...AUTH, 'content-type': 'application/gzip' }, payload: body });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toEqual({ archive: `sources/${sha256}.tar.gz`, sha256, size: body.length });
    expect((await store.get(`sources/${sha256}.tar.gz`))!.equals(body)).toBe(true);
    const wrongType = await app.inject({ method: 'POST', url: '/v1/sources', headers: { ...AUTH, 'content-type': 'application/json' }, payload: '{}' });
    expect(wrongType.statusCode).toBeGreaterThanOrEqual(400);
    expect(wrongType.statusCode).toBeLessThan(500);
    expect((await app.inject({ method: 'POST', url: '/v1/sources', headers: { 'content-type': 'application/gzip' }, payload: body })).statusCode).toBe(401);
    await app.close();
  });

  it('refuses an archive over the size limit with 400 and keeps nothing of it', async () => {
    const store = localStore(join(dir, 'small'));
    const app = await buildApp({ token: TOKEN, logLevel: 'silent', maxSourceBytes: 1000, services: { health: healthService({}), ...storeBackedServices(store) } });
    const res = await app.inject({ method: 'POST', url: '/v1/sources', headers: { ...AUTH, 'content-type': 'application/gzip' }, payload: Buffer.alloc(5000, 1) });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/at most 1000 bytes/);
    expect(await store.list('sources/')).toEqual([]);
    await app.close();
  });
});
