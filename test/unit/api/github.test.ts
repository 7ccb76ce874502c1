import { createHmac } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { parseGithubHooks } from '../../../api/routes/github.ts';
import type { BuildRequest } from '../../../api/schemas/builds.ts';
import type { BuildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { localStore } from '../../../store/local.ts';

const SECRET = 'webhook-secret-0123456789';
const sign = (body: string, secret = SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

describe('POST /v1/hooks/github', () => {
  let app: FastifyInstance;
  const submitted: BuildRequest[] = [];
  beforeAll(async () => {
    const builds: BuildService = {
      submit: async (r) => (submitted.push(r), { buildSet: 's1', builds: [], unresolved: [] }),
      status: async () => undefined,
      logs: async () => undefined,
      cancel: async () => 'unknown',
      buildSet: async () => undefined,
    };
    const githubHooks = parseGithubHooks({ repos: { 'acme/hello': { secret: SECRET, app: 'hello', git: 'https://github.com/acme/hello.git', matrix: { otp: ['27'], arch: ['x86_64', 'aarch64'] } } } });
    app = await buildApp({ token: 't'.repeat(32), logLevel: 'silent', githubHooks, services: { health: healthService({}), ...storeBackedServices(localStore('/nonexistent-xamal-gh')), builds } });
  });
  afterAll(async () => app.close());

  const deliver = (event: string, payload: object, signature?: string) => {
    const body = JSON.stringify(payload);
    return app.inject({
      method: 'POST',
      url: '/v1/hooks/github',
      headers: { 'content-type': 'application/json', 'x-github-event': event, ...(signature !== undefined ? { 'x-hub-signature-256': signature } : { 'x-hub-signature-256': sign(body) }) },
      payload: body,
    });
  };

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
});
