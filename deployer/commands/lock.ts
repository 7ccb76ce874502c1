import { command, type Command } from '../../core/index.ts';
import type { AppLayout } from './layout.ts';

/**
 * The deploy lock: a directory on the primary host holding the holder's details, built aside and
 * renamed into place (atomic: exactly one of two concurrent acquirers succeeds, and the loser always
 * finds the details), in one round trip. Exit codes are the protocol: see `LOCK_EXIT`.
 */

export const LOCK_EXIT = {
  ok: 0,
  /** Acquire: someone holds it (their details on stdout). Status/release: nobody holds it. */
  held: 3,
  /** The app directory does not exist (setup has not run). */
  noApp: 4,
  /** Break: the lock changed since it was read. */
  changed: 5,
} as const;

// The lock directory appears with its details already inside: built aside, then renamed into place
// (rename(2) onto a non-empty directory fails), so a second acquirer always reads who holds it.
const ACQUIRE =
  '[ -d "$1" ] || exit 4; t="$1/lock.new.$$"; rm -rf -- "$t"; { mkdir -- "$t" && cat > "$t/details.json"; } || { rm -rf -- "$t"; exit 1; }; ' +
  'mv -T -- "$t" "$1/lock" 2>/dev/null && exit 0; rm -rf -- "$t"; cat -- "$1/lock/details.json" 2>/dev/null; exit 3';

/** Takes the lock with `details` (JSON text) on stdin, or prints the holder's details and exits 3. */
export function acquireLockCommand(layout: AppLayout, details: string): Command {
  return command(['sh', '-c', ACQUIRE, 'sh', layout.root], { stdin: details, label: 'acquire lock' });
}

const STATUS = '[ -d "$1" ] || exit 4; [ -d "$1/lock" ] || exit 3; cat -- "$1/lock/details.json" 2>/dev/null; exit 0';

/** Prints the holder's details (exit 0; empty if it has none), or exits 3 when unlocked. */
export function lockStatusCommand(layout: AppLayout): Command {
  return command(['sh', '-c', STATUS, 'sh', layout.root], { label: 'lock status' });
}

// Renamed away first, so the lock never exists empty (an acquirer would replace an empty one).
const RELEASE = '[ -d "$1/lock" ] || exit 3; d="$1/lock.released.$$"; mv -T -- "$1/lock" "$d" && rm -rf -- "$d"';

/** Removes the lock whoever holds it (exit 3 if there was none). */
export function releaseLockCommand(layout: AppLayout): Command {
  return command(['sh', '-c', RELEASE, 'sh', layout.root], { label: 'release lock' });
}

const BREAK = 'cmp -s -- "$1/lock/details.json" - || exit 5; d="$1/lock.broken.$$"; mv -- "$1/lock" "$d" && rm -rf -- "$d"';

/**
 * Removes a stale lock only if its details are still the ones read (stdin), so a lock someone took
 * after the stale one was read is left alone (exit 5).
 */
export function breakLockCommand(layout: AppLayout, seenDetails: string): Command {
  return command(['sh', '-c', BREAK, 'sh', layout.root], { stdin: seenDetails, label: 'break stale lock' });
}
