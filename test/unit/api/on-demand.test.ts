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
import type { Catalog } from '../../../images/catalog.ts';
import { emptyLock } from '../../../images/lock.ts';
import { preparableOn } from '../../../images/preparable.ts';
import { readToolchainCatalog } from '../../../images/toolchains.ts';
import { localStore } from '../../../store/local.ts';
import { memoryQueues } from '../../../testkit/api/memory-queues.ts';

const TOKEN = 'admin-token-0123456789abcdefghij';
const FROM_SOURCE = 'linux-x86_64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3';
const PACKAGED = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
const EMULATED = 'linux-aarch64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3';
const catalog: Catalog = {
  images: [
    { source: 'recipe', suite: 'bookworm', arches: ['x86_64'], flavours: ['builder', 'runtime'] },
    { source: 'toolchain', suite: 'bookworm', otp: '27.3.4.1', elixir: '1.18.3', arches: ['x86_64', 'aarch64'] },
  ],
};

describe('POST /v1/builds for builders the catalog names but no lock holds yet', () => {
  let app: FastifyInstance;
  let dir: string;
  const q = memoryQueues();
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-on-demand-'));
    const store = localStore(join(dir, 'store'));
    const preparable = preparableOn(catalog, readToolchainCatalog(), 'x86_64');
    const builds = buildService({ queues: q.queues, store, locks: async () => [emptyLock()], exec: new RecordingExecutor(), gitUrls: REMOTE_GIT_ONLY, preparable });
    app = await buildApp({ token: TOKEN, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(store), builds } });
  });
  afterAll(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });
  const submit = (targets: unknown[]) =>
    app.inject({ method: 'POST', url: '/v1/builds', headers: { authorization: `Bearer ${TOKEN}` }, payload: { app: 'hello', source: { git: 'https://github.com/acme/hello.git', commit: 'c'.repeat(40) }, targets } });

  it('accepts and queues the suite\'s builder and a from-source one while neither is prepared (no 422 for a target the farm can build)', async () => {
    const res = await submit([PACKAGED, FROM_SOURCE]);
    expect(res.statusCode).toBe(202);
    expect(res.json().builds.map((b: { tuple: string; status: string }) => [b.tuple, b.status])).toEqual([[PACKAGED, 'waiting'], [FROM_SOURCE, 'waiting']]);
    expect((await submit([{ otp: '27', distro: 'debian12', arch: 'x86_64' }])).json().builds[0].tuple).toBe(FROM_SOURCE);
  });

  it('refuses OTP from source under emulation in the answer, by tuple and by selector, saying it needs a native worker', async () => {
    const byTuple = await submit([EMULATED]);
    expect(byTuple.statusCode).toBe(422);
    expect(byTuple.json().message).toMatch(new RegExp(`${EMULATED}.*cannot prepare it: compiling OTP for aarch64 under emulation .* needs a native aarch64 worker`));
    const bySelector = await submit([{ otp: '27', arch: 'aarch64' }]);
    expect(bySelector.json().message).toMatch(new RegExp(`${EMULATED}: cannot be prepared here: .*needs a native aarch64 worker`));
  });

  it('still refuses a tuple the catalog does not name, saying so', async () => {
    const res = await submit(['linux-x86_64-gnu2.36-debian12-otp26.2.5-elixir1.16.3']);
    expect(res.statusCode).toBe(422);
    expect(res.json().message).toMatch(/no pinned builder image has this tuple, and the catalog names none to prepare/);
  });
});
