import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** How a container step's disk use is bounded: its work directory measured every `everyMs` and once it ends. */
export interface DiskLimit {
  dir: string;
  maxBytes: number;
  everyMs: number;
}

const gone = (err: unknown) => ['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '');

/**
 * Entries looked at together: the walk waits on the file system (one lstat or readdir each, through
 * libuv's thread pool), not on the CPU, so it looks at many at once. One at a time took ~0.2–0.7 ms
 * an entry on this loaded 2-core machine — seconds for a release tree, measured after every step.
 */
export const DISK_WALK_WIDTH = 32;

/**
 * Bytes under `dir`, never following a link: per entry the larger of its length and its allocated
 * blocks (a sparse file counts at its length: tar and the store would read all of it). Stops counting
 * once past `stopAbove`. Entries removed while it walks are skipped. Looks at DISK_WALK_WIDTH
 * entries at once.
 */
export async function diskUsage(dir: string, stopAbove = Number.POSITIVE_INFINITY): Promise<number> {
  let total = 0;
  const pending = [dir];
  const visit = async (path: string) => {
    const st = await lstat(path).catch((err: unknown) => (gone(err) ? undefined : Promise.reject(err)));
    if (!st) return;
    total += Math.max(st.size, st.blocks * 512);
    if (!st.isDirectory()) return;
    const names = await readdir(path).catch((err: unknown) => (gone(err) ? undefined : Promise.reject(err)));
    for (const name of names ?? []) pending.push(join(path, name));
  };
  await new Promise<void>((resolve, reject) => {
    let active = 0;
    let failed = false;
    const pump = () => {
      if (failed) return;
      const more = pending.length > 0 && total <= stopAbove;
      if (!more && active === 0) return resolve();
      while (active < DISK_WALK_WIDTH && pending.length > 0 && total <= stopAbove) {
        active++;
        visit(pending.pop()!).then(
          () => (active--, pump()),
          (err: unknown) => ((failed = true), reject(err)),
        );
      }
    };
    pump();
  });
  return total;
}

export interface DiskWatch {
  /** Stops watching, measures once more, and resolves with the bytes found when past the limit (the same answer on every call). */
  stop(): Promise<number | undefined>;
}

/**
 * Measures `limit.dir` every `limit.everyMs` while a step runs; the first time it is past
 * `limit.maxBytes`, calls `onOver` (which kills the step). Errors while measuring are ignored: the
 * final measure in `stop` reports them.
 */
export function watchDisk(limit: DiskLimit, onOver: (bytes: number) => void): DiskWatch {
  let over: number | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const measure = async () => {
    const used = await diskUsage(limit.dir, limit.maxBytes).catch(() => 0);
    if (over === undefined && used > limit.maxBytes) {
      over = used;
      onOver(used);
    }
  };
  const schedule = () => {
    timer = setTimeout(() => {
      running = measure().then(() => (stopped ? undefined : schedule()));
    }, limit.everyMs);
  };
  schedule();
  let final: Promise<number | undefined> | undefined;
  const finish = async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
    if (over !== undefined) return over;
    const used = await diskUsage(limit.dir, limit.maxBytes);
    return used > limit.maxBytes ? used : undefined;
  };
  return { stop: () => (final ??= finish()) };
}
