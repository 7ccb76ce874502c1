import { command, type Command } from '../../core/index.ts';
import type { CaddyRequest } from '../remote.ts';
import { canonicalJson } from './caddy.ts';

/**
 * The app's Caddy access log, for `rollout.max_5xx_percent` (data only; `commands/caddy.ts` plans
 * it with the route, `flows/rollout.ts` reads it). Caddy 2.6.2 has no per-route request counts: its
 * `/metrics` series (only with the server's `metrics: {}`) are per server and handler, and apps share
 * server `xamal` (FACTS.md#caddy). So each app gets a JSON access log of its own host names, written
 * by Caddy to `/var/log/caddy/xamal-<app>.access.log`, and the watch counts the status codes of the
 * lines Caddy appended since the switch, by byte offset, with a bounded read.
 */

export const accessLoggerName = (app: string) => `xamal-${app}`;
/** The logger Caddy emits the app's access lines under (`http.log.access.<name>`). */
export const accessLoggerId = (app: string) => `http.log.access.${accessLoggerName(app)}`;
export const accessLogFile = (app: string) => `/var/log/caddy/xamal-${app}.access.log`;

/** The sink: JSON lines to the app's file, rolled at 20 MB (one old file kept). */
export function accessLogSink(app: string): Record<string, unknown> {
  return {
    writer: { output: 'file', filename: accessLogFile(app), roll_size_mb: 20, roll_keep: 1 },
    encoder: { format: 'json' },
    include: [accessLoggerId(app)],
  };
}

/**
 * The server's host → logger map entries for the app: each name, and the name with the server's
 * port (Caddy 2.6.2 with `skip_unmapped_hosts` logs a `Host: name:443` request only when that key
 * is mapped too, FACTS.md#caddy).
 */
export function loggerNames(app: string, hosts: readonly string[], port: string): Record<string, string> {
  return Object.fromEntries(hosts.flatMap((h) => [[h, accessLoggerName(app)], [`${h}:${port}`, accessLoggerName(app)]]));
}

type Path = (string | number)[];
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const at = (config: unknown, path: Path): unknown => path.reduce<unknown>((v, k) => (isObject(v) || Array.isArray(v) ? (v as Record<string | number, unknown>)[k] : undefined), config);
const configPath = (path: Path) => `/config/${path.map((p) => encodeURIComponent(String(p))).join('/')}`;
/** Equal as JSON whatever the key order (Caddy answers with keys sorted). */
const same = (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b);

/** A PUT creating `path` (Caddy's PUT creates the key) under the deepest existing object; `value` nested below it. */
function put(config: unknown, path: Path, value: unknown, label: string): CaddyRequest {
  let i = 0;
  while (i < path.length - 1 && isObject(at(config, path.slice(0, i + 1)))) i++;
  const body = path.slice(i + 1).reduceRight<unknown>((v, k) => ({ [k]: v }), value);
  const exists = at(config, path.slice(0, i + 1)) !== undefined;
  return { method: exists ? 'PATCH' : 'PUT', path: configPath(path.slice(0, i + 1)), body, label };
}

export interface AccessLogPlanInput {
  app: string;
  hosts: readonly string[];
  /** The server the app's route lives in, and its port. */
  server: string;
  port: string;
  /** Wanted (max_5xx_percent set) or not. */
  on: boolean;
}

/**
 * Pure: the admin API requests that give the app its access log in `current` (after the route
 * exists), or take it away: the server's `logs.logger_names` entries for its hosts with
 * `skip_unmapped_hosts` (other apps' requests are not logged), the sink in `logging.logs`, and the
 * app's logger excluded from the default log (else every line also goes to the journal).
 */
export function planAccessLog(current: unknown, input: AccessLogPlanInput): { requests: CaddyRequest[]; changes: string[] } {
  // Each request is planned against the config as the ones before it leave it.
  let draft: unknown = structuredClone(current ?? {});
  const reqs: CaddyRequest[] = [];
  const changes = planAgainst(() => draft, input, {
    push({ set, ...req }) {
      reqs.push(req);
      if (set) draft = setAt(draft, set[0], set[1]);
    },
  });
  return { requests: reqs, changes };
}

/** A copy of `config` with `value` at `path` (objects made on the way). */
function setAt(config: unknown, path: Path, value: unknown): unknown {
  if (!path.length) return value;
  const [k, ...rest] = path;
  const obj = isObject(config) ? { ...config } : {};
  (obj as Record<string, unknown>)[k as string] = setAt((obj as Record<string, unknown>)[k as string], rest, value);
  return obj;
}

