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

const OLD = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
const NEW = 'linux-x86_64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3';
const TOKEN = 'admin-token-0123456789abcdefghij';
const image = (tuple: string, n: number) => ({ ref: `xamal/builder:t${n}`, digest: FAKE_DIGEST, platforms: [{ arch: 'x86_64' as const, digest: FAKE_DIGEST }], resolvedAt: '2025-01-01T00:00:00.000Z', source: 'registry' as const, flavour: 'builder' as const, tuple });
const LOCK: LockFile = { version: 1, images: [image(OLD, 1), image(NEW, 2)] };

describe("POST /v1/builds with the project's elixir: requirement", () => {
  let app: FastifyInstance;
  let dir: string;
  const q = memoryQueues();
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-elixir-req-'));
    const store = localStore(join(dir, 'store'));
    const builds = buildService({ queues: q.queues, store, locks: async () => [LOCK], exec: new RecordingExecutor(), gitUrls: REMOTE_GIT_ONLY });
    app = await buildApp({ token: TOKEN, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(store), builds } });
  });
  afterAll(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });
  const submit = (body: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: '/v1/builds', headers: { authorization: `Bearer ${TOKEN}` }, payload: { app: 'hello', source: { git: 'https://github.com/acme/hello.git', commit: 'c'.repeat(40) }, ...body } });

  it('refuses a tuple whose Elixir does not satisfy it before anything is enqueued, naming both versions', async () => {
    const res = await submit({ targets: [OLD, NEW], elixirRequirement: '~> 1.15' });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body.builds.map((b: { tuple: string }) => b.tuple)).toEqual([NEW]);
    expect(body.unresolved).toEqual([{ target: OLD, reasons: [`${OLD}: Elixir 1.14.0 does not satisfy the project's requirement "~> 1.15" (mix.exs)`] }]);
  });

  it('lets a selector pick the newest image that satisfies it, and refuses a selector none satisfies with each image named', async () => {
    const picked = (await submit({ targets: [{ distro: 'debian12' }], elixirRequirement: '~> 1.14.0' })).json();
    expect(picked.builds.map((b: { tuple: string }) => b.tuple)).toEqual([OLD]);
    const none = await submit({ targets: [{ distro: 'debian12' }], elixirRequirement: '~> 1.19' });
    expect(none.statusCode).toBe(422);
    expect(none.json().message).toBe(
      `no target can be built:\n{"distro":"debian12"}: ${NEW}: Elixir 1.18.3 does not satisfy the project's requirement "~> 1.19" (mix.exs); ` +
        `${OLD}: Elixir 1.14.0 does not satisfy the project's requirement "~> 1.19" (mix.exs)`,
    );
  });

  it('answers 400 naming elixirRequirement for a requirement Elixir would not parse', async () => {
    const res = await submit({ targets: [NEW], elixirRequirement: '>= 1.14' });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/elixirRequirement/);
  });
});
