import { createHmac, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { parseGithubHooks } from '../../../api/routes/github.ts';
import type { BuildRequest } from '../../../api/schemas/builds.ts';
import type { BuildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { localStore } from '../../../store/local.ts';
import { XamalError } from '../../../core/index.ts';
import { deliveryLedger } from '../../../queue/index.ts';
import { fakeLedgerRedis } from '../../../testkit/fake-redis.ts';

const SECRET = 'webhook-secret-0123456789';
const sign = (body: string, secret = SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

describe('POST /v1/hooks/github', () => {
  let app: FastifyInstance;
  const submitted: BuildRequest[] = [];
  /** Submits that throw before counting (a queue that is down), while set. */
  let failing = false;
  beforeAll(async () => {
    const builds: BuildService = {
      submit: async (r) => {
        if (failing) throw new XamalError('unavailable', 'build queue unavailable: Redis at 127.0.0.1:6379 is unreachable');
        submitted.push(r);
        return { buildSet: 's1', builds: [], unresolved: [] };
      },
      status: async () => undefined,
      logs: async () => undefined,
      cancel: async () => 'unknown',
      buildSet: async () => undefined,
      list: async () => ({ builds: [] }),
    };
    const githubHooks = parseGithubHooks({ repos: { 'acme/hello': { secret: SECRET, app: 'hello', git: 'https://github.com/acme/hello.git', matrix: { otp: ['27'], arch: ['x86_64', 'aarch64'] } } } });
    app = await buildApp({ token: 't'.repeat(32), logLevel: 'silent', githubHooks, services: { health: healthService({}), ...storeBackedServices(localStore('/nonexistent-xamal-gh')), builds } });
  });
  afterAll(async () => app.close());

  const deliver = (event: string, payload: unknown, signature?: string, delivery: string | null = randomUUID()) => {
    const body = JSON.stringify(payload);
    return app.inject({
      method: 'POST',
      url: '/v1/hooks/github',
      headers: {
        'content-type': 'application/json',
        'x-github-event': event,
        'x-hub-signature-256': signature ?? sign(body),
        ...(delivery !== null ? { 'x-github-delivery': delivery } : {}),
      },
      payload: body,
    });
  };
  const release = (tag: unknown, repo = 'acme/hello') => ({ action: 'published', release: { tag_name: tag }, repository: { full_name: repo } });

  it('starts the configured matrix for a signed published release, at its tag', async () => {
    const res = await deliver('release', { action: 'published', release: { tag_name: 'v1.2.0' }, repository: { full_name: 'acme/hello' } });
    expect(res.statusCode).toBe(202);
    expect(submitted.at(-1)).toMatchObject({ app: 'hello', source: { git: 'https://github.com/acme/hello.git', ref: 'v1.2.0' }, matrix: { otp: ['27'], arch: ['x86_64', 'aarch64'] } });
  });

  it('builds the pushed commit for a signed tag push, and ignores branch pushes', async () => {
    const sha = 'c'.repeat(40);
    expect((await deliver('push', { ref: 'refs/tags/v1.2.1', after: sha, repository: { full_name: 'acme/hello' } })).statusCode).toBe(202);
    expect(submitted.at(-1)!.source).toEqual({ git: 'https://github.com/acme/hello.git', commit: sha });
    const n = submitted.length;
    const branch = await deliver('push', { ref: 'refs/heads/main', after: sha, repository: { full_name: 'acme/hello' } });
    expect(branch.statusCode).toBe(202);
    expect(branch.json()).toHaveProperty('ignored');
    expect(submitted.length).toBe(n);
  });

  it('refuses unsigned, mis-signed and unknown-repository deliveries with 401 and starts nothing', async () => {
    const n = submitted.length;
    const payload = { action: 'published', release: { tag_name: 'v9' }, repository: { full_name: 'acme/hello' } };
    expect((await deliver('release', payload, '')).statusCode).toBe(401);
    expect((await deliver('release', payload, sign(JSON.stringify(payload), 'wrong-secret-0123456789'))).statusCode).toBe(401);
    expect((await deliver('release', { ...payload, repository: { full_name: 'evil/repo' } })).statusCode).toBe(401);
    expect(submitted.length).toBe(n);
  });

  it('answers a signed ping', async () => {
    expect((await deliver('ping', { zen: 'hi', repository: { full_name: 'acme/hello' } })).json()).toEqual({ ok: true });
  });

  it('a replayed delivery id is answered 200 "already handled" and submits nothing, however often it comes', async () => {
    const id = randomUUID();
    expect((await deliver('release', release('v2.0.0'), undefined, id)).statusCode).toBe(202);
    const n = submitted.length;
    for (let i = 0; i < 3; i++) {
      const again = await deliver('release', release('v2.0.0'), undefined, id);
      expect(again.statusCode).toBe(200);
      expect(again.json()).toEqual({ duplicate: id, message: `delivery ${id} was already handled; nothing submitted` });
    }
    expect(submitted.length).toBe(n);
  });

  it('a delivery whose submit failed is taken again when GitHub redelivers it (same id)', async () => {
    const id = randomUUID();
    failing = true;
    try {
      expect((await deliver('release', release('v2.1.0'), undefined, id)).statusCode).toBe(503);
    } finally {
      failing = false;
    }
    const n = submitted.length;
    expect((await deliver('release', release('v2.1.0'), undefined, id)).statusCode).toBe(202);
    expect(submitted.length).toBe(n + 1);
  });

  it('refuses repositories named like Object.prototype members with 401, never a 500', async () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__']) {
      const res = await deliver('release', release('v1', name));
      expect(res.statusCode, name).toBe(401);
    }
  });

  it('refuses a signed release whose tag_name is no usable tag with 400 naming release/tag_name, and submits nothing', async () => {
    const n = submitted.length;
    for (const tag of ['-x', 'a..b', '', 'v1 2', null, 42, { a: 1 }, 'x'.repeat(300), undefined]) {
      const res = await deliver('release', release(tag));
      expect(res.statusCode, JSON.stringify(tag)).toBe(400);
      expect((res.json() as { message: string }).message).toMatch(/^release\/tag_name: /m);
    }
    expect(submitted.length).toBe(n);
  });

  it('answers payloads that are not an object of a known repository with 4xx: JSON null, a number, an array, a string, not JSON', async () => {
    for (const body of ['null', '5', '[]', '"acme/hello"', '{"repository": null}', '{"repository": {"full_name": 7}}', '{', '']) {
      const res = await app.inject({ method: 'POST', url: '/v1/hooks/github', headers: { 'content-type': 'application/json', 'x-github-event': 'release', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': sign(body) }, payload: body });
      expect(res.statusCode, body).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, body).toBeLessThan(500);
    }
  });

  it('refuses a signed delivery without X-GitHub-Delivery or X-GitHub-Event with 400 naming the header', async () => {
    const missingId = await deliver('release', release('v3'), undefined, null);
    expect(missingId.statusCode).toBe(400);
    expect((missingId.json() as { message: string }).message).toMatch(/headers\/x-github-delivery: expected the delivery GUID/);
    const badId = await deliver('release', release('v3'), undefined, '../../x');
    expect(badId.statusCode).toBe(400);
    const noEvent = await deliver('', release('v3'));
    expect(noEvent.statusCode).toBe(400);
    expect((noEvent.json() as { message: string }).message).toMatch(/headers\/x-github-event/);
  });

  it('ignores a deleted tag (after = 40 zeros) and refuses a tag push whose after is no commit SHA', async () => {
    const n = submitted.length;
    const deleted = await deliver('push', { ref: 'refs/tags/v1', after: '0'.repeat(40), deleted: true, repository: { full_name: 'acme/hello' } });
    expect(deleted.statusCode).toBe(202);
    expect(deleted.json()).toHaveProperty('ignored');
    const bad = await deliver('push', { ref: 'refs/tags/v1', after: 'HEAD~1', repository: { full_name: 'acme/hello' } });
    expect(bad.statusCode).toBe(400);
    expect((bad.json() as { message: string }).message).toMatch(/^after: /);
    expect(submitted.length).toBe(n);
  });
});

describe('POST /v1/hooks/github on several API processes sharing one Redis', () => {
  it('submits a delivery once whichever process each copy of it reaches, and the replay answers 200', async () => {
    const { redis } = fakeLedgerRedis();
    const submitted: BuildRequest[] = [];
    const builds: BuildService = {
      submit: async (r) => (submitted.push(r), { buildSet: 's1', builds: [], unresolved: [] }),
      status: async () => undefined,
      logs: async () => undefined,
      cancel: async () => 'unknown',
      buildSet: async () => undefined,
      list: async () => ({ builds: [] }),
    };
    const githubHooks = parseGithubHooks({ repos: { 'acme/hello': { secret: SECRET, app: 'hello', git: 'https://github.com/acme/hello.git', matrix: { otp: ['27'] } } } });
    const settings = { redisUrl: 'redis://127.0.0.1:6379', prefix: 'gh' };
    const apps = await Promise.all(
      [1, 2, 3].map(() =>
        buildApp({ token: 't'.repeat(32), logLevel: 'silent', githubHooks, services: { health: healthService({}), ...storeBackedServices(localStore('/nonexistent-xamal-gh')), builds, deliveries: deliveryLedger(settings, redis, 3600) } }),
      ),
    );
    try {
      const body = JSON.stringify({ action: 'published', release: { tag_name: 'v5' }, repository: { full_name: 'acme/hello' } });
      const id = randomUUID();
      const statuses = await Promise.all(
        [...apps, ...apps].map((app) =>
          app.inject({ method: 'POST', url: '/v1/hooks/github', headers: { 'content-type': 'application/json', 'x-github-event': 'release', 'x-github-delivery': id, 'x-hub-signature-256': sign(body) }, payload: body }).then((r) => r.statusCode),
        ),
      );
      expect(statuses.sort()).toEqual([200, 200, 200, 200, 200, 202]);
      expect(submitted).toHaveLength(1);
    } finally {
      await Promise.all(apps.map((a) => a.close()));
    }
  });
});
