import { command, type Command } from '../../core/index.ts';
import type { AppLayout } from './layout.ts';

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
