import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheKeeper, inUseEntries } from '../../../builder/cache-use.ts';
import { evictCache, listCacheEntries, listLeftovers, planEviction, type CacheEntry, type Leftover } from '../../../builder/eviction.ts';
import { sideName } from '../../../builder/cache.ts';
import { processStartTime } from '../../../localservices/process.ts';
import { builderConfig } from '../../../builder/config.ts';
import { withFileLock } from '../../../localservices/fs-lock.ts';

const DAY = 86_400_000;
const NOW = 1_000 * DAY;
const entry = (path: string, bytes: number, daysAgo: number): CacheEntry => ({ path, bytes, lastUsedMs: NOW - daysAgo * DAY });
const none = new Set<string>();

describe('planEviction: what goes, oldest first', () => {
  const policy = { maxBytes: 100, maxAgeMs: 30 * DAY };

  it('removes nothing from a cache within its size and age', () => {
    expect(planEviction([entry('/a', 40, 1), entry('/b', 60, 29)], policy, NOW, none)).toEqual({ remove: [], keptBytes: 100 });
  });

  it('removes every entry unused for longer than the age limit, however small the cache', () => {
    const plan = planEviction([entry('/new', 10, 1), entry('/old', 1, 31), entry('/older', 1, 400)], policy, NOW, none);
    expect(plan.remove.map((e) => [e.path, e.why])).toEqual([['/older', 'age'], ['/old', 'age']]);
    expect(plan.keptBytes).toBe(10);
  });

  it('removes the least recently used entries until the rest fits in the size limit, and no more', () => {
    const plan = planEviction([entry('/c', 50, 1), entry('/a', 50, 3), entry('/b', 50, 2), entry('/d', 20, 0)], policy, NOW, none);
    expect(plan.remove.map((e) => [e.path, e.why])).toEqual([['/a', 'size'], ['/b', 'size']]);
    expect(plan.keptBytes).toBe(70);
  });

  it('never removes an entry a running build uses, old or large, and takes the next oldest instead', () => {
    const inUse = new Set(['/old-in-use', '/big-in-use']);
    const plan = planEviction([entry('/old-in-use', 10, 90), entry('/big-in-use', 500, 5), entry('/x', 10, 4), entry('/y', 10, 1)], policy, NOW, inUse);
    expect(plan.remove.map((e) => e.path)).toEqual(['/x', '/y']);
    // Over the limit while the build holds its entries: the plan says so instead of touching them.
    expect(plan.keptBytes).toBe(510);
  });

  it('removes every leftover of a save whose writer is gone, however new, and never one a live writer is still filling', () => {
    const left = (path: string, bytes: number, writer: Leftover['writer']): Leftover => ({ ...entry(path, bytes, 0), writer });
    const plan = planEviction([entry('/e', 10, 1)], policy, NOW, none, [left('/e.1-9.5.tmp', 500, 'gone'), left('/e.2-9.5.old', 5, 'gone'), left('/f.3-9.5.tmp', 20, 'alive')]);
    expect(plan.remove.map((e) => [e.path, e.why])).toEqual([['/e.1-9.5.tmp', 'orphan'], ['/e.2-9.5.old', 'orphan']]);
    expect(plan.keptBytes).toBe(30);
  });

  it('counts the copies live writers are filling in the cache size, so older entries make room for them', () => {
    const filling: Leftover = { ...entry('/big.1-9.5.tmp', 95, 0), writer: 'alive' };
    const plan = planEviction([entry('/a', 10, 3), entry('/b', 10, 2)], policy, NOW, none, [filling]);
    expect(plan.remove.map((e) => [e.path, e.why])).toEqual([['/a', 'size'], ['/b', 'size']]);
    expect(plan.keptBytes).toBe(95);
  });

  it('orders entries last used at the same time by path, so the same cache always gives the same plan', () => {
    for (const order of [[entry('/b', 100, 2), entry('/a', 100, 2)], [entry('/a', 100, 2), entry('/b', 100, 2)]]) {
      expect(planEviction(order, policy, NOW, none).remove.map((e) => e.path)).toEqual(['/a']);
    }
  });
});

