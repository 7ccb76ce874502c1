import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashFiles, readCacheFacts, readDepsMarker, restoreCache, restoreOutput, saveCache, sourceHashes, writeDepsMarker } from '../../../builder/cache.ts';
import { LocalExecutor, RecordingExecutor } from '../../../core/index.ts';
import { withFileLock } from '../../../localservices/fs-lock.ts';

describe('the build cache', () => {
  let dir: string;
  const exec = new LocalExecutor();
  const put = async (path: string, text: string) => {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, text);
  };
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-cache-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('saves a directory under a new key and restores it into another source tree', async () => {
    await put(join(dir, 'src', 'deps', 'jason', 'mix.exs'), 'jason');
    const to = join(dir, 'cache', 'mix', 'deps-1');
    await saveCache(exec, join(dir, 'src', 'deps'), to, false);
    expect(await readFile(join(to, 'jason', 'mix.exs'), 'utf8')).toBe('jason');
    // No temporary copies are left beside it.
    expect(await readdir(join(dir, 'cache', 'mix'))).toEqual(['deps-1']);
    await mkdir(join(dir, 'src2'));
    await restoreCache(exec, to, join(dir, 'src2', 'deps'), 'restore deps');
    expect(await readFile(join(dir, 'src2', 'deps', 'jason', 'mix.exs'), 'utf8')).toBe('jason');
  });

  it('first writer wins without replace; with replace the new copy takes the old one\'s place', async () => {
    const to = join(dir, 'cache', 'c');
    await put(join(dir, 'a', 'f'), 'first');
    await put(join(dir, 'b', 'f'), 'second');
    await saveCache(exec, join(dir, 'a'), to, false);
    await saveCache(exec, join(dir, 'b'), to, false);
    expect(await readFile(join(to, 'f'), 'utf8')).toBe('first');
    await saveCache(exec, join(dir, 'b'), to, true);
    expect(await readFile(join(to, 'f'), 'utf8')).toBe('second');
    expect(await readdir(join(dir, 'cache'))).toEqual(['c']);
  });

  it('a _build save waits for a restore of the same entry in progress, so the restore copies one whole version', async () => {
    const to = join(dir, 'cache', 'c');
    await put(join(dir, 'a', 'f'), 'first');
    await put(join(dir, 'b', 'f'), 'second');
    await saveCache(exec, join(dir, 'a'), to, false);
    let saved = false;
    let seenDuringRestore = '';
    let save: Promise<unknown> = Promise.resolve();
    // A restore in progress holds the entry's lock (here: held by hand while the save starts).
    await withFileLock(`${to}.lock`, 'test restore', async () => {
      save = saveCache(exec, join(dir, 'b'), to, true).then(() => (saved = true));
      await new Promise((r) => setTimeout(r, 400));
      seenDuringRestore = await readFile(join(to, 'f'), 'utf8');
      expect(saved).toBe(false);
    });
    await save;
    expect(seenDuringRestore).toBe('first');
    expect(saved).toBe(true);
    expect(await readFile(join(to, 'f'), 'utf8')).toBe('second');
    expect(await readdir(join(dir, 'cache'))).toEqual(['c']);
  });

  it('saving a directory that does not exist does nothing', async () => {
    const rec = new RecordingExecutor();
    await saveCache(rec, join(dir, 'missing'), join(dir, 'cache', 'x'), true);
    expect(rec.commands).toEqual([]);
    expect(existsSync(join(dir, 'cache'))).toBe(false);
  });

  it('a failed copy throws with its label and output', async () => {
    const failing = new RecordingExecutor(() => ({ code: 1, stderr: 'cp: no space left on device' }));
    await put(join(dir, 'a', 'f'), 'x');
    await expect(saveCache(failing, join(dir, 'a'), join(dir, 'cache', 'c'), false)).rejects.toThrow(/save cache failed \(exit 1\):\ncp: no space left on device/);
    await expect(restoreCache(failing, join(dir, 'a'), join(dir, 'b'), 'restore _build')).rejects.toThrow(/^restore _build failed \(exit 1\)/);
  });

  it('never copies through a link: a link as the restore destination or its parent, a cache entry that is a link, a deps/_build that became one', async () => {
    const rec = new RecordingExecutor();
    await put(join(dir, 'cache', 'deps-1', 'jason', 'mix.exs'), 'jason');
    await mkdir(join(dir, 'elsewhere'));
    await mkdir(join(dir, 'src'));
    await symlink(join(dir, 'elsewhere'), join(dir, 'src', 'deps'));
    await symlink(join(dir, 'elsewhere'), join(dir, 'linked-src'));
    await expect(restoreCache(rec, join(dir, 'cache', 'deps-1'), join(dir, 'src', 'deps'), 'restore deps')).rejects.toThrow(`restore deps: ${join(dir, 'src', 'deps')} is a link (-> ${join(dir, 'elsewhere')}); the cache is never restored through one`);
    await expect(restoreCache(rec, join(dir, 'cache', 'deps-1'), join(dir, 'linked-src', 'deps'), 'restore deps')).rejects.toThrow(`restore deps: ${join(dir, 'linked-src')} is a link`);
    await symlink(join(dir, 'elsewhere'), join(dir, 'cache', 'deps-2'));
    await expect(restoreCache(rec, join(dir, 'cache', 'deps-2'), join(dir, 'src2', 'deps'), 'restore deps')).rejects.toThrow(`restore deps: the cache entry ${join(dir, 'cache', 'deps-2')} is not a directory; it is not restored`);
    await expect(saveCache(rec, join(dir, 'src', 'deps'), join(dir, 'cache', 'deps-3'), false)).rejects.toThrow(`save cache: ${join(dir, 'src', 'deps')} is a link (-> ${join(dir, 'elsewhere')}); it is not cached`);
    expect(rec.commands).toEqual([]);
    expect(await readdir(join(dir, 'elsewhere'))).toEqual([]);
  });

  it('an output restored replaces the source\'s directory with the entry\'s copy (files it lacks go), never through a link on the way', async () => {
    const entry = join(dir, 'cache', 'assets-1');
    await put(join(entry, 'assets', 'app-1.js'), 'bundle');
    await put(join(entry, 'robots.txt'), 'User-agent: *');
    const src = join(dir, 'src');
    await put(join(src, 'priv', 'static', 'robots.txt'), 'User-agent: *');
    await put(join(src, 'priv', 'static', 'stale.js'), 'old');
    await restoreOutput(exec, entry, join(src, 'priv', 'static'), src, 'restore assets');
    expect((await readdir(join(src, 'priv', 'static'))).sort()).toEqual(['assets', 'robots.txt']);
    expect(await readFile(join(src, 'priv', 'static', 'assets', 'app-1.js'), 'utf8')).toBe('bundle');
    // A source without priv/ gets it.
    await mkdir(join(dir, 'bare'));
    await restoreOutput(exec, entry, join(dir, 'bare', 'priv', 'static'), join(dir, 'bare'), 'restore assets');
    expect(existsSync(join(dir, 'bare', 'priv', 'static', 'assets', 'app-1.js'))).toBe(true);
    const rec = new RecordingExecutor();
    await mkdir(join(dir, 'elsewhere'));
    for (const [name, link] of [['a', 'priv'], ['b', 'priv/static']] as const) {
      const root = join(dir, `linked-${name}`);
      await mkdir(join(root, 'priv'), { recursive: true });
      if (link === 'priv') await rm(join(root, 'priv'), { recursive: true });
      await symlink(join(dir, 'elsewhere'), join(root, link));
      await expect(restoreOutput(rec, entry, join(root, 'priv', 'static'), root, 'restore assets')).rejects.toThrow(`restore assets: ${link} is a link (-> ${join(dir, 'elsewhere')}); the cache is never restored through one`);
    }
    expect(rec.commands).toEqual([]);
    expect(await readdir(join(dir, 'elsewhere'))).toEqual([]);
  });

  it('the deps marker round-trips; a missing, corrupt or incomplete one reads as none', async () => {
    const path = join(dir, 'cache', 'mix', 'deps-1.fetched.json');
    expect(await readDepsMarker(path)).toBeUndefined();
    await writeDepsMarker(path, { mixExs: 'abc', depsDir: true });
    expect(await readDepsMarker(path)).toEqual({ mixExs: 'abc', depsDir: true });
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ mixExs: 'abc', depsDir: true });
    expect(await readdir(join(dir, 'cache', 'mix'))).toEqual(['deps-1.fetched.json']);
    for (const text of ['{not json', 'null', '{"mixExs":"abc"}', '{"mixExs":1,"depsDir":true}']) {
      await writeFile(path, text);
      expect(await readDepsMarker(path), text).toBeUndefined();
    }
  });

  it('cache facts say which directories exist and carry the marker', async () => {
    const paths = { deps: join(dir, 'deps-1'), build: join(dir, 'build-1'), depsFetched: join(dir, 'deps-1.fetched.json') };
    expect(await readCacheFacts(paths)).toEqual({ deps: false, build: false });
    await mkdir(paths.build);
    await writeDepsMarker(paths.depsFetched, { mixExs: 'm', depsDir: false });
    expect(await readCacheFacts(paths)).toEqual({ deps: false, build: true, depsMarker: { mixExs: 'm', depsDir: false } });
    // An assets output entry is looked up only when the job has an assets key.
    expect(await readCacheFacts({ ...paths, assets: join(dir, 'assets-1') })).toMatchObject({ assets: false });
    await mkdir(join(dir, 'assets-1'));
    expect(await readCacheFacts({ ...paths, assets: join(dir, 'assets-1') })).toMatchObject({ assets: true });
  });

  it('source hashes follow file contents and relative paths, not where the work directory is', async () => {
    const a = join(dir, 'job-a');
    const b = join(dir, 'job-b');
    for (const src of [a, b]) {
      await put(join(src, 'mix.exs'), 'defmodule Hello.MixProject');
      await put(join(src, 'mix.lock'), '%{}');
      await put(join(src, 'config', 'config.exs'), 'import Config');
      await put(join(src, 'config', 'runtime.exs'), 'runtime');
    }
    const ha = await sourceHashes(a);
    expect(await sourceHashes(b)).toEqual(ha);
    // runtime.exs is read at boot, not compile time: it changes no key.
    await writeFile(join(b, 'config', 'runtime.exs'), 'changed');
    expect(await sourceHashes(b)).toEqual(ha);
    await writeFile(join(b, 'config', 'config.exs'), 'changed');
    const hb = await sourceHashes(b);
    expect(hb.configHash).not.toBe(ha.configHash);
    expect([hb.lockHash, hb.mixExs]).toEqual([ha.lockHash, ha.mixExs]);
    await writeFile(join(b, 'mix.lock'), '%{jason: 1}');
    expect((await sourceHashes(b)).lockHash).not.toBe(ha.lockHash);
  });

  it('a missing file hashes as an empty one (a source without mix.lock), distinct from no file named', async () => {
    const missing = await hashFiles(dir, [join(dir, 'mix.lock')]);
    expect(missing).not.toBe(await hashFiles(dir, []));
    await writeFile(join(dir, 'mix.lock'), '');
    expect(await hashFiles(dir, [join(dir, 'mix.lock')])).toBe(missing);
  });
});
