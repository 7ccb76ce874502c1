import { command, XamalError, type Command } from '../../core/index.ts';
import { releaseDir, SLOTS, type AppLayout, type Slot, type SlotLayout } from './layout.ts';
import { unitInstance } from './systemd.ts';

/**
 * Commands a deploy runs against a role's two slots (data only; `flows/deploy.ts` runs them):
 * which slot is live, pointing the idle slot at a release, the on-host health check, checking the
 * app through Caddy, and moving `current`. Fixed scripts; values arrive as positional parameters.
 */

/** One round trip: each slot's unit state and release, and the `current` release. */
const SLOT_STATE_SCRIPT = `for s in blue green; do
  u="$1@$s.service"
  printf '%s %s %s\\n' "$s" "$(systemctl is-active "$u" 2>/dev/null || true)" "$(readlink "$2/$3-$s/release" 2>/dev/null || echo -)"
done
printf 'current %s\\n' "$(readlink "$4" 2>/dev/null || echo -)"
printf 'live %s\\n' "$(cat "$2/$3.live" 2>/dev/null || echo -)"`;

export function slotStateCommand(layout: AppLayout, role: string): Command {
  return command(['sh', '-c', SLOT_STATE_SCRIPT, 'sh', `xamal-${layout.app}-${role}`, layout.slots, role, layout.current], { label: `slot state of ${role}` });
}

export interface SlotState {
  slots: Record<Slot, { active: boolean; release: string | undefined }>;
  current: string | undefined;
  /** The slot the last successful deploy made live (`<slots>/<role>.live`). */
  live: Slot | undefined;
}

/** Pure: parses `slotStateCommand`'s output. */
export function parseSlotState(stdout: string): SlotState {
  const slots = { blue: { active: false, release: undefined }, green: { active: false, release: undefined } } as SlotState['slots'];
  let current: string | undefined;
  let live: Slot | undefined;
  for (const line of stdout.split('\n')) {
    const [k, a, b] = line.trim().split(/\s+/);
    if ((k === 'blue' || k === 'green') && a !== undefined) slots[k] = { active: a === 'active' || a === 'activating' || a === 'reloading', release: b && b !== '-' ? b : undefined };
    if (k === 'current' && a && a !== '-') current = a;
    if (k === 'live' && (a === 'blue' || a === 'green')) live = a;
  }
  return { slots, current, live };
}

/**
 * Pure: the slot a deploy boots into — never the live one. The one running slot is live whatever
 * the marker says (a deploy cut off after stopping the old slot leaves the marker behind: booting
 * "into" the only running slot would take the app down); the marker decides when both or neither run.
 */
export function idleSlot(state: SlotState): Slot {
  const running = SLOTS.filter((s) => state.slots[s].active);
  const live = running.length === 1 ? running[0] : (state.live ?? running[0]);
  return live === 'blue' ? 'green' : 'blue';
}

/** The release a slot points at: its `release` symlink, replaced atomically. */
export function linkReleaseCommand(layout: AppLayout, slot: SlotLayout, version: string): Command {
  return command(['sh', '-c', 'mkdir -p "$1" "$3" && ln -sfn "$2" "$1/release.new" && mv -T "$1/release.new" "$1/release"', 'sh', slot.dir, releaseDir(layout, version), slot.tmp], {
    label: `point ${slot.role}-${slot.slot} at ${version}`,
  });
}

/** `current` → the release, and the live-slot marker: moved only after a successful switch. */
export function markLiveCommand(layout: AppLayout, role: string, slot: Slot, version: string, moveCurrent: boolean): Command {
  const script = moveCurrent
    ? 'printf "%s\\n" "$3" > "$1.new" && mv -f "$1.new" "$1" && ln -sfn "$4" "$2.new" && mv -T "$2.new" "$2"'
    : 'printf "%s\\n" "$3" > "$1.new" && mv -f "$1.new" "$1"';
  return command(['sh', '-c', script, 'sh', `${layout.slots}/${role}.live`, layout.current, slot, releaseDir(layout, version)], { label: `mark ${role}-${slot} live` });
}

/** Root step: (re)start a slot's unit. */
export function startSlotCommand(app: string, role: string, slot: Slot): Command {
  return command(['systemctl', 'restart', '--', unitInstance(app, role, slot)], { label: `start ${role}-${slot}`, timeoutMs: 120_000 });
}

