import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { XamalError } from '../core/errors/index.ts';
import { isAlive, processStartTime, sleep, type PidRecord } from './process.ts';

/**
 * A cross-process mutex on a lock file holding the owner's pid, start time and a token of its own.
 *
 * The lock file appears whole: its record is written to a private file first and hard-linked to the
 * lock's path (`link` fails when the path exists), so no reader ever finds it half written.
 *
 * A lock whose owner died is taken over without ever removing it: a contender first claims the
 * takeover of that one lock (`<lock>.<dead token>.takeover`, again created by `link`, so one claim
 * wins), then, only if the lock still holds the dead owner's token, renames its own record over it.
 * Two contenders that both found the owner dead therefore never both hold the lock, nor does one
 * remove the other's (the remove-then-recreate race). A claimant that died before finishing is
 * itself dead: the next contender claims the takeover of that claim (`<lock>.<its token>.takeover`),
 * and so on down the chain. The owner's liveness is its pid and kernel start time on this host
 * (`process.ts` isAlive): the lock's directory is local to the machine.
 */
export async function withFileLock<T>(path: string, what: string, fn: () => Promise<T>, timeoutMs = 600_000): Promise<T> {
  await mkdir(dirname(path), { recursive: true });
  const me = lockIdentity();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await tryLock(path, me);
    if (got.held) break;
    if (Date.now() > deadline) throw new XamalError('unavailable', `${what} is locked by pid ${got.owner ?? '?'} (${path})`);
    await sleep(100);
  }
  try {
    return await fn();
  } finally {
    await unlock(path, me);
  }
}

/** Who holds (or wants) a lock: a live process's pid and start time, and a token no other holder ever had. */
export interface LockRecord extends PidRecord {
  token: string;
}

/** This process's identity for one acquisition. */
export function lockIdentity(): LockRecord {
  const startTime = processStartTime(process.pid) ?? 'unknown';
  return { pid: process.pid, startTime, argv: [], token: `${process.pid}-${startTime}-${randomBytes(6).toString('hex')}` };
}

/** A lock file as found: its token (from its record, or its inode and mtime when unreadable) and whether it still counts. */
interface Found {
  token: string;
  pid?: number;
  live: boolean;
}

/** Written by an older version, or not yet written by one, the record may lack a token or be unreadable: it counts for 5 s then. */
const UNREADABLE_GRACE_MS = 5_000;

function parseRecord(text: string): Partial<LockRecord> | undefined {
  try {
    return JSON.parse(text) as Partial<LockRecord>;
  } catch {
    return undefined;
  }
}

async function inspect(path: string): Promise<Found | undefined> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return undefined;
  const rec = await readFile(path, 'utf8').then(parseRecord, () => undefined);
  // A start time the writer could not read ('unknown') proves nothing: such a record counts as unreadable.
  if (rec && Number.isInteger(rec.pid) && typeof rec.startTime === 'string' && rec.startTime !== 'unknown') {
    const r = { pid: rec.pid!, startTime: rec.startTime, argv: [] };
    return { token: typeof rec.token === 'string' ? rec.token : `${r.pid}-${r.startTime}`, pid: r.pid, live: isAlive(r) };
  }
  return { token: `ino${st.ino}-${Math.round(st.mtimeMs)}`, live: Date.now() - st.mtimeMs <= UNREADABLE_GRACE_MS };
}

/** `me`'s record in a private file beside the lock, ready to be linked or renamed into place. */
export async function freshRecord(path: string, me: LockRecord): Promise<string> {
  const fresh = `${path}.${me.token}.new`;
  await writeFile(fresh, JSON.stringify(me));
  return fresh;
}

/** Creates `at` as a link to `fresh`; false when `at` exists already. */
async function linkNew(fresh: string, at: string): Promise<boolean> {
  try {
    await link(fresh, at);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

export type LockAttempt = { held: true } | { held: false; owner?: number };

/** One attempt: take the free lock, or take over a dead owner's; else who holds it. */
export async function tryLock(path: string, me: LockRecord): Promise<LockAttempt> {
  const fresh = await freshRecord(path, me);
  try {
    for (let i = 0; i < 10; i++) {
      if (await linkNew(fresh, path)) return { held: true };
      const found = await inspect(path);
      if (!found) continue;
      if (found.live) return { held: false, ...(found.pid !== undefined ? { owner: found.pid } : {}) };
      const t = await takeOver(path, found.token, me, fresh);
      if (t !== 'changed') return t === 'held' ? { held: true } : { held: false };
    }
    return { held: false };
  } finally {
    await rm(fresh, { force: true });
  }
}

/**
 * Takes over the lock at `path` from the dead holder of token `dead` (as this contender found it):
 * claims that takeover (following the chain of dead claimants), then, only if the lock still holds
 * `dead`, renames `me`'s record (`fresh`) over it. `busy`: a live contender is taking it over;
 * `changed`: the lock no longer holds `dead` (someone took it over or it was released).
 */
export async function takeOver(path: string, dead: string, me: LockRecord, fresh: string): Promise<'held' | 'busy' | 'changed'> {
  const chain: string[] = [];
  for (let t = dead; ; ) {
    const claim = `${path}.${t}.takeover`;
    chain.push(claim);
    if (await linkNew(fresh, claim)) break;
    const holder = await inspect(claim);
    // Removed meanwhile: only a finished takeover removes claims, so the lock has changed.
    if (!holder) return 'changed';
    if (holder.live) return 'busy';
    t = holder.token;
  }
  // The one claimant: nobody else may replace the lock now, so checking then renaming is safe.
  const now = await inspect(path);
  if (now?.token !== dead) {
    await rm(chain[chain.length - 1]!, { force: true });
    return 'changed';
  }
  await rename(fresh, path);
  for (const claim of chain) await rm(claim, { force: true });
  return 'held';
}

/** Removes the lock if it is still `me`'s (it always is while `me` lives: only a dead owner's lock is taken over). */
export async function unlock(path: string, me: LockRecord): Promise<void> {
  if ((await inspect(path))?.token === me.token) await rm(path, { force: true });
}
