import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { buildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { REMOTE_GIT_ONLY } from '../../../core/contracts/git-url.ts';
import { RecordingExecutor } from '../../../core/index.ts';
import type { LockFile } from '../../../images/lock.ts';
import { localStore } from '../../../store/local.ts';
import { memoryQueues } from '../../../testkit/api/memory-queues.ts';
import { FAKE_DIGEST } from '../../../testkit/builder/fake-docker.ts';

const X86 = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
const ARM = 'linux-aarch64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
const ARM27 = 'linux-aarch64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3';
const TOKEN = 'admin-token-0123456789abcdefghij';
const image = (tuple: string, n: number, arch: 'x86_64' | 'aarch64') => ({ ref: `xamal/builder:t${n}`, digest: FAKE_DIGEST, platforms: [{ arch, digest: FAKE_DIGEST }], resolvedAt: '2025-01-01T00:00:00.000Z', source: 'registry' as const, flavour: 'builder' as const, tuple });

describe('a selector that leaves the arch open', () => {
  let app: FastifyInstance;
  let dir: string;
  let lock: LockFile = { version: 1, images: [image(ARM, 1, 'aarch64'), image(X86, 2, 'x86_64')] };
  let workers: Record<string, number> = { x86_64: 1 };
  const q = memoryQueues();
  q.queues.depth = async () => Object.fromEntries(Object.entries(workers).map(([a, n]) => [a, { waiting: 0, active: 0, workers: n }]));
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-selector-arch-'));
    const store = localStore(join(dir, 'store'));
    const builds = buildService({ queues: q.queues, store, locks: async () => [lock], exec: new RecordingExecutor(), gitUrls: REMOTE_GIT_ONLY });
    app = await buildApp({ token: TOKEN, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(store), builds } });
  });
  afterAll(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });
  const picked = async (commit: string) =>
    (await app.inject({ method: 'POST', url: '/v1/builds', headers: { authorization: `Bearer ${TOKEN}` }, payload: { app: 'hello', source: { git: 'https://github.com/acme/hello.git', commit: commit.repeat(40) }, matrix: { otp: ['25'], distro: ['debian12'] } } })).json().builds.map((b: { tuple: string }) => b.tuple);

  it('takes the builder of an arch a worker serves over an equally new one no worker serves (which would wait forever)', async () => {
    workers = { x86_64: 1, aarch64: 0 };
    expect(await picked('a')).toEqual([X86]);
    workers = { x86_64: 0, aarch64: 2 };
    expect(await picked('b')).toEqual([ARM]);
  });

  it('still ranks by OTP and Elixir first: a newer toolchain on an unserved arch wins over an older one on a served arch', async () => {
    lock = { version: 1, images: [image(ARM27, 3, 'aarch64'), image(X86, 2, 'x86_64')] };
    workers = { x86_64: 1 };
    const builds = (await app.inject({ method: 'POST', url: '/v1/builds', headers: { authorization: `Bearer ${TOKEN}` }, payload: { app: 'hello', source: { git: 'https://github.com/acme/hello.git', commit: 'c'.repeat(40) }, targets: [{ distro: 'debian12' }] } })).json().builds;
    expect(builds.map((b: { tuple: string }) => b.tuple)).toEqual([ARM27]);
  });
});
