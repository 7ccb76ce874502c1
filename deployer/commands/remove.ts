import { command, type Command } from '../../core/index.ts';
import { SLOTS, type AppLayout, type Slot } from './layout.ts';
import { UNIT_DIR } from './systemd.ts';

/**
 * Commands that take an app off a host (data only; `flows/remove.ts` runs them): one round trip
 * reading what of the app is there (its slot units, unit files, paths, its system user), then the
 * removal steps. Fixed scripts; names and paths arrive as positional parameters.
 */

/** The comment `createAppUserCommand` gives the user: how a user xamal made for this app is known. */
export const appUserComment = (app: string) => `xamal app ${app}`;

// $1 app, $2 unit dir, $3 discover (1: also the unit files whose header names this app), then
// roles up to `--`, then paths. Prints `unit ROLE SLOT ACTIVE ENABLED`, `unitfile ROLE`,
// `path P`, `user GECOS`, and `@@end` last: a reply without it was not read from a host.
const APP_STATE_SCRIPT = `app=$1; dir=$2; discover=$3; user=$4; shift 4
roles=
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do roles="$roles $1"; shift; done
[ "$#" -gt 0 ] && shift
if [ "$discover" = 1 ]; then
  for f in "$dir/xamal-$app-"*@.service; do
    [ -f "$f" ] && head -n 1 "$f" | grep -qF "# Managed by xamal ($app, role " || continue
    r=\${f#"$dir/xamal-$app-"}; r=\${r%@.service}
    case " $roles " in *" $r "*) ;; *) roles="$roles $r";; esac
  done
fi
for r in $roles; do
  for s in blue green; do
    u="xamal-$app-$r@$s.service"
    printf 'unit %s %s %s %s\\n' "$r" "$s" "$(systemctl is-active "$u" 2>/dev/null)" "$(systemctl is-enabled "$u" 2>/dev/null)"
  done
  [ -f "$dir/xamal-$app-$r@.service" ] && printf 'unitfile %s\\n' "$r"
done
for p in "$@"; do if [ -e "$p" ] || [ -L "$p" ]; then printf 'path %s\\n' "$p"; fi; done
if [ -n "$user" ] && line=$(getent passwd "$user"); then printf 'user %s\\n' "$(printf '%s' "$line" | cut -d: -f5)"; fi
echo @@end`;

/**
 * What of the app is on the host: each role's slot units (active and enabled state) and unit file,
 * which of `paths` exist, and (when `user` is given) the app user's comment. With `discover`, also
 * the roles of unit files whose xamal header names this app (roles since dropped from deploy.yml).
 */
export function appPresenceCommand(layout: AppLayout, o: { roles: readonly string[]; paths: readonly string[]; discover: boolean; user: boolean }): Command {
  return command(['sh', '-c', APP_STATE_SCRIPT, 'sh', layout.app, UNIT_DIR, o.discover ? '1' : '0', o.user ? layout.user : '', ...o.roles, '--', ...o.paths], {
    label: `what of ${layout.app} is on the host`,
  });
}

export interface SlotUnitState {
  role: string;
  slot: Slot;
  /** `active`, `inactive`, `failed`, … as `systemctl is-active` says. */
  active: string;
  /** `enabled`, `disabled`, … ('' when systemd knows no such unit file). */
  enabled: string;
}

export interface AppPresence {
  /** False when the reply lacks its end marker (a dry run's empty answer): nothing is known. */
  known: boolean;
  units: SlotUnitState[];
  /** Roles whose unit file is on the host. */
  unitFiles: string[];
  paths: Set<string>;
  /** The app user's comment (GECOS), when the user exists and was asked about. */
  userComment: string | undefined;
}

/** Pure: parses `appPresenceCommand`'s output. */
export function parseAppPresence(stdout: string): AppPresence {
  const out: AppPresence = { known: false, units: [], unitFiles: [], paths: new Set(), userComment: undefined };
  for (const line of stdout.split('\n')) {
    const [kind = '', ...rest] = line.replace(/\r$/, '').split(' ');
    if (kind === '@@end') out.known = true;
    else if (kind === 'unit' && rest.length >= 2 && SLOTS.includes(rest[1] as Slot)) out.units.push({ role: rest[0]!, slot: rest[1] as Slot, active: rest[2] ?? '', enabled: rest[3] ?? '' });
    else if (kind === 'unitfile' && rest[0]) out.unitFiles.push(rest[0]);
    else if (kind === 'path' && rest.length) out.paths.add(rest.join(' '));
    else if (kind === 'user') out.userComment = rest.join(' ');
  }
  return out;
}

/** Root step: stops slot units gracefully (the app drains within its TimeoutStopSec). */
export function stopUnitsCommand(units: readonly string[], drainTimeoutS: number): Command {
  return command(['systemctl', 'stop', '--', ...units], { label: `stop ${units.join(' ')}`, timeoutMs: (drainTimeoutS + 30) * 1000 });
}

/** Root step: `systemctl reset-failed`: a failed unit is otherwise still listed after its file is gone. */
export function resetFailedCommand(units: readonly string[]): Command {
  return command(['systemctl', 'reset-failed', '--', ...units], { label: `reset-failed ${units.join(' ')}` });
}

/** Root step: removes files and directories (paths come from the layout, never from input). */
export function removePathsCommand(paths: readonly string[], label?: string): Command {
  return command(['rm', '-rf', '--', ...paths], { label: label ?? `remove ${paths.join(' ')}` });
}

/** Exit code of `removeAppUserCommand` when the user is kept (the reason on stdout). */
export const USER_KEPT_EXIT = 3;

// $1 user, $2 unit dir. A unit file still naming the user, or a process still running as it
// (userdel's exit 8), keeps it; else the user goes, and its group when nothing else uses that.
const REMOVE_USER_SCRIPT = `u=$1
f=$(grep -rlxF -- "User=$u" "$2" 2>/dev/null | head -n 1)
[ -z "$f" ] || { echo "$f runs as $u"; exit 3; }
out=$(userdel -- "$u" 2>&1); rc=$?
[ "$rc" -eq 8 ] && { echo "$out"; exit 3; }
[ "$rc" -eq 0 ] || { echo "$out" >&2; exit 1; }
if getent group "$u" >/dev/null; then groupdel -- "$u" 2>/dev/null; fi
exit 0`;

/** Root step: removes the app's system user (and its group) unless something still uses it (exit 3, why on stdout). */
export function removeAppUserCommand(layout: AppLayout): Command {
  return command(['sh', '-c', REMOVE_USER_SCRIPT, 'sh', layout.user, UNIT_DIR], { label: `remove user ${layout.user}` });
}
