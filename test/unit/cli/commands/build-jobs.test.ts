import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../../../api/app.ts';
import type { BuildStatus } from '../../../../api/schemas/builds.ts';
import type { BuildService } from '../../../../api/services/builds.ts';
import { healthService } from '../../../../api/services/health.ts';
import { storeBackedServices } from '../../../../api/services/store-backed.ts';
import build from '../../../../cli/commands/build.ts';
import type { Io } from '../../../../cli/io.ts';
import { localStore } from '../../../../store/local.ts';

const TOKEN = 'admin-token-0123456789abcdefghij';
const OK = `b${'1'.repeat(32)}`;
const BAD = `b${'2'.repeat(32)}`;
const T = 'linux-x86_64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3';

describe('xamal build show|logs [-f]|cancel: one build through the API\'s routes', () => {
  let app: FastifyInstance;
  let dir: string;
  let farm = '';
  // A build that logs two lines, then two more, then completes; another that fails.
  let polls = 0;
  const lines = ['==> deps: mix deps.get', '==> compile: mix release', 'Release created', '==> upload'];
  const status = (id: string): BuildStatus => {
    if (id === BAD) return { id, arch: 'x86_64', state: 'failed', attemptsMade: 1, createdAt: 1, failedReason: 'compile failed with exit code 1' };
    const done = polls >= 3;
    return { id, arch: 'x86_64', state: done ? 'completed' : 'active', phase: done ? 'done' : 'compile', attemptsMade: done ? 1 : 0, createdAt: 1, ...(done ? { result: { manifestKey: `artifacts/shop/${'c'.repeat(40)}/${T}/manifest.json`, tuple: T, sha256: 'a'.repeat(64), cached: false } } : {}) };
  };
  const cancelled: string[] = [];
  const listed: unknown[] = [];
  const builds: BuildService = {
    submit: async () => { throw new Error('not here'); },
    status: async (id) => (id === OK || id === BAD ? (polls++, status(id)) : undefined),
    logs: async (id, start = 0) => (id === OK ? { lines: lines.slice(start, polls >= 2 ? 4 : 2), count: polls >= 2 ? 4 : 2 } : id === BAD ? { lines: ['** (CompileError) lib/shop.ex:1'].slice(start), count: 1 } : undefined),
    cancel: async (id) => (cancelled.push(id), id === OK ? 'signalled' : 'unknown'),
    buildSet: async () => undefined,
    list: async (q) => (listed.push(q), { builds: [{ id: OK, arch: 'x86_64', app: 'shop', tuple: T, state: 'active', phase: 'compile', createdAt: Date.UTC(2026, 11, 4) }], ...(q.state ? {} : { nextCursor: `1764800000000-${OK}` }) }),
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-build-jobs-'));
    app = await buildApp({ token: TOKEN, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(localStore(join(dir, 'store'))), builds } });
    farm = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  beforeEach(() => {
    vi.stubEnv('XAMAL_FARM_TOKEN', TOKEN);
    polls = 0;
  });
  afterAll(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });
  const run = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { out: (t) => void out.push(t), err: (t) => void err.push(t), interrupted: () => new Promise(() => {}) };
    const code = await build.run([...args, '--farm', farm], io);
    return { code, out, err };
  };

  it('logs -f prints the log as it grows and exits 0 once the build completed; show names the artifact', async () => {
    const followed = await run('logs', OK, '-f');
    expect(followed.out).toEqual(lines);
    expect(followed.code).toBe(0);
    const shown = await run('show', OK);
    expect(shown.out).toEqual([`${OK}: completed, 1 attempt`, `artifact: ${T} artifacts/shop/${'c'.repeat(40)}/${T}/manifest.json sha256:${'a'.repeat(64)}`]);
  });

  it('show counts the attempt that is running (BullMQ counts an attempt only when it ends)', async () => {
    expect((await run('show', OK)).out).toEqual([`${OK}: active (compile), 1 attempt`]);
  });

  it('a failed build: logs -f exits 9 naming the failure, show says why', async () => {
    const followed = await run('logs', BAD, '--follow');
    expect(followed).toMatchObject({ code: 9, out: ['** (CompileError) lib/shop.ex:1'], err: [`${BAD} failed: compile failed with exit code 1`] });
    expect((await run('show', BAD)).out).toContain('failed: compile failed with exit code 1');
  });

  it('list asks for the newest builds of an app in a state and prints one line each', async () => {
    const r = await run('list', '--app', 'shop', '--state', 'active', '--limit', '5');
    expect(listed.at(-1)).toEqual({ app: 'shop', state: 'active', limit: 5 });
    expect(r.out).toEqual([`${OK}  active (compile)  shop  ${T}  2026-12-04T00:00:00.000Z`]);
    await expect(run('list', '--state', 'sleeping')).rejects.toThrow(/state.*expected waiting, active, completed, failed, delayed or prioritized/);
    await expect(run('show', OK, '--app', 'shop')).rejects.toThrow(/--app, --commit, --target, --state, --limit, --cursor: only with list/);
    await expect(run('list', '--commit', 'xyz')).rejects.toThrow(/commit.*expected a commit or a prefix of one/);
  });

  it('list passes a commit prefix, a target tuple and a cursor, and says how to ask for the next page', async () => {
    const cursor = `1764800000000-${OK}`;
    const r = await run('list', '--commit', 'c0ffee', '--target', T, '--cursor', cursor);
    expect(listed.at(-1)).toEqual({ commit: 'c0ffee', target: expect.objectContaining({ arch: 'x86_64' }), cursor: { createdAt: 1764800000000, id: OK }, limit: 50 });
    expect(r.err).toEqual([`more: the same with --cursor 1764800000000-${OK}`]);
    const json = JSON.parse((await run('list', '--json')).out.join('')) as { nextCursor?: string };
    expect(json.nextCursor).toBe(`1764800000000-${OK}`);
  });

  it('cancel says what happened; an unknown build, a malformed ID or -f elsewhere are errors naming them', async () => {
    expect((await run('cancel', OK)).out).toEqual([`${OK}: signalled`]);
    await expect(run('cancel', `b${'3'.repeat(32)}`)).rejects.toMatchObject({ code: 'not_found' });
    await expect(run('show', 'nope')).rejects.toThrow(/BUILD_ID: expected an id like b0123… \(b and 32 hex characters\), got "nope"/);
    await expect(run('show', OK, '-f')).rejects.toThrow(/-f\/--follow: only with logs/);
    await expect(run('logs')).rejects.toThrow(/missing BUILD_ID/);
  });
});
