import { command, type Command } from '../../core/index.ts';
import { checkVersion, type AppLayout } from './layout.ts';

/**
 * Commands of a watched rollout and of `deploy --resume` (data only; `flows/rollout.ts` and
 * `flows/resume.ts` run them): one health check through Caddy, the failed-version marks every
 * operator sees (`APP/failed/<version>.json`), and the last deploy attempt (`APP/last-deploy.json`).
 * Fixed scripts; values arrive as positional parameters, JSON on stdin.
 */

/** `APP/failed`: one JSON file per version a watched rollout rolled back. */
export const failedDir = (layout: AppLayout) => `${layout.root}/failed`;

/** `APP/last-deploy.json`: the version the last deploy (or rollback) set out to make live, and where. */
export const attemptFile = (layout: AppLayout) => `${layout.root}/last-deploy.json`;

/**
 * One request for the health path, through Caddy (its own listener, the site's name as SNI/Host)
 * or, for an app with no host names, to the live slot's port. Prints `<status> <curl's error>`
 * (status 000: no answer) and exits 0: the answer is data for the watch.
 */
export function watchProbeCommand(target: { hosts: string[]; https: boolean } | { port: number }, path: string, timeoutS: number): Command {
  const opts = (label: string) => ({ label, timeoutMs: (timeoutS + 10) * 1000 });
  if ('port' in target) return command(['sh', '-c', probeScript('"$2"'), 'sh', String(timeoutS), `http://127.0.0.1:${target.port}${path}`], opts(`watch :${target.port}${path}`));
  const name = target.hosts[0]!;
  const url = `${target.https ? 'https' : 'http'}://${name}${path}`;
  return command(['sh', '-c', probeScript('--resolve "$2" "$3"'), 'sh', String(timeoutS), `${name}:${target.https ? 443 : 80}:127.0.0.1`, url], opts(`watch ${url} through Caddy`));
}

/** Each watch check may take twice the interval (0.5 to 5 s): an app that slow fails it. */
export const watchProbeTimeoutS = (intervalS: number) => Math.max(0.5, Math.min(5, intervalS * 2));

/**
 * Pure: how long Caddy holds a request while no slot of the app is healthy (`try_duration`), in
 * seconds. 5 s without a watch. With one, long enough for a failing version's rollback: when its
 * health path fails, Caddy's own checks take it out at once, and the watch needs up to `failures`
 * checks (each up to its timeout, the interval between) before the previous version boots (up to
 * ~10 s under load, BENCHMARKS.md): held requests are then answered by it instead of Caddy's 503.
 * At most 60 s.
 */
export function tryDurationS(rollout: { watchS?: number | undefined; intervalS: number; failures: number }): number {
  if (rollout.watchS === undefined) return 5;
  return Math.min(60, Math.ceil(rollout.failures * (rollout.intervalS + watchProbeTimeoutS(rollout.intervalS)) + 15));
}

/** $1: curl's --max-time; `curlArgs` the rest (positional parameters). The status is the last 3 characters curl prints. */
const probeScript = (curlArgs: string) =>
  `r=$(curl -sS -k -o /dev/null -w '%{http_code}' --max-time "$1" ${curlArgs} 2>&1); printf '%s %s\\n' "\${r#"\${r%???}"}" "$(printf '%s' "\${r%???}" | tr '\\n' ' ')"`;

/** Pure: a probe's output as a status (0: no answer) and curl's error, if any. */
export function parseProbe(stdout: string): { status: number; error?: string } {
  const line = stdout.trim();
  const [code, ...rest] = line.split(' ');
  const status = /^\d{3}$/.test(code ?? '') ? Number(code) : 0;
  const error = rest.join(' ').trim();
  return { status, ...(error ? { error } : status === 0 ? { error: line || 'no answer' } : {}) };
}

/** Writes `APP/failed/<version>.json` (stdin), whole or not at all. */
export function markFailedCommand(layout: AppLayout, version: string, json: string): Command {
  return command(['sh', '-c', '[ -d "$1" ] || exit 0; umask 022; mkdir -p "$2" && cat > "$2/.$3.new" && mv -f "$2/.$3.new" "$2/$3.json"', 'sh', layout.root, failedDir(layout), checkVersion(version)], {
    stdin: `${json}\n`,
    label: `mark ${version} failed`,
  });
}

/** Every failed-version mark of the app, one JSON document per line (nothing when there is none). */
export function readFailedCommand(layout: AppLayout): Command {
  return command(['sh', '-c', 'for f in "$1"/*.json; do [ -f "$f" ] && { tr -d "\\n" < "$f"; echo; }; done; exit 0', 'sh', failedDir(layout)], { label: 'read failed versions' });
}

/** Removes a version's failed mark (a forced deploy of it that passed its watch). */
export function clearFailedCommand(layout: AppLayout, version: string): Command {
  return command(['rm', '-f', '--', `${failedDir(layout)}/${checkVersion(version)}.json`], { label: `clear failed mark of ${version}` });
}

/** Writes `APP/last-deploy.json` (stdin), replaced atomically; nothing before setup made APP. */
export function writeAttemptCommand(layout: AppLayout, json: string): Command {
  return command(['sh', '-c', '[ -d "$1" ] || exit 0; umask 022; cat > "$2.new" && mv -f "$2.new" "$2"', 'sh', layout.root, attemptFile(layout)], { stdin: `${json}\n`, label: 'record deploy attempt' });
}

/** Prints `APP/last-deploy.json` (nothing when there is none). */
export function readAttemptCommand(layout: AppLayout): Command {
  return command(['sh', '-c', '[ -f "$1" ] && cat -- "$1"; exit 0', 'sh', attemptFile(layout)], { label: 'read deploy attempt' });
}
