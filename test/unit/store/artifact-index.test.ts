import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { artifactIndex, storedArtifact, type IndexFreshness } from '../../../store/artifact-index.ts';
import { BuildJobSchema } from '../../../core/contracts/build-job.ts';
import type { Manifest } from '../../../core/contracts/manifest.ts';
import { localStore } from '../../../store/local.ts';
import { artifactManifestKey, parseTargetOrThrow } from '../../../core/index.ts';
import type { ObjectStore } from '../../../store/store.ts';

const T12 = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
const T13 = 'linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3';
const C1 = `abc1234${'0'.repeat(33)}`;

/** A real disk store that counts the calls that reach it. */
function counted(store: ObjectStore) {
  const calls = { list: 0, get: 0 };
  const wrapped: ObjectStore = {
    ...store,
    list: (p) => (calls.list++, store.list(p)),
    get: (k) => (calls.get++, store.get(k)),
  };
  return { store: wrapped, calls };
}

const manifestKey = (version: string, tuple: string) => `artifacts/demo/${version}/${tuple}/manifest.json`;
async function put(store: ObjectStore, version: string, tuple: string, variant: { mixEnv?: string; release?: string } = {}): Promise<void> {
  const mixEnv = variant.mixEnv ?? 'prod';
  const release = variant.release ?? 'demo';
  const key = artifactManifestKey({ app: 'demo', version, target: parseTargetOrThrow(tuple), mixEnv, release });
  const m: Manifest = {
    schema: 1, app: 'demo', release, releaseVersion: '1.0.0', version, commit: version, tuple, mixEnv,
    tarball: { key: `artifacts/demo/${version}/${tuple}/demo.tar.gz`, sha256: 'a'.repeat(64), size: 1 },
    image: { ref: 'r:t', digest: `sha256:${'b'.repeat(64)}` }, cacheKeys: { deps: 'd', build: 'b' }, sonames: [], timings: {},
    logKey: 'logs/x', builtAt: '2026-01-01T00:00:00.000Z', jobId: 'b',
  };
  await store.put(key, JSON.stringify(m));
}

