import type { Command } from '../core/index.ts';
import { BUILD_USER } from '../images/recipes/debian.ts';

/**
 * The worker runs as root (it drives the engine); what it does with a build's untrusted files —
 * unpacking a source archive, packing the release — it does as the images' build user instead.
 */
export { BUILD_USER };

/** Pure: `command` run as the build user (uid/gid, no supplementary groups) instead of the worker's root. */
export function asBuildUser(command: Command): Command {
  return { ...command, argv: ['setpriv', `--reuid=${BUILD_USER.uid}`, `--regid=${BUILD_USER.gid}`, '--clear-groups', '--', ...command.argv] };
}
