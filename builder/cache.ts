import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, lstat, mkdir, readdir, readFile, readlink, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { z } from 'zod';
import { readCappedFile, runChecked, XamalError, type Executor } from '../core/index.ts';
import { withFileLock } from '../localservices/fs-lock.ts';
import { isAlive, processStartTime } from '../localservices/process.ts';
import { BUILD_USER } from './build-user.ts';

/**
 * The worker's build cache: deps/ and _build directories under keys the plan computes
 * (builder/plan.ts), and the marker a successful deps step leaves.
 */

/** mix.lock, mix.exs and each compile-time config file are read up to this size (larger ones are refused). */
export const MAX_SOURCE_FILE_BYTES = 1024 * 1024;

/**
 * A source file's bytes (empty when there is none), read with a size cap and never through a link
 * or from a device or FIFO (`core/files.ts` readCappedFile): anything else is refused, naming it.
 */
export async function readSourceFile(root: string, path: string, maxBytes = MAX_SOURCE_FILE_BYTES): Promise<Buffer> {
  const r = await readCappedFile(path, maxBytes);
  if (r.kind === 'read') return r.data;
  if (r.kind === 'missing') return Buffer.alloc(0);
  throw new XamalError('build_failed', `source: ${relative(root, path)} ${r.why}; it is read only as a regular file of at most ${maxBytes} bytes`);
}

/** sha256 over files' paths relative to `root` and contents (absolute paths differ per job's work directory). */
export async function hashFiles(root: string, paths: string[]): Promise<string> {
  const h = createHash('sha256');
  for (const p of paths.sort()) {
    h.update(relative(root, p));
    h.update(await readSourceFile(root, p));
  }
  return h.digest('hex');
}

/** What the cache keys and the deps marker are made of, read from an unpacked source. */
export interface SourceHashes {
  /** sha256 of mix.lock (of nothing when there is none). */
  lockHash: string;
  /** sha256 over mix.exs and the compile-time config files (config/*.exs but runtime.exs). */
  configHash: string;
  /** sha256 of mix.exs alone. */
  mixExs: string;
}

export async function sourceHashes(src: string): Promise<SourceHashes> {
  const configDir = join(src, 'config');
  const configFiles = existsSync(configDir) ? (await readdir(configDir)).filter((f) => f.endsWith('.exs') && f !== 'runtime.exs').map((f) => join(configDir, f)) : [];
  return {
    lockHash: await hashFiles(src, [join(src, 'mix.lock')]),
    configHash: await hashFiles(src, [join(src, 'mix.exs'), ...configFiles]),
    mixExs: await hashFiles(src, [join(src, 'mix.exs')]),
  };
}

/**
 * One cache entry's lock (`<entry>.lock`, across worker processes): a restore copies the entry whole
 * while holding it, and a save swaps a new copy in only while holding it, so a reader never copies
 * half of one version and half of another, nor finds the entry gone mid-copy.
 */
const withEntryLock = <T>(entry: string, fn: () => Promise<T>) => withFileLock(`${entry}.lock`, `cache entry ${entry}`, fn);

/** Marks a cache entry (a directory) as used now: eviction (builder/eviction.ts) goes by this time. */
export async function touchEntry(entry: string): Promise<void> {
  const now = new Date();
  await utimes(entry, now, now).catch(() => {});
}

/**
 * Copies a cached directory into the source tree (`cp -a`). Refused (`build_failed`) when `into` or
 * its parent is a link: a committed `deps -> /elsewhere` would take the copy out of the work tree.
 */
export async function restoreCache(exec: Executor, from: string, into: string, label: string): Promise<void> {
  for (const path of [dirname(into), into]) {
    const st = await lstat(path).catch(() => undefined);
    if (st?.isSymbolicLink()) throw new XamalError('build_failed', `${label}: ${path} is a link (-> ${await readlink(path)}); the cache is never restored through one`);
  }
  await withEntryLock(from, async () => {
    if (!(await lstat(from)).isDirectory()) throw new XamalError('build_failed', `${label}: the cache entry ${from} is not a directory; it is not restored`);
    await touchEntry(from);
    await runChecked(exec, { argv: ['cp', '-a', '--', from, into], label });
  });
}

/**
 * Copies `from` to `to` through a temporary copy and a rename, so readers never see half a cache.
 * Without `replace` the first writer wins (an existing `to` stays); with it `to` is replaced, the
 * swap done under the entry's lock so no restore of `to` is in progress. Nothing to copy (no `from`)
 * is no error; a `from` that is a link or no directory is refused.
 */
