import { command, type Command } from '../../core/index.ts';

/**
 * `xamal server exec`: the user's command line, as they typed it, run by the remote shell (like
 * `ssh host 'cmd'`). It is the user's own shell text, passed as one argument of `sh -c`.
 */
export function userShellCommand(line: string, cwd?: string): Command {
  return command(['sh', '-c', line], { ...(cwd ? { cwd } : {}), label: line });
}
