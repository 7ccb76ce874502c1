import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { BuildStatusSchema, SubmitResultSchema, type BuildStatus, type SubmitResult } from '../../../api/schemas/builds.ts';
import type { BuildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { farmClient, type FarmClient } from '../../../deployer/farm-client.ts';
import { localStore } from '../../../store/local.ts';
import { putArtifact } from '../../../testkit/api/artifact.ts';

const TOKEN = 'k'.repeat(32);
const B = `b${'1'.repeat(32)}`;
const C = 'a'.repeat(40);
const T = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
const TARBALL = Buffer.from('tar');
const SHA = createHash('sha256').update(TARBALL).digest('hex');

/** Every field a build status can carry, so a field the route's schema drops shows up missing. */
const STATUS: BuildStatus = {
  id: B, arch: 'x86_64', state: 'completed', phase: 'done', attemptsMade: 1, failedReason: 'first attempt lost its worker',
  result: { manifestKey: `artifacts/hello/${C}/${T}/manifest.json`, tuple: T, sha256: SHA, cached: false },
  createdAt: 1, startedAt: 2, finishedAt: 3, waitingReason: 'none',
};
const SUBMITTED: SubmitResult = { buildSet: `s${'2'.repeat(32)}`, builds: [{ id: B, tuple: T, status: 'done', manifestKey: 'm' }], unresolved: [{ target: { otp: '19' }, reasons: ['too old'] }] };

const builds: BuildService = {
  submit: async () => SUBMITTED,
  status: async (id) => (id === B ? STATUS : undefined),
  logs: async () => undefined,
  cancel: async () => 'unknown',
  buildSet: async () => undefined,
  list: async () => ({ builds: [] }),
};

/** fetch over app.inject: the client talks to the app as it would over HTTP. */
const viaInject =
  (app: FastifyInstance): typeof fetch =>
  async (input, init) => {
    const url = new URL(String(input));
    const res = await app.inject({
      method: init?.method as 'GET' | 'POST',
      url: `${url.pathname}${url.search}`,
      headers: init?.headers as Record<string, string>,
      ...(init?.body ? { payload: String(init.body) } : {}),
    });
    const headers = Object.entries(res.headers).map(([k, v]) => [k, String(v)] as [string, string]);
    return new Response(res.rawPayload.length ? new Uint8Array(res.rawPayload) : null, { status: res.statusCode, headers });
  };

describe('the farm client reads what the API routes answer, through the same schemas', () => {
  let dir: string;
  let app: FastifyInstance;
  let client: FarmClient;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-contract-'));
    const store = localStore(dir);
    await putArtifact(store, { app: 'hello', version: C, tuple: T, body: TARBALL });
    app = await buildApp({ token: TOKEN, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(store), builds } });
    client = farmClient('http://farm.test', TOKEN, viaInject(app));
  });
  afterAll(async () => {
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('GET /v1/builds/:id sends every field of the build status, and the client gets them all', async () => {
    const res = await app.inject({ url: `/v1/builds/${B}`, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(BuildStatusSchema.parse(res.json())).toEqual(STATUS);
    expect(await client.status(B)).toEqual(STATUS);
  });

  it('POST /v1/builds answers the submission as SubmitResultSchema reads it, with the status the client passes on', async () => {
    const sent = await client.submit({ app: 'hello', source: { git: 'https://x/y.git', commit: C }, targets: [T] });
    expect(sent).toEqual({ status: 202, body: SubmitResultSchema.parse(SUBMITTED) });
  });

  it('the download redirect carries the link in the headers the client reads', async () => {
    const link = await client.downloadLink('hello', C, T);
    expect(link.sha256).toBe(SHA);
    expect(link.url).toMatch(/^http:\/\/localhost(:80)?\/v1\/downloads\/[\w-]+\.[\w-]+$/);
    expect(Date.parse(link.expires)).toBeGreaterThan(Date.now());
  });

  it("a 404 reaches the client as not_found with the farm's message", async () => {
    await expect(client.status(`b${'9'.repeat(32)}`)).rejects.toMatchObject({ code: 'not_found', message: `farm: no build b${'9'.repeat(32)}` });
    await expect(client.resolve({ app: 'other', version: C, host: { os: 'linux', arch: 'x86_64', libc: 'gnu', libcVersion: '2.36', distro: 'debian', distroVersion: '12', libraries: [] } })).rejects.toMatchObject({
      code: 'not_found',
      message: expect.stringMatching(/^farm: no artifact of other/),
    });
  });

  it('the OpenAPI document describes the build status with the fields the client parses', async () => {
    const doc = (await app.inject({ url: '/v1/openapi.json' })).json() as { paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, { schema: { properties: object } }> }> }>> };
    const described = doc.paths['/v1/builds/{id}']!.get!.responses['200']!.content['application/json']!.schema.properties;
    expect(Object.keys(described).sort()).toEqual(Object.keys(BuildStatusSchema.shape).sort());
  });
});
