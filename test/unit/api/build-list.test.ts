import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { hashToken } from '../../../api/auth.ts';
import type { BuildList } from '../../../api/schemas/builds.ts';
import { buildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { REMOTE_GIT_ONLY } from '../../../core/contracts/git-url.ts';
import type { BuildJobInput } from '../../../core/contracts/build-job.ts';
import { RecordingExecutor } from '../../../core/index.ts';
import { farmClient } from '../../../deployer/farm-client.ts';
import { localStore } from '../../../store/local.ts';
import { memoryQueues } from '../../../testkit/api/memory-queues.ts';

const ADMIN = 'admin-token-0123456789abcdefghij';
const READ = 'read-token-0123456789abcdefghijk';
const BUILD_ONLY = 'build-token-0123456789abcdefghij';
const TUPLES = ['linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', 'linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3'] as const;
const COMMITS = ['1234abcd'.repeat(5), '9876fedc'.repeat(5)] as const;
const APPS = ['hello', 'shop', 'blog'] as const;

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

describe('GET /v1/builds: filters and pages', () => {
  let dir: string;
  let app: FastifyInstance;
  /** Every build made, in the order made (so the newest last). */
  const made: { id: string; app: string; commit: string; tuple: string; state: string }[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-build-list-'));
    const { queues, setState } = memoryQueues(1_764_900_000_000);
    // 3 apps × 2 commits × 2 tuples, made one millisecond apart; every third completed, every fifth failed.
    for (const name of APPS)
      for (const commit of COMMITS)
        for (const tuple of TUPLES) {
          const input: BuildJobInput = { app: name, source: { kind: 'git', url: `https://example.test/${name}.git`, commit }, target: tuple };
          const { id } = await queues.enqueue(input, 'x86_64');
          const state = made.length % 3 === 2 ? 'completed' : made.length % 5 === 4 ? 'failed' : 'waiting';
          setState(id, state);
          made.push({ id, app: name, commit, tuple, state });
        }
    const builds = buildService({ queues, store: localStore(dir), locks: async () => [], exec: new RecordingExecutor(), gitUrls: REMOTE_GIT_ONLY });
    const tokens = [
      { name: 'viewer', scopes: ['read'] as const, sha256: hashToken(READ) },
      { name: 'ci', scopes: ['build'] as const, sha256: hashToken(BUILD_ONLY) },
    ];
    app = await buildApp({ token: ADMIN, tokens, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(localStore(dir)), builds } });
  });
  afterAll(async () => {
    await app?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const list = async (query: string, token = READ): Promise<BuildList> => {
    const res = await app.inject({ url: `/v1/builds${query}`, headers: auth(token) });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as BuildList;
  };
  const newestFirst = (rows: typeof made) => [...rows].reverse().map((b) => b.id);

  it('lists every build newest first, each with its app, commit, target tuple, state and times, and no job input', async () => {
    const page = await list('?limit=200');
    expect(page.builds.map((b) => b.id)).toEqual(newestFirst(made));
    expect(page.nextCursor).toBeUndefined();
    const first = page.builds.at(-1)!;
    expect(first).toEqual({ id: made[0]!.id, arch: 'x86_64', app: 'hello', tuple: TUPLES[0], version: COMMITS[0], commit: COMMITS[0], mixEnv: 'prod', release: 'hello', state: 'waiting', createdAt: 1_764_900_000_000 });
    expect(JSON.stringify(page)).not.toContain('example.test');
  });

  it('filters by app, by a commit prefix, by target tuple and by state, and by all of them at once', async () => {
    expect((await list('?app=shop')).builds.map((b) => b.id)).toEqual(newestFirst(made.filter((b) => b.app === 'shop')));
    expect((await list(`?commit=${COMMITS[1].slice(0, 7)}`)).builds.map((b) => b.id)).toEqual(newestFirst(made.filter((b) => b.commit === COMMITS[1])));
    expect((await list(`?commit=${COMMITS[0]}`)).builds).toHaveLength(6);
    expect((await list(`?target=${TUPLES[1]}`)).builds.map((b) => b.id)).toEqual(newestFirst(made.filter((b) => b.tuple === TUPLES[1])));
    expect((await list('?state=completed')).builds.map((b) => b.id)).toEqual(newestFirst(made.filter((b) => b.state === 'completed')));
    const all = await list(`?app=blog&commit=9876&target=${TUPLES[0]}&state=waiting`);
    expect(all.builds.map((b) => b.id)).toEqual(newestFirst(made.filter((b) => b.app === 'blog' && b.commit === COMMITS[1] && b.tuple === TUPLES[0] && b.state === 'waiting')));
    expect(all.builds).toHaveLength(1);
    expect((await list('?commit=ffff')).builds).toEqual([]);
  });

  it('pages through the matching builds with limit and nextCursor: each exactly once, in order, and the last page has no cursor', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await list(`?limit=5&state=waiting${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.builds.length).toBeLessThanOrEqual(5);
      seen.push(...page.builds.map((b) => b.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    const waiting = newestFirst(made.filter((b) => b.state === 'waiting'));
    expect(waiting.length).toBeGreaterThan(5);
    expect(seen).toEqual(waiting);
    expect(pages).toBe(Math.ceil(waiting.length / 5));
  });

  it('refuses a bad commit, target, state, limit or cursor with a 400 naming the field', async () => {
    for (const [query, field] of [
      ['?commit=XYZ', 'commit'],
      ['?commit=abc', 'commit'],
      ['?target=linux-x86_64', 'target'],
      ['?state=sleeping', 'state'],
      ['?limit=0', 'limit'],
      ['?limit=201', 'limit'],
      ['?cursor=yesterday', 'cursor'],
      ['?colour=red', 'colour'],
    ] as const) {
      const res = await app.inject({ url: `/v1/builds${query}`, headers: auth(READ) });
      expect(res.statusCode, query).toBe(400);
      expect((res.json() as { message: string }).message, query).toContain(field);
    }
  });

  it('needs a token with the read scope: none is 401, a build-only token 403, a read token 200', async () => {
    expect((await app.inject({ url: '/v1/builds' })).statusCode).toBe(401);
    expect((await app.inject({ url: `/v1/builds/${made[0]!.id}/logs?follow=1` })).statusCode).toBe(401);
    expect((await app.inject({ url: '/v1/builds', headers: auth(BUILD_ONLY) })).statusCode).toBe(403);
    expect((await app.inject({ url: '/v1/builds', headers: auth(READ) })).statusCode).toBe(200);
    expect((await app.inject({ url: '/v1/builds', headers: auth(ADMIN) })).statusCode).toBe(200);
  });

  it('GET /v1/builds/:id names what the build is of: app, commit, target tuple, MIX_ENV and release', async () => {
    const b = made[7]!;
    const res = await app.inject({ url: `/v1/builds/${b.id}`, headers: auth(READ) });
    expect(res.json()).toMatchObject({ id: b.id, app: b.app, commit: b.commit, version: b.commit, tuple: b.tuple, mixEnv: 'prod', release: b.app, state: b.state });
    expect(res.json()).not.toHaveProperty('data');
  });

  it('the farm client sends the filters and the cursor, and `xamal build list`\'s query (app, state, limit) still works', async () => {
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const client = farmClient(url, READ);
    expect((await client.list({ app: 'hello', state: 'waiting', limit: 2 })).builds.map((b) => b.id)).toEqual(newestFirst(made.filter((b) => b.app === 'hello' && b.state === 'waiting')).slice(0, 2));
    const first = await client.list({ commit: COMMITS[0].slice(0, 8), target: TUPLES[0], limit: 2 });
    expect(first.nextCursor).toBeDefined();
    const second = await client.list({ commit: COMMITS[0].slice(0, 8), target: TUPLES[0], limit: 2, cursor: first.nextCursor! });
    expect([...first.builds, ...second.builds].map((b) => b.id)).toEqual(newestFirst(made.filter((b) => b.commit === COMMITS[0] && b.tuple === TUPLES[0])));
    expect(second.nextCursor).toBeUndefined();
  });
});
