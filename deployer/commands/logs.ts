import { command, XamalError, type Command } from '../../core/index.ts';

/**
 * `xamal app logs`: the journal of the app's live slot units, as data. Filtering (`--grep`) is
 * grep on the host: journalctl's own --grep needs a PCRE2 build that Debian 11's systemd lacks.
 */

export interface LogsQuery {
  /** Lines per command (`-n`); none: all that match `since`. */
  lines?: number | undefined;
  /** journalctl's `--since` value (`journalSince`). */
  since?: string | undefined;
  /** A grep (basic) regular expression, as Kamal's --grep. */
  grep?: string | undefined;
  /** Keep printing new lines until stopped (`-f`). */
  follow?: boolean | undefined;
}

const SINCE_HINT = 'expected a time like "2026-01-02 13:00", 2026-01-02T13:00:00Z or 2026-01-02, or a relative time like 30s, 5m, 1h, 2d';
const RELATIVE_UNITS: Record<string, string> = { s: 's', m: 'min', h: 'h', d: 'd' };

/**
 * Pure: `--since` as journalctl takes it. Relative `5m`/`1h` → `-5min`/`-1h`; an absolute time
 * (without a zone: this machine's local time) → `YYYY-MM-DD HH:MM:SS UTC`, so the host's time zone
 * does not move it.
 */
export function journalSince(input: string): string {
  const v = input.trim();
  const rel = /^(\d{1,6})([smhd])$/.exec(v);
  if (rel) return `-${Number(rel[1])}${RELATIVE_UNITS[rel[2]!]}`;
  const abs = /^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?(Z|[+-]\d{2}:?\d{2})?$/.exec(v);
  if (!abs) throw new XamalError('usage', `--since: ${SINCE_HINT}, got ${JSON.stringify(input)}`);
  const [y, mo, d] = abs[1]!.split('-').map(Number) as [number, number, number];
  const date = new Date(`${abs[1]}T${abs[2] ?? '00:00'}${abs[3] ?? ''}`);
  if (Number.isNaN(date.getTime()) || d < 1 || d > new Date(Date.UTC(y, mo, 0)).getUTCDate()) throw new XamalError('usage', `--since: not a valid date: ${JSON.stringify(input)}`);
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** Pure: `-g PATTERN` checked: one line of text. */
export function grepPattern(input: string): string {
  if (input === '' || /[\n\r\0]/.test(input)) throw new XamalError('usage', '--grep: expected a non-empty pattern on one line');
  return input;
}

/**
 * $1 follow|once, $2 the grep pattern ('' for none), then journalctl's arguments. grep's "no line
 * matched" (1) is not a failure. Following, the reader runs in a session of its own (setsid,
 * util-linux: on every Debian) while stdin is watched: when xamal ends stdin (Ctrl-C) or the
 * connection goes, the reader's whole process group (journalctl and grep) is stopped. (A background
 * list reads /dev/null unless told otherwise: the watcher reads the real stdin through fd 3.)
 */
const LOGS_SCRIPT = `m=$1 g=$2; shift 2
if [ -n "$g" ]; then set -- sh -c 'journalctl "$@" | grep --line-buffered -e "$0"; [ $? -le 1 ]' "$g" "$@"; else set -- journalctl "$@"; fi
[ "$m" = follow ] || exec "$@"
exec 3<&0
setsid "$@" 3<&- & p=$!
{ cat <&3 >/dev/null; kill -TERM -"$p" 2>/dev/null; } &
wait "$p"; s=$?; kill $! 2>/dev/null; exit $s`;

/** Root step (the journal of system units): the units' log lines, oldest first, message text only. */
export function appLogsCommand(units: readonly string[], q: LogsQuery): Command {
  if (units.length === 0) throw new XamalError('internal', 'appLogsCommand: no units');
  const args = [...units.flatMap((u) => ['-u', u]), '--no-pager', '-o', 'cat', ...(q.lines !== undefined ? ['-n', String(q.lines)] : []), ...(q.since !== undefined ? [`--since=${q.since}`] : []), ...(q.follow ? ['-f'] : [])];
  return command(['sh', '-c', LOGS_SCRIPT, 'sh', q.follow ? 'follow' : 'once', q.grep ?? '', ...args], {
    label: `logs of ${units.join(', ')}`,
    ...(q.follow ? {} : { timeoutMs: 120_000 }),
  });
}
