import { request } from 'node:http';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { dockerEngine } from '../../../builder/docker.ts';
import { s3Store } from '../../../store/s3.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';

function getJson(url: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(data) }));
    })
      .on('error', reject)
      .end();
  });
}

describe('the real services started by the harness', () => {
  it('Redis answers PING and keeps a per-test key prefix apart', async () => {
    const redis = new Redis(services().redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      expect(await redis.ping()).toBe('PONG');
      const key = `${testPrefix('redis')}:k`;
      await redis.set(key, 'v', 'EX', 60);
      expect(await redis.get(key)).toBe('v');
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    } finally {
      redis.disconnect();
    }
  });

  it('the Docker engine answers version on its own socket', async () => {
    const v = await dockerEngine(services().dockerSocket).version();
    expect(v.version).toMatch(/^\d+\.\d+/);
    expect(Number(v.apiVersion)).toBeGreaterThanOrEqual(1.41);
    expect(v.os).toBe('linux');
  });

  it('S3 stores an object and returns the same bytes, under a test prefix', async () => {
    const s = services().s3;
    const store = s3Store({ ...s, prefix: `${testPrefix('s3')}/` });
    const body = Buffer.from(`hello ${Date.now()}\n`);
    await store.put('dir/obj.txt', body, 'text/plain');
    expect(await store.exists('dir/obj.txt')).toBe(true);
    expect((await store.get('dir/obj.txt'))?.equals(body)).toBe(true);
    expect(await store.list('dir/')).toEqual(['dir/obj.txt']);
    await store.delete('dir/obj.txt');
    expect(await store.get('dir/obj.txt')).toBeUndefined();
  });

  it('the registry answers its catalog on loopback', async () => {
    const r = await getJson(`http://${services().registry}/v2/_catalog`);
    expect(r.status).toBe(200);
    expect(r.body).toHaveProperty('repositories');
  });
});
