import { command, type Command } from '../../core/index.ts';
import { STATE_ROOT, type AppLayout } from './layout.ts';

/**
 * The system user each app runs as (`layout.user`, from `appUser`): created once by setup, with its
 * own group, no home, no login shell. Releases stay owned by the SSH user (root by default), so the
 * app can read its code but not change it.
 */

/** Exit 0 when the user exists (getent prints its passwd line), 2 when it does not. */
export function appUserExistsCommand(layout: AppLayout): Command {
  return command(['getent', 'passwd', layout.user], { label: `check user ${layout.user}` });
}

/** Root step: a system user and group of the same name; no home directory, no shell. */
export function createAppUserCommand(layout: AppLayout): Command {
  return command(
    ['useradd', '--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--comment', `xamal app ${layout.app}`, '--', layout.user],
    { label: `create user ${layout.user}` },
  );
}

// $1 dir, $2 user, $3 its parent (root's, 0755). The whole tree becomes the user's, as systemd's
// StateDirectory= does: data kept from an earlier install (owned by root since) is the app's again.
const STATE_DIR_SCRIPT = 'mkdir -p -m 0755 -- "$3" && mkdir -p -- "$1" && chown -R -- "$2:" "$1" && chmod 0700 -- "$1"';

/** Root step: the app's state directory (`/var/lib/xamal/<app>`), the app user's, mode 0700, contents included. */
export function stateDirCommand(layout: AppLayout): Command {
  return command(['sh', '-c', STATE_DIR_SCRIPT, 'sh', layout.state, layout.user, STATE_ROOT], { label: `create ${layout.state} owned by ${layout.user}` });
}

/** Root step: once the app's user is gone, its data stays, owned by root (a later user with the old uid must not get it). */
export function disownStateDirCommand(layout: AppLayout): Command {
  return command(['chown', '-R', '--', '0:0', layout.state], { label: `give ${layout.state} to root` });
}