function planAgainst(now: () => unknown, input: AccessLogPlanInput, requests: { push(r: CaddyRequest & { set?: [Path, unknown] }): void }): string[] {
  const changes: string[] = [];
  const name = accessLoggerName(input.app);
  const logsPath: Path = ['apps', 'http', 'servers', input.server, 'logs'];
  const sinkPath: Path = ['logging', 'logs', name];
  const excludePath: Path = ['logging', 'logs', 'default', 'exclude'];
  const namesNow = (): Record<string, unknown> => (isObject(at(now(), [...logsPath, 'logger_names'])) ? (at(now(), [...logsPath, 'logger_names']) as Record<string, unknown>) : {});
  const excludeNow = (): unknown[] => (Array.isArray(at(now(), excludePath)) ? (at(now(), excludePath) as unknown[]) : []);
  const names = namesNow();
  if (input.on) {
    const wanted = loggerNames(input.app, input.hosts, input.port);
    const ours = Object.fromEntries(Object.entries(names).filter(([, v]) => v === name));
    if (!same(ours, wanted) || at(now(), [...logsPath, 'skip_unmapped_hosts']) !== true) {
      const others = Object.fromEntries(Object.entries(names).filter(([, v]) => v !== name));
      const logs = { ...(isObject(at(now(), logsPath)) ? (at(now(), logsPath) as Record<string, unknown>) : {}), logger_names: { ...others, ...wanted }, skip_unmapped_hosts: true };
      requests.push({ ...put(now(), logsPath, logs, 'app access log: host names'), set: [logsPath, logs] });
      changes.push(`caddy access log of ${input.hosts.join(', ')} mapped to ${name}`);
    }
    if (!same(at(now(), sinkPath), accessLogSink(input.app))) {
      requests.push({ ...put(now(), sinkPath, accessLogSink(input.app), 'app access log: file'), set: [sinkPath, accessLogSink(input.app)] });
      changes.push(`caddy access log ${accessLogFile(input.app)}`);
    }
    if (!excludeNow().includes(accessLoggerId(input.app))) {
      const exclude = [...excludeNow(), accessLoggerId(input.app)];
      requests.push({ ...put(now(), excludePath, exclude, 'app access log: not in the default log'), set: [excludePath, exclude] });
    }
    return changes;
  }
  const ours = Object.keys(names).filter((k) => names[k] === name);
  if (ours.length) {
    requests.push({ method: 'PATCH', path: configPath([...logsPath, 'logger_names']), body: Object.fromEntries(Object.entries(names).filter(([, v]) => v !== name)), label: 'app access log off: host names' });
    changes.push(`caddy access log of ${input.app} removed`);
  }
  if (at(now(), sinkPath) !== undefined) requests.push({ method: 'DELETE', path: configPath(sinkPath), label: 'app access log off: file' });
  const exclude = excludeNow();
  if (exclude.includes(accessLoggerId(input.app))) requests.push({ method: 'PATCH', path: configPath(excludePath), body: exclude.filter((e) => e !== accessLoggerId(input.app)), label: 'app access log off: default log' });
  return changes;
}

/**
 * Reads the lines Caddy appended to the access log from byte `offset` on (at most `maxBytes`),
 * counting only whole lines: prints `<next offset> <answers> <5xx answers> <file size>`. A file
 * smaller than `offset` was rolled: counting starts again at 0. No file: `0 0 0 0`. The status is
 * the top-level `"status":NNN` of each JSON line (inside a JSON string a quote is escaped, so
 * `,"status":` appears nowhere else). Root step: the file is Caddy's.
 */
const COUNT_SCRIPT = `[ -f "$1" ] || { echo "0 0 0 0"; exit 0; }
size=$(stat -c %s -- "$1"); off=$2; [ "$size" -ge "$off" ] || off=0
{ tail -c +$((off + 1)) -- "$1" | head -c "$3"; printf '\\n#END\\n'; } | LC_ALL=C awk -v off="$off" -v size="$size" '
$0 == "#END" { print off + used, n + 0, e + 0, size; exit }
{ if (have) count(prev); prev = $0; have = 1 }
function count(l) { used += length(l) + 1; if (match(l, /,"status":[0-9]+/)) { s = substr(l, RSTART + 10, RLENGTH - 10) + 0; n++; if (s >= 500 && s <= 599) e++ } }'`;

export function countAccessLogCommand(app: string, offset: number, maxBytes = 16 * 1024 * 1024): Command {
  return command(['sh', '-c', COUNT_SCRIPT, 'sh', accessLogFile(app), String(Math.max(0, Math.floor(offset))), String(maxBytes)], { label: `count answers in ${accessLogFile(app)}`, timeoutMs: 30_000 });
}

/**
 * Root step: the log's directory, Caddy's to write in (`/var/log/caddy` comes with Debian's package;
 * a Caddy installed otherwise has none, and Caddy opens the file only at the first line, so a
 * missing directory shows nowhere but in the counts, FACTS.md#caddy). Prints `made` when it made it.
 */
export function accessLogDirCommand(): Command {
  return command(['sh', '-c', '[ -d /var/log/caddy ] && exit 0; install -d -o caddy -g caddy -m 0755 /var/log/caddy && echo made'], { label: 'Caddy log directory' });
}

/** Prints the access log's size (0 when there is none): where counting for a watch starts. Root step. */
export function accessLogSizeCommand(app: string): Command {
  return command(['sh', '-c', '[ -f "$1" ] && stat -c %s -- "$1" || echo 0', 'sh', accessLogFile(app)], { label: `size of ${accessLogFile(app)}` });
}

export interface AccessLogCount {
  /** Where the next read starts. */
  next: number;
  answers: number;
  errors5xx: number;
  /** The file's size when read (a size below the last offset: it was rolled). */
  size: number;
}

/** Pure: `countAccessLogCommand`'s output; undefined when it is not four numbers. */
export function parseAccessLogCount(stdout: string): AccessLogCount | undefined {
  const parts = stdout.trim().split(/\s+/).map((x) => (/^\d+$/.test(x) ? Number(x) : NaN));
  if (parts.length !== 4 || parts.some((x) => Number.isNaN(x))) return undefined;
  const [next, answers, errors5xx, size] = parts as [number, number, number, number];
  return { next, answers, errors5xx, size };
}