describe('evicting the build cache on disk', () => {
  let dir: string;
  /** An entry of `bytes` bytes last used `daysAgo` days ago. */
  const make = async (rel: string, bytes: number, daysAgo: number) => {
    const path = join(dir, rel);
    await mkdir(path, { recursive: true });
    await writeFile(join(path, 'f'), Buffer.alloc(bytes));
    const t = new Date(Date.now() - daysAgo * DAY);
    await utimes(path, t, t);
    return path;
  };
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-evict-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('lists deps, _build, assets output and git mirror entries of every app (and those from before per-app caches), never copies in progress', async () => {
    const deps = await make(`mix/hello/deps-${'a'.repeat(32)}`, 10, 1);
    const assets = await make(`mix/hello/assets-${'f'.repeat(32)}`, 60, 1);
    const build = await make(`mix/other/build-${'b'.repeat(32)}`, 20, 2);
    const mirror = await make(`git/hello/${'c'.repeat(32)}.git`, 30, 3);
    const legacy = await make(`mix/deps-${'d'.repeat(32)}`, 40, 4);
    await make(`mix/hello/deps-${'e'.repeat(32)}.123.456.tmp`, 50, 5);
    const listed = await listCacheEntries(dir);
    expect(listed.map((e) => [e.path, e.bytes]).sort()).toEqual([[assets, 60], [build, 20], [deps, 10], [legacy, 40], [mirror, 30]].sort());
  });

  it('removes entries past the age limit and the oldest over the size limit with their deps markers, keeping what builds hold', async () => {
    const old = await make(`mix/hello/deps-${'1'.repeat(32)}`, 10, 40);
    await writeFile(`${old}.fetched.json`, '{}');
    const big = await make(`git/other/${'2'.repeat(32)}.git`, 3000, 5);
    const held = await make(`mix/other/build-${'3'.repeat(32)}`, 3000, 6);
    const fresh = await make(`mix/hello/build-${'4'.repeat(32)}`, 100, 0);
    const report = await evictCache(dir, { maxBytes: 3500, maxAgeMs: 30 * DAY }, async () => new Set([held]));
    expect(report.remove.map((e) => [e.path, e.why])).toEqual([[old, 'age'], [big, 'size']]);
    expect(report.skipped).toEqual([]);
    for (const gone of [old, `${old}.fetched.json`, big]) expect(existsSync(gone)).toBe(false);
    for (const kept of [held, fresh]) expect(existsSync(kept)).toBe(true);
    // Nothing moved aside is left behind.
    expect((await readdir(join(dir, 'git', 'other'))).filter((n) => n.endsWith('.evicted'))).toEqual([]);
  });

  it('leaves an entry whose lock a restore holds, and one a build took between the plan and the removal, for the next sweep', async () => {
    const locked = await make(`mix/hello/deps-${'5'.repeat(32)}`, 10, 40);
    const taken = await make(`mix/hello/build-${'6'.repeat(32)}`, 10, 40);
    let asked = 0;
    const inUse = async () => new Set(asked++ === 0 ? [] : [taken]);
    const report = await withFileLock(`${locked}.lock`, 'test restore', () => evictCache(dir, { maxBytes: 1 << 30, maxAgeMs: 30 * DAY }, inUse));
    expect(report.skipped.sort()).toEqual([locked, taken].sort());
    expect(existsSync(locked) && existsSync(taken)).toBe(true);
  });

  it('removes what saves killed midway left beside their entries (copies and replaced versions) once their writers are gone, never a live writer\'s', async () => {
    const e = `deps-${'9'.repeat(32)}`;
    const entryPath = await make(`mix/hello/${e}`, 10, 1);
    const dead = spawnSync('true').pid!;
    const me = `${process.pid}-${processStartTime(process.pid)}`;
    const gone = [
      await make(`mix/hello/${e}.${dead}-1234.1700000000000.tmp`, 100, 0),
      await make(`mix/hello/${e}.${dead}-1234.1700000000000.old`, 100, 0),
      // The pid runs, but it is another process than the one that wrote (another start time).
      await make(`mix/hello/${e}.${process.pid}-1.1700000000000.tmp`, 100, 0),
      // Named before writers carried their start time.
      await make(`mix/${e}.${dead}.1700000000000.tmp`, 100, 0),
    ];
    const filling = await make(`mix/hello/${e}.${me}.1700000000000.tmp`, 100, 0);
    expect((await listLeftovers(dir)).map((l) => [l.path, l.writer]).sort()).toEqual([...gone.map((p) => [p, 'gone']), [filling, 'alive']].sort());
    const report = await evictCache(dir, { maxBytes: 1 << 30, maxAgeMs: 30 * DAY }, async () => none);
    expect(report.remove.map((r) => [r.path, r.why]).sort()).toEqual(gone.map((p) => [p, 'orphan']).sort());
    for (const p of gone) expect(existsSync(p)).toBe(false);
    expect([existsSync(entryPath), existsSync(filling)]).toEqual([true, true]);
    expect(report.keptBytes).toBe(110);
  });

  it('keeps the copy of a save whose worker is alive, and removes it at the next sweep once that worker was killed (SIGKILL) midway', async () => {
    const from = await make('src/deps', 50, 0);
    const to = join(dir, 'mix', 'hello', `deps-${'a'.repeat(32)}`);
    // A worker process stopped inside its save, after the copy and before the swap.
    const script = join(dir, 'worker.mts');
    await writeFile(script, `
      import { saveCache } from ${JSON.stringify(join(process.cwd(), 'builder/cache.ts'))};
      import { LocalExecutor } from ${JSON.stringify(join(process.cwd(), 'core/index.ts'))};
      const local = new LocalExecutor();
      // After the copy, the save never goes on; the timer keeps the process alive until it is killed.
      const exec = { run: async (cmd) => { const r = await local.run(cmd); setInterval(() => {}, 1000); console.log('copied'); return new Promise(() => r); } };
      await saveCache(exec, ${JSON.stringify(from)}, ${JSON.stringify(to)}, true);
    `);
    // node itself (not the tsx launcher, which would run the script in a child of its own).
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('copied') && resolve()));
    const policy = { maxBytes: 1 << 30, maxAgeMs: 30 * DAY };
    const [copy] = await listLeftovers(dir);
    expect(copy).toMatchObject({ bytes: 50, writer: 'alive' });
    expect((await evictCache(dir, policy, async () => none)).remove).toEqual([]);
    expect(existsSync(copy!.path)).toBe(true);
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect((await evictCache(dir, policy, async () => none)).remove.map((r) => [r.path, r.why])).toEqual([[copy!.path, 'orphan']]);
    expect(await readdir(join(dir, 'mix', 'hello'))).toEqual([]);
  });

  it('names a save\'s copies after the writing process and its start time, so a recycled pid is never taken for it', () => {
    expect(sideName('/c/deps-ab', 'tmp')).toMatch(new RegExp(`^/c/deps-ab\\.${process.pid}-${processStartTime(process.pid)}\\.\\d+\\.tmp$`));
  });

  it('a keeper records what its builds hold until they release it, and its sweeps leave those entries', async () => {
    const keeper = cacheKeeper(dir, { maxBytes: 1, maxAgeMs: 30 * DAY });
    const a = await make(`mix/hello/deps-${'7'.repeat(32)}`, 100, 2);
    const b = await make(`mix/hello/build-${'8'.repeat(32)}`, 100, 1);
    const release = await keeper.hold([a]);
    expect([...(await inUseEntries(dir))]).toEqual([a]);
    await keeper.sweep();
    expect([existsSync(a), existsSync(b)]).toEqual([true, false]);
    await release();
    expect([...(await inUseEntries(dir))]).toEqual([]);
    await keeper.sweep();
    expect(existsSync(a)).toBe(false);
  });

  it('ignores, and removes, the in-use record of a process that is gone', async () => {
    await mkdir(join(dir, 'in-use'), { recursive: true });
    await writeFile(join(dir, 'in-use', '999999-1.json'), JSON.stringify({ pid: 999_999_999, startTime: '1', argv: [], entries: ['/x'] }));
    expect([...(await inUseEntries(dir))]).toEqual([]);
    expect(await readdir(join(dir, 'in-use'))).toEqual([]);
  });
});

describe('eviction settings', () => {
  it('keep the cache within 20 GiB and 30 days by default, read XAMAL_CACHE_MAX_BYTES and XAMAL_CACHE_MAX_AGE_DAYS, and name a bad one', () => {
    expect(builderConfig({}).cacheEviction).toEqual({ maxBytes: 20 * 1024 ** 3, maxAgeMs: 30 * DAY });
    expect(builderConfig({ XAMAL_CACHE_MAX_BYTES: String(5 * 1024 ** 3), XAMAL_CACHE_MAX_AGE_DAYS: '7' }).cacheEviction).toEqual({ maxBytes: 5 * 1024 ** 3, maxAgeMs: 7 * DAY });
    expect(() => builderConfig({ XAMAL_CACHE_MAX_BYTES: '10' })).toThrow(/XAMAL_CACHE_MAX_BYTES[\s\S]*at least 1 MiB/);
    expect(() => builderConfig({ XAMAL_CACHE_MAX_AGE_DAYS: '0' })).toThrow(/XAMAL_CACHE_MAX_AGE_DAYS[\s\S]*more than 0/);
  });
});
