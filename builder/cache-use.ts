import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../core/index.ts';
import { isAlive, processStartTime, readPidRecord } from '../localservices/process.ts';
import { DEFAULT_EVICTION, evictCache, type EvictionPolicy } from './eviction.ts';

/**
 * Which cache entries running builds use, across the worker processes sharing a cache directory:
 * each process keeps its own in-flight entries in `<cache>/in-use/<pid>-<n>.json` (with its start time,
 * so a dead process's file counts for nothing), and eviction never removes any of them.
 */
export interface CacheUse {
  /** Marks entries in use until the returned release runs. */
  hold(paths: readonly string[]): Promise<() => Promise<void>>;
}

/** Every entry some live process of this cache holds; files of dead processes are removed. */
export async function inUseEntries(cacheDir: string): Promise<Set<string>> {
  const dir = join(cacheDir, 'in-use');
  const out = new Set<string>();
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue;
    const rec = (await readPidRecord(join(dir, name))) as (Awaited<ReturnType<typeof readPidRecord>> & { entries?: unknown }) | undefined;
    if (!rec || !isAlive(rec)) {
      await rm(join(dir, name), { force: true });
      continue;
    }
    if (Array.isArray(rec.entries)) for (const e of rec.entries) if (typeof e === 'string') out.add(e);
  }
  return out;
}

export interface CacheKeeper extends CacheUse {
  /** Evicts by the policy, never what a live build holds, logging what went; sweeps never overlap (one asked for during one runs once after it). */
  sweep(logger?: Logger): Promise<void>;
}

let keepers = 0;

/** This process's in-use record and its sweeps of the cache at `cacheDir`. */
export function cacheKeeper(cacheDir: string, policy: EvictionPolicy = DEFAULT_EVICTION): CacheKeeper {
  const held = new Map<string, number>();
  // One file per keeper: a process may run several (test farms), each rewriting only its own.
  const file = join(cacheDir, 'in-use', `${process.pid}-${++keepers}.json`);
  let writes = Promise.resolve();
  const write = () => {
    const entries = [...held.keys()];
    // A failed write (reported to its caller) does not stop the later ones.
    writes = writes.catch(() => {}).then(async () => {
      await mkdir(join(cacheDir, 'in-use'), { recursive: true });
      const tmp = `${file}.tmp`;
      await writeFile(tmp, JSON.stringify({ pid: process.pid, startTime: processStartTime(process.pid), argv: [], entries }));
      await rename(tmp, file);
    });
    return writes;
  };
  let running: Promise<void> | undefined;
  let again = false;
  const sweepOnce = async (logger?: Logger) => {
    const report = await evictCache(cacheDir, policy, async () => new Set([...held.keys(), ...(await inUseEntries(cacheDir))]));
    if (report.remove.length) logger?.info({ removed: report.remove.map((e) => ({ path: e.path, bytes: e.bytes, why: e.why })), skipped: report.skipped, keptBytes: report.keptBytes }, 'build cache evicted');
  };
  const sweep = async (logger?: Logger): Promise<void> => {
    if (running) return void (again = true);
    running = sweepOnce(logger).catch((err: Error) => logger?.warn({ err: err.message }, 'build cache eviction failed'));
    await running;
    running = undefined;
    if (again) {
      again = false;
      await sweep(logger);
    }
  };
  return {
    async hold(paths) {
      for (const p of paths) held.set(p, (held.get(p) ?? 0) + 1);
      await write();
      return async () => {
        for (const p of paths) {
          const n = (held.get(p) ?? 1) - 1;
          if (n > 0) held.set(p, n);
          else held.delete(p);
        }
        await write();
      };
    },
    sweep,
  };
}