export async function saveCache(exec: Executor, from: string, to: string, replace: boolean): Promise<void> {
  const st = await lstat(from).catch(() => undefined);
  if (!st) return;
  // A step running the build's code may have made deps or _build a link: never cached, so never restored.
  if (!st.isDirectory()) throw new XamalError('build_failed', `save cache: ${from} is ${st.isSymbolicLink() ? `a link (-> ${await readlink(from)})` : 'not a directory'}; it is not cached`);
  if (existsSync(to) && !replace) return;
  await mkdir(dirname(to), { recursive: true });
  const tmp = sideName(to, 'tmp');
  try {
    await runChecked(exec, { argv: ['cp', '-a', from, tmp], label: 'save cache' });
    await withEntryLock(to, () => swapIn(tmp, to, replace));
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * A save's directories beside its entry: the copy being made (`tmp`) and the version it replaces
 * (`old`), named `<entry>.<pid>-<start time>.<ms>.<kind>` after the process writing them. A writer
 * killed mid-save leaves them; eviction (builder/eviction.ts) removes those whose writer is gone.
 */
export function sideName(entry: string, kind: 'tmp' | 'old'): string {
  return `${entry}.${process.pid}-${processStartTime(process.pid) ?? 'x'}.${Date.now()}.${kind}`;
}

/** A save's leftover as its name tells: the entry's directory name, the writer, when the save began. */
export interface SideName {
  entry: string;
  pid: number;
  /** Absent in names from before writers carried it (`<entry>.<pid>.<ms>.<kind>`). */
  startTime?: string;
  startedMs: number;
  kind: 'tmp' | 'old';
}

/** Parses a directory name `sideName` made (or an older `<entry>.<pid>.<ms>.<kind>`); undefined for anything else. */
export function parseSideName(name: string): SideName | undefined {
  const m = /^((?:deps|build|assets)-[0-9a-f]+)\.(\d+)(?:-(\d+|x))?\.(\d+)\.(tmp|old)$/.exec(name);
  if (!m) return undefined;
  return { entry: m[1]!, pid: Number(m[2]), ...(m[3] !== undefined ? { startTime: m[3] } : {}), startedMs: Number(m[4]), kind: m[5] as 'tmp' | 'old' };
}

/**
 * Whether the process that named a leftover may still be filling it: its pid runs on this machine with
 * the same start time (any process under that pid when the name has no start time). The cache
 * directory is the machine's own (XAMAL_CACHE_DIR), as the entry locks and in-use records also assume.
 */
export function writerAlive(side: SideName): boolean {
  if (side.startTime === undefined || side.startTime === 'x') return processStartTime(side.pid) !== undefined;
  return isAlive({ pid: side.pid, startTime: side.startTime, argv: [] });
}

/** Moves the complete copy `tmp` to `to` (replacing it only with `replace`); the caller holds `to`'s lock. */
async function swapIn(tmp: string, to: string, replace: boolean): Promise<void> {
  if (!existsSync(to)) return rename(tmp, to);
  if (!replace) return;
  const old = sideName(to, 'old');
  await rename(to, old);
  await rename(tmp, to);
  await rm(old, { recursive: true, force: true });
}

/** What a successful deps step ran with (the plan's `cachePaths.depsFetched`). */
export const DepsMarkerSchema = z.object({
  /** sha256 of the mix.exs the step ran with (the deps key already covers mix.lock and the image). */
  mixExs: z.string(),
  /** Whether it left a deps/ directory (an app without dependencies has none). */
  depsDir: z.boolean(),
  /**
   * It wrote a mix.lock the source did not have (a git dependency in an unlocked project): the cache
   * keeps deps/, not that lock, so skipping the step would leave the project unlocked.
   */
  lockWritten: z.boolean().optional(),
});
export type DepsMarker = z.output<typeof DepsMarkerSchema>;

/** The marker at `path`, or undefined when there is none or it is unreadable. */
export async function readDepsMarker(path: string): Promise<DepsMarker | undefined> {
  try {
    const parsed = DepsMarkerSchema.safeParse(JSON.parse(await readFile(path, 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the marker atomically (temporary file and rename). */
export async function writeDepsMarker(path: string, marker: DepsMarker): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, JSON.stringify(marker));
  await rename(tmp, path);
}

/** What the cache holds for a job's keys. */
export interface CacheFacts {
  deps: boolean;
  build: boolean;
  /** An assets step's output is kept under the job's assets key (builder/assets-cache.ts). */
  assets?: boolean;
  /** Left by an earlier successful deps step with the same deps key. */
  depsMarker?: DepsMarker;
}

/**
 * What the cache holds under a plan's cache paths (builder/plan.ts `cacheLayout`), each looked up
 * under its entry's lock: eviction (builder/eviction.ts) removes an entry under the same lock.
 */
export async function readCacheFacts(paths: { deps: string; build: string; depsFetched: string; assets?: string }): Promise<CacheFacts> {
  const deps = await withEntryLock(paths.deps, async () => ({ present: existsSync(paths.deps), marker: await readDepsMarker(paths.depsFetched) }));
  const build = await withEntryLock(paths.build, async () => existsSync(paths.build));
  const { assets } = paths;
  const kept = assets ? { assets: await withEntryLock(assets, async () => existsSync(assets)) } : {};
  return { deps: deps.present, build, ...kept, ...(deps.marker ? { depsMarker: deps.marker } : {}) };
}

/**
 * Replaces `into` — a directory of the source (priv/static), reached from `base` through real
 * directories — with a copy of the cache entry `from` (`cp -a`, the build user's files kept as
 * they are). Refused (`build_failed`) when `into` or a directory on the way is a link or not a
 * directory: an earlier step ran the project's code, which may have made one.
 */
export async function restoreOutput(exec: Executor, from: string, into: string, base: string, label: string): Promise<void> {
  const parts = relative(base, into).split('/');
  for (let i = 1; i <= parts.length; i++) {
    const path = join(base, ...parts.slice(0, i));
    const st = await lstat(path).catch(() => undefined);
    if (st?.isSymbolicLink()) throw new XamalError('build_failed', `${label}: ${relative(base, path)} is a link (-> ${await readlink(path)}); the cache is never restored through one`);
    if (st && !st.isDirectory()) throw new XamalError('build_failed', `${label}: ${relative(base, path)} is not a directory; the cache is not restored over it`);
  }
  await withEntryLock(from, async () => {
    if (!(await lstat(from)).isDirectory()) throw new XamalError('build_failed', `${label}: the cache entry ${from} is not a directory; it is not restored`);
    await touchEntry(from);
    await rm(into, { recursive: true, force: true });
    // A parent the source lacks is made the build user's, as the rest of the work directory is.
    const made = await mkdir(dirname(into), { recursive: true });
    if (made) await chown(made, BUILD_USER.uid, BUILD_USER.gid);
    await runChecked(exec, { argv: ['cp', '-a', '--', from, into], label });
  });
}