/** Root step: stop a slot gracefully (SIGTERM; the app drains; systemd waits TimeoutStopSec). */
export function stopSlotCommand(app: string, role: string, slot: Slot, drainTimeoutS: number): Command {
  return command(['systemctl', 'stop', '--', unitInstance(app, role, slot)], { label: `stop ${role}-${slot}`, timeoutMs: (drainTimeoutS + 30) * 1000 });
}

// $1 url, $2 interval s, $3 timeout s, $4 unit. Prints the last status; exits 0 on a 2xx.
const HEALTH_SCRIPT = `deadline=$(( $(date +%s) + $3 ))
code=000
while [ "$(date +%s)" -lt "$deadline" ]; do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true)
  case "$code" in 2??) echo "$code"; exit 0;; esac
  if [ -n "$4" ] && ! systemctl is-active --quiet "$4" && [ "$(systemctl show -p ActiveState --value "$4")" = failed ]; then echo "unit failed"; exit 1; fi
  sleep "$2"
done
echo "$code"
exit 1`;

/** On the host: poll the slot's health path until a 2xx, or fail after `timeoutS`. */
export function healthCheckCommand(port: number, path: string, intervalS: number, timeoutS: number, unit: string): Command {
  return command(['sh', '-c', HEALTH_SCRIPT, 'sh', `http://127.0.0.1:${port}${path}`, String(intervalS), String(timeoutS), unit], {
    label: `health check :${port}${path}`,
    timeoutMs: (timeoutS + 15) * 1000,
  });
}

/**
 * On the host, through Caddy (its own listener, the site's name as SNI/Host): does the app answer?
 * Polls briefly: Caddy's health checks see a new slot within one interval.
 */
export function throughCaddyCommand(site: { hosts: string[]; https: boolean }, path: string, timeoutS: number): Command {
  const name = site.hosts[0];
  if (!name) throw new XamalError('validation', 'caddy.hosts: expected at least one host name to check the app through Caddy');
  const port = site.https ? 443 : 80;
  const url = `${site.https ? 'https' : 'http'}://${name}${path}`;
  // The last attempt's status and curl's own error (stderr, e.g. "curl: (35) …") are printed on
  // failure: a 000 alone does not tell a refused connection from a failed TLS handshake.
  const script = `deadline=$(( $(date +%s) + $3 )); code=000; err=
while [ "$(date +%s)" -lt "$deadline" ]; do
  r=$(curl -sS -k -o /dev/null -w '%{http_code}' --max-time 3 --resolve "$1:$2:127.0.0.1" "$4" 2>&1)
  code=\${r#"\${r%???}"}; err=$(printf '%s' "\${r%???}" | tr '\\n' ' ')
  case "$code" in 2??) echo "$code"; exit 0;; esac
  sleep 0.2
done
echo "$code \${err}"; exit 1`;
  return command(['sh', '-c', script, 'sh', name, String(port), String(timeoutS), url], { label: `check ${url} through Caddy`, timeoutMs: (timeoutS + 15) * 1000 });
}

/** The unit's last log lines, for a failure message. */
export function unitLogCommand(app: string, role: string, slot: Slot, lines = 20): Command {
  return command(['journalctl', '-u', unitInstance(app, role, slot), '-n', String(lines), '--no-pager', '-o', 'cat'], { label: `logs of ${role}-${slot}` });
}

/**
 * Root step: `release_command` (and `app exec`) as the app's user, never root: the release dir, the
 * slot's env (readable by the app's group), a shell. `runuser` drops to the user before anything of
 * the app runs.
 */
export function releaseCommandCommand(layout: AppLayout, slot: SlotLayout, version: string, userCommand: string, timeoutS: number): Command {
  const script = 'set -a && . "$1" && set +a && cd "$2" && exec /bin/sh -c "$3"';
  return command(['runuser', '-u', layout.user, '--', 'sh', '-c', script, 'sh', slot.envFile, releaseDir(layout, version), userCommand], {
    label: 'release_command',
    timeoutMs: timeoutS * 1000,
  });
}

/** Releases on the host, newest first (by mtime), for prune and rollback. */
export function listReleasesCommand(layout: AppLayout): Command {
  return command(['sh', '-c', 'cd "$1" 2>/dev/null && for d in $(ls -1t); do [ -f "$d/.xamal-complete" ] && echo "$d"; done; exit 0', 'sh', layout.releases], { label: 'list releases' });
}

export function removeReleasesCommand(layout: AppLayout, versions: readonly string[]): Command {
  return command(['rm', '-rf', '--', ...versions.map((v) => releaseDir(layout, v))], { label: `remove releases ${versions.join(' ')}` });
}
