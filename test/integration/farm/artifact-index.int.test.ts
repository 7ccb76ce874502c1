import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactIndex } from '../../../store/artifact-index.ts';
import type { Manifest } from '../../../core/contracts/manifest.ts';
import { artifactGeneration } from '../../../queue/index.ts';
import { s3Store } from '../../../store/s3.ts';
import type { ObjectStore } from '../../../store/store.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';

const T12 = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
const T13 = 'linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3';
const COMMIT = `abc1234${'0'.repeat(33)}`;

async function putManifest(store: ObjectStore, tuple: string): Promise<void> {
  const m: Manifest = {
    schema: 1, app: 'demo', release: 'demo', releaseVersion: '1.0.0', version: COMMIT, commit: COMMIT, tuple, mixEnv: 'prod',
    tarball: { key: `artifacts/demo/${COMMIT}/${tuple}/demo.tar.gz`, sha256: 'a'.repeat(64), size: 1 },
    image: { ref: 'r:t', digest: `sha256:${'b'.repeat(64)}` }, cacheKeys: { deps: 'd', build: 'b' }, sonames: [], timings: {},
    logKey: 'logs/x', builtAt: '2026-01-01T00:00:00.000Z', jobId: 'b',
  };
  await store.put(`artifacts/demo/${COMMIT}/${tuple}/manifest.json`, JSON.stringify(m));
}

describe('artifact index over S3 with the Redis artifact generation', () => {
  const settings = { redisUrl: '', prefix: '' };
  let worker: ReturnType<typeof artifactGeneration>;
  let api: ReturnType<typeof artifactGeneration>;
  let store: ObjectStore;
  beforeAll(async () => {
    Object.assign(settings, { redisUrl: services().redisUrl, prefix: testPrefix('gen') });
    worker = artifactGeneration(settings);
    api = artifactGeneration(settings);
    store = s3Store({ ...services().s3, prefix: `${testPrefix('index')}/` });
    // ioredis connects in the background; a generation is known once it is ready.
    for (let i = 0; i < 100 && (await api.generation()) === undefined; i++) await new Promise((r) => setTimeout(r, 20));
  });
  afterAll(async () => {
    await worker?.close();
    await api?.close();
  });

  it('an API process sees an artifact another process stored as soon as the generation moves, and keeps its listing until then', async () => {
    await putManifest(store, T12);
    let lists = 0;
    const index = artifactIndex({ ...store, list: (p) => (lists++, store.list(p)) }, { freshness: api });
    expect((await index.find('demo', 'abc1234')).map((a) => a.manifest.tuple)).toEqual([T12]);
    expect((await index.find('demo', 'abc1234')).map((a) => a.manifest.tuple)).toEqual([T12]);
    expect(lists).toBe(1);

    await putManifest(store, T13);
    await worker.bump();
    expect((await index.find('demo', 'abc1234')).map((a) => a.manifest.tuple).sort()).toEqual([T12, T13]);
    expect(lists).toBe(2);
  });

  it('many lookups at once share generation reads: every one answers, with the value after it arrived', async () => {
    const before = await api.generation();
    await worker.bump();
    const seen = await Promise.all(Array.from({ length: 50 }, () => api.generation()));
    expect(new Set(seen)).toEqual(new Set([String(Number(before) + 1)]));
  });
});
