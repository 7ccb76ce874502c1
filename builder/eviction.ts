import { existsSync } from 'node:fs';
import { lstat, readdir, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isXamalError } from '../core/index.ts';
import { withFileLock } from '../localservices/fs-lock.ts';
import { parseSideName, writerAlive } from './cache.ts';

/**
 * Cache eviction by size and age: `planEviction` decides as data what goes, `evictCache` lists the
 * entries on disk and removes what the plan says. An entry is one directory: a deps/, _build or
 * assets output (priv/static) copy (`<cache>/mix/<app>/…`, deps/ with its marker) or a git mirror (`<cache>/git/<app>/….git`).
 * Beside them, a save's leftovers (`<entry>.<pid>-<start>.<ms>.tmp|old`, builder/cache.ts `sideName`):
 * those of a writer that is gone (killed mid-save) go at once; those of a live one count in the size.
 */

export interface CacheEntry {
  path: string;
  bytes: number;
  /** When a build last used it (restored from it, fetched into it, saved it): the directory's mtime. */
  lastUsedMs: number;
}

export interface EvictionPolicy {
  /** Most bytes the entries may take together (XAMAL_CACHE_MAX_BYTES, default 20 GiB). */
  maxBytes: number;
  /** Entries unused for longer go (XAMAL_CACHE_MAX_AGE_DAYS, default 30 days). */
  maxAgeMs: number;
}

/** A save's temporary copy or replaced version beside an entry; `lastUsedMs` is when the save began. */
export interface Leftover extends CacheEntry {
  /** Whether the process that made it may still be filling it (builder/cache.ts `writerAlive`). */
  writer: 'alive' | 'gone';
}

export const DEFAULT_EVICTION: EvictionPolicy = { maxBytes: 20 * 1024 ** 3, maxAgeMs: 30 * 86_400_000 };

export interface EvictionPlan {
  /** Leftovers of writers that are gone first, then entries oldest first. */
  remove: (CacheEntry & { why: 'orphan' | 'age' | 'size' })[];
  /** Bytes of what stays, entries in use included (it may stay above the limit while they are). */
  keptBytes: number;
}

/**
 * Pure: what to delete: every leftover whose writer is gone, then, oldest first, every entry unused
 * for longer than `maxAgeMs`, then the oldest others until the rest fits in `maxBytes` — the
 * leftovers a live writer is still filling count in that size, and are never chosen. An entry in
 * `inUse` (a running build reads or writes it) is never chosen, however old or large.
 */
export function planEviction(entries: readonly CacheEntry[], policy: EvictionPolicy, nowMs: number, inUse: ReadonlySet<string>, leftovers: readonly Leftover[] = []): EvictionPlan {
  const oldestFirst = [...entries].sort((a, b) => a.lastUsedMs - b.lastUsedMs || a.path.localeCompare(b.path));
  const remove: EvictionPlan['remove'] = [];
  let keptBytes = oldestFirst.reduce((n, e) => n + e.bytes, 0);
  for (const { writer, ...l } of [...leftovers].sort((a, b) => a.path.localeCompare(b.path))) {
    if (writer === 'gone') remove.push({ ...l, why: 'orphan' });
    else keptBytes += l.bytes;
  }
  for (const e of oldestFirst) {
    if (inUse.has(e.path)) continue;
    const why = nowMs - e.lastUsedMs > policy.maxAgeMs ? 'age' : keptBytes > policy.maxBytes ? 'size' : undefined;
    if (!why) continue;
    remove.push({ ...e, why });
    keptBytes -= e.bytes;
  }
  return { remove, keptBytes };
}

/** Bytes of the files under `path`, links and all counted as themselves (never followed). */
async function treeBytes(path: string): Promise<number> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const name of await readdir(path).catch(() => [] as string[])) n += await treeBytes(join(path, name));
  return n;
}

/** A directory an entry is: a cache key (`deps-…`, `build-…`, `assets-…`) or a mirror (`….git`); not a copy in progress. */
const isEntryName = (name: string) => /^(deps|build|assets)-[0-9a-f]+$|^[0-9a-f]+\.git$/.test(name);
/** A per-app folder (an Elixir app name). */
const isAppName = (name: string) => /^[a-z][a-z0-9_]*$/.test(name);

