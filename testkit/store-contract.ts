import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { findArtifacts } from '../store/artifact-index.ts';
import type { Manifest } from '../core/contracts/manifest.ts';
import type { ObjectStore } from '../store/store.ts';

/** The behaviour every ObjectStore must have; run against local disk (unit) and S3 (integration). */
export function storeContract(name: string, make: () => Promise<ObjectStore>): void {
  it(`${name}: stores bytes and files, lists by prefix, deletes, and answers undefined for a missing key`, async () => {
    const store = await make();
    await store.put('a/b/one.txt', 'one');
    await store.put('a/b/two.bin', Buffer.from([0, 1, 2, 255]));
    const dir = await mkdtemp(join(tmpdir(), 'xamal-store-'));
    try {
      const big = Buffer.alloc(9 * 1024 * 1024, 7);
      await writeFile(join(dir, 'big'), big);
      await store.putFile('a/c/big.tar.gz', join(dir, 'big'));
      expect((await store.get('a/c/big.tar.gz'))!.equals(big)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect((await store.get('a/b/one.txt'))!.toString()).toBe('one');
    expect([...(await store.get('a/b/two.bin'))!]).toEqual([0, 1, 2, 255]);
    expect(await store.list('a/b/')).toEqual(['a/b/one.txt', 'a/b/two.bin']);
    // A prefix may end inside a name: only the keys that start with it.
    expect(await store.list('a/b/t')).toEqual(['a/b/two.bin']);
    expect(await store.list('a/')).toEqual(['a/b/one.txt', 'a/b/two.bin', 'a/c/big.tar.gz']);
    expect(await store.exists('a/b/one.txt')).toBe(true);
    await store.delete('a/b/one.txt');
    expect(await store.exists('a/b/one.txt')).toBe(false);
    expect(await store.get('nope/missing')).toBeUndefined();
  });

  it(`${name}: refuses keys with .., absolute paths, empty segments or odd characters before touching anything`, async () => {
    const store = await make();
    for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a//b', 'a/./b', 'a b', 'a\u0000b', '', 'a/$(id)']) {
      await expect(store.put(bad, 'x')).rejects.toThrow(/invalid store key/);
    }
  });

  it(`${name}: finds artifacts by commit prefix, by mix version (newest per tuple) and by selector; an ambiguous prefix is refused`, async () => {
    const store = await make();
    const put = async (version: string, tuple: string, releaseVersion: string, builtAt: string) => {
      const m: Manifest = {
        schema: 1, app: 'demo', release: 'demo', releaseVersion, version, commit: version, tuple, mixEnv: 'prod',
        tarball: { key: `artifacts/demo/${version}/${tuple}/demo.tar.gz`, sha256: 'a'.repeat(64), size: 1 },
        image: { ref: 'r:t', digest: `sha256:${'b'.repeat(64)}` }, cacheKeys: { deps: 'd', build: 'b' }, sonames: [], timings: {},
        logKey: 'logs/x', builtAt, jobId: 'b',
      };
      await store.put(`artifacts/demo/${version}/${tuple}/manifest.json`, JSON.stringify(m));
    };
    const c1 = `abc1234${'0'.repeat(33)}`;
    const c2 = `abc1299${'0'.repeat(33)}`;
    const t12 = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
    const t13 = 'linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3';
    await put(c1, t12, '1.0.0', '2026-01-01T00:00:00.000Z');
    await put(c1, t13, '1.0.0', '2026-01-01T00:00:00.000Z');
    await put(c2, t12, '1.0.0', '2026-02-01T00:00:00.000Z');
    expect((await findArtifacts(store, 'demo', 'abc1234')).map((a) => a.manifest.tuple).sort()).toEqual([t12, t13]);
    expect((await findArtifacts(store, 'demo', c1, { tuple: t13 })).map((a) => a.manifest.tuple)).toEqual([t13]);
    expect((await findArtifacts(store, 'demo', 'abc1234', { selector: { otp: '27' } })).map((a) => a.manifest.tuple)).toEqual([t13]);
    // Fewer than 7 characters is not a commit query.
    await expect(findArtifacts(store, 'demo', 'abc12')).resolves.toEqual([]);
    expect((await findArtifacts(store, 'demo', 'abc1299')).map((a) => a.manifest.version)).toEqual([c2]);
    await put(`abc1200${'0'.repeat(33)}`, t12, '1.0.1', '2026-03-01T00:00:00.000Z');
    await put(`abc1200${'1'.repeat(33)}`, t12, '1.0.1', '2026-03-02T00:00:00.000Z');
    await expect(findArtifacts(store, 'demo', 'abc1200')).rejects.toThrow(/ambiguous/);
    expect((await findArtifacts(store, 'demo', '1.0.1')).map((a) => a.manifest.version)).toEqual([`abc1200${'1'.repeat(33)}`]);
    const byVersion = await findArtifacts(store, 'demo', '1.0.0');
    expect(byVersion.map((a) => [a.manifest.tuple, a.manifest.version]).sort()).toEqual([[t12, c2], [t13, c1]]);
  });

  it(`${name}: streams an object with its size, and a missing one as undefined; a presigned URL (if the store makes them) serves it`, async () => {
    const store = await make();
    const body = Buffer.alloc(3 * 1024 * 1024 + 17, 9);
    await store.put('s/stream.bin', body);
    const got = await store.getStream('s/stream.bin');
    expect(got?.size).toBe(body.length);
    const chunks: Buffer[] = [];
    for await (const c of got!.body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
    expect(await store.getStream('s/missing')).toBeUndefined();
    if (store.presignGet) {
      const url = await store.presignGet('s/stream.bin', 60);
      expect(url).toMatch(/X-Amz-Expires=60/);
      expect(url).toMatch(/X-Amz-Signature=[0-9a-f]{64}/);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
    }
  });
}