describe('artifact index', () => {
  let dir: string;
  let disk: ObjectStore;
  let generation: string | undefined;
  const freshness: IndexFreshness = { generation: async () => generation };
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-index-'));
    disk = localStore(dir);
    generation = '1';
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('answers repeated lookups from kept listings and manifests while the generation stands still', async () => {
    await put(disk, C1, T12);
    const { store, calls } = counted(disk);
    const index = artifactIndex(store, { freshness });
    for (let i = 0; i < 5; i++) {
      expect((await index.find('demo', 'abc1234')).map((a) => a.manifest.tuple)).toEqual([T12]);
      expect((await index.manifest('demo', C1, manifestKey(C1, T12)))?.tuple).toBe(T12);
    }
    expect(calls).toEqual({ list: 2, get: 1 });
  });

  it('lists again once the generation moves, and sees the artifact stored meanwhile', async () => {
    await put(disk, C1, T12);
    const index = artifactIndex(disk, { freshness });
    expect((await index.find('demo', C1)).map((a) => a.manifest.tuple)).toEqual([T12]);
    await put(disk, C1, T13);
    generation = '2';
    expect((await index.find('demo', C1)).map((a) => a.manifest.tuple).sort()).toEqual([T12, T13]);
  });

  it('finds an artifact stored without a generation move: a miss reads the store before answering none', async () => {
    const index = artifactIndex(disk, { freshness });
    expect(await index.find('demo', C1)).toEqual([]);
    expect(await index.manifest('demo', C1, manifestKey(C1, T13))).toBeUndefined();
    await put(disk, C1, T13);
    expect((await index.find('demo', C1)).map((a) => a.manifest.tuple)).toEqual([T13]);
    expect((await index.manifest('demo', C1, manifestKey(C1, T13)))?.tuple).toBe(T13);
  });

  it('re-reads a listing older than maxAgeMs, so an artifact removed by hand disappears', async () => {
    await put(disk, C1, T12);
    await put(disk, C1, T13);
    let clock = 0;
    const index = artifactIndex(disk, { freshness, maxAgeMs: 1_000, now: () => clock });
    expect(await index.find('demo', C1)).toHaveLength(2);
    await disk.delete(manifestKey(C1, T13));
    clock = 500;
    expect(await index.find('demo', C1)).toHaveLength(2);
    clock = 1_500;
    expect((await index.find('demo', C1)).map((a) => a.manifest.tuple)).toEqual([T12]);
  });

  it('reads the store on every lookup when the generation is unknown (Redis away)', async () => {
    await put(disk, C1, T12);
    generation = undefined;
    const { store, calls } = counted(disk);
    const index = artifactIndex(store, { freshness });
    for (let i = 0; i < 3; i++) expect(await index.find('demo', C1)).toHaveLength(1);
    for (let i = 0; i < 3; i++) expect(await index.manifest('demo', C1, manifestKey(C1, T12))).toBeDefined();
    expect(calls.list).toBe(3);
    // find parses a listed manifest once (it never changes under its key); a manifest lookup reads the store each time.
    expect(calls.get).toBe(1 + 3);
  });

  it('a stored artifact answers the identical job; another MIX_ENV or release of the same commit and tuple is another artifact, stored beside it', async () => {
    await put(disk, C1, T12);
    const job = (over: Record<string, string>) => BuildJobSchema.parse({ app: 'demo', source: { kind: 'git', url: 'file:///x', commit: C1 }, target: T12, ...over });
    expect((await storedArtifact(disk, job({})))?.manifest.tuple).toBe(T12);
    expect(await storedArtifact(disk, job({ mixEnv: 'staging' }))).toBeUndefined();
    expect(await storedArtifact(disk, job({ release: 'admin' }))).toBeUndefined();
    expect(await storedArtifact(disk, job({ target: T13 }))).toBeUndefined();
    await put(disk, C1, T12, { mixEnv: 'staging' });
    await put(disk, C1, T12, { release: 'admin' });
    expect((await storedArtifact(disk, job({ mixEnv: 'staging' })))?.key).toBe(`artifacts/demo/${C1}/${T12}/staging/demo/manifest.json`);
    expect((await storedArtifact(disk, job({ release: 'admin' })))?.manifest.release).toBe('admin');
    // Lookups answer one MIX_ENV and release: prod and the app's name unless asked.
    const index = artifactIndex(disk);
    expect((await index.find('demo', C1)).map((a) => a.key)).toEqual([manifestKey(C1, T12)]);
    expect((await index.find('demo', C1, { mixEnv: 'staging' })).map((a) => a.manifest.mixEnv)).toEqual(['staging']);
    expect((await index.find('demo', 'latest', { release: 'admin' })).map((a) => a.manifest.release)).toEqual(['admin']);
    expect(await index.find('demo', C1, { mixEnv: 'dev' })).toEqual([]);
  });

  it('refuses to take a manifest whose MIX_ENV or release is not what its key says', async () => {
    const job = BuildJobSchema.parse({ app: 'demo', source: { kind: 'git', url: 'file:///x', commit: C1 }, target: T12, mixEnv: 'staging' });
    await put(disk, C1, T12, { mixEnv: 'staging' });
    const key = `artifacts/demo/${C1}/${T12}/staging/demo/manifest.json`;
    await disk.put(key, (await disk.get(key))!.toString('utf8').replace('"mixEnv":"staging"', '"mixEnv":"prod"'));
    await expect(storedArtifact(disk, job)).rejects.toMatchObject({ code: 'conflict', message: `${key} holds a build with MIX_ENV=prod and release demo, not MIX_ENV=staging and release demo as its key says: refusing to replace it` });
  });

  it('trusts no kept listing after the generation was unknown (an artifact stored while Redis was away is seen)', async () => {
    await put(disk, C1, T12);
    const index = artifactIndex(disk, { freshness });
    expect(await index.find('demo', C1)).toHaveLength(1);
    generation = undefined;
    await put(disk, C1, T13);
    // A lookup of something else sees Redis away.
    expect(await index.find('demo', `fff9999${'0'.repeat(33)}`)).toEqual([]);
    // Back with the same value (the writer could not move it): the listing kept before is gone.
    generation = '1';
    expect(await index.find('demo', C1)).toHaveLength(2);
  });

  it('lists only the keys of the queried commit prefix, not every build of the app', async () => {
    await put(disk, C1, T12);
    await put(disk, `fff9999${'0'.repeat(33)}`, T12);
    const seen: string[] = [];
    const index = artifactIndex({ ...disk, list: (p) => (seen.push(p), disk.list(p)) });
    expect(await index.find('demo', 'abc1234')).toHaveLength(1);
    expect(seen).toEqual(['artifacts/demo/abc1234']);
  });
});