async function dirs(path: string): Promise<string[]> {
  const found = await readdir(path, { withFileTypes: true }).catch(() => []);
  return found.filter((d) => d.isDirectory()).map((d) => d.name);
}

/** Directories under `<cache>/mix` and `<cache>/git` whose name passes `keep`: per app, and (from before per-app caches) at the top. */
async function cacheDirs(cacheDir: string, keep: (name: string) => boolean): Promise<string[]> {
  const paths: string[] = [];
  for (const kind of ['mix', 'git']) {
    const top = join(cacheDir, kind);
    for (const name of await dirs(top)) {
      if (keep(name)) paths.push(join(top, name));
      else if (isAppName(name)) for (const e of await dirs(join(top, name))) if (keep(e)) paths.push(join(top, name, e));
    }
  }
  return paths;
}

/** Every entry of the cache, with its size and last use. */
export async function listCacheEntries(cacheDir: string): Promise<CacheEntry[]> {
  const paths = await cacheDirs(cacheDir, isEntryName);
  const entries: CacheEntry[] = [];
  for (const path of paths) {
    const st = await lstat(path).catch(() => undefined);
    if (st) entries.push({ path, bytes: await treeBytes(path), lastUsedMs: st.mtimeMs });
  }
  return entries;
}

/** Every save's leftover beside an entry (`<cache>/mix/…`), with its size and whether its writer is gone. */
export async function listLeftovers(cacheDir: string): Promise<Leftover[]> {
  const out: Leftover[] = [];
  for (const path of await cacheDirs(cacheDir, (name) => parseSideName(name) !== undefined)) {
    const side = parseSideName(basename(path))!;
    out.push({ path, bytes: await treeBytes(path), lastUsedMs: side.startedMs, writer: writerAlive(side) ? 'alive' : 'gone' });
  }
  return out;
}

/** Which entries running builds hold now (builder/cache-use.ts). */
export type InUse = () => Promise<ReadonlySet<string>>;

/**
 * Removes one entry and its deps marker under the entry's lock, the one restores, saves, fetches and
 * cache lookups take (builder/cache.ts, builder/source.ts), after asking again whether a build holds
 * it: a build marks its entries before it looks them up under that lock, so it either finds the
 * entry and keeps it, or finds it gone. An entry locked for over a second is left for the next sweep.
 */
async function removeEntry(path: string, inUse: InUse): Promise<boolean> {
  try {
    return await withFileLock(`${path}.lock`, `cache entry ${path}`, async () => {
      if ((await inUse()).has(path)) return false;
      // Out of the way at once (a rename), removed after: a sweep cut short never leaves half an entry.
      await rm(`${path}.fetched.json`, { force: true });
      await rename(path, `${path}.${process.pid}.evicted`);
      return !existsSync(path);
    }, 1000);
  } catch (err) {
    if (isXamalError(err) && err.code === 'unavailable') return false;
    throw err;
  }
}

export interface EvictionReport extends EvictionPlan {
  /** Entries the plan chose that were locked or taken by a build meanwhile, left for the next sweep. */
  skipped: string[];
}

/** Lists the cache, plans, and removes what the plan chose (oldest first). */
export async function evictCache(cacheDir: string, policy: EvictionPolicy, inUse: InUse, nowMs = Date.now()): Promise<EvictionReport> {
  const plan = planEviction(await listCacheEntries(cacheDir), policy, nowMs, await inUse(), await listLeftovers(cacheDir));
  const skipped: string[] = [];
  for (const e of plan.remove) {
    // A leftover is no entry: no build reads it, and its writer, the only one that touched it, is gone.
    if (e.why === 'orphan') await rm(e.path, { recursive: true, force: true });
    else if (!(await removeEntry(e.path, inUse))) skipped.push(e.path);
  }
  // What this sweep moved aside, and any an earlier one left when its process stopped.
  for (const gone of await cacheDirs(cacheDir, (name) => name.endsWith('.evicted'))) await rm(gone, { recursive: true, force: true });
  return { ...plan, skipped };
}
