import { execOnHosts, HostCommandError } from '../../deployer/flows/exec.ts';
import { parseFlags, usageError } from '../args.ts';
import type { CliCommand } from '../io.ts';
import { REMOTE_FLAGS, REMOTE_FLAGS_USAGE, reportOutcomes, splitAtCommand, withRemote } from '../remote.ts';
import { setupCommand } from './setup.ts';

const EXEC_USAGE = `xamal server exec ${REMOTE_FLAGS_USAGE} [--] CMD…`;

/** `xamal server bootstrap`: the host-level part of setup (packages, Caddy). */
export const bootstrap: CliCommand = setupCommand('server bootstrap');

/** `xamal server exec CMD…`: the command on every selected host in parallel; non-zero exit if any host failed. */
export const exec: CliCommand = {
  help: {
    usage: EXEC_USAGE,
    description: 'CMD runs under sh on each host as the SSH user; the flags go before it (or end them with --). Exit code: 0 when every host succeeded.',
    flags: REMOTE_FLAGS,
    passThrough: true,
    examples: [
      ['xamal server exec uptime', "Each host's uptime"],
      ['xamal server exec -r web -- df -h /', 'Disk space on the hosts of the web role'],
    ],
  },
  async run(args, io) {
    const split = splitAtCommand(args, REMOTE_FLAGS);
    const { positionals, values } = parseFlags(split.flags, REMOTE_FLAGS, EXEC_USAGE);
    const words = [...positionals, ...split.rest];
    if (!words.length) throw usageError('expected a command to run', EXEC_USAGE);
    const line = words.join(' ');
    return withRemote(values, { command: 'server exec', secrets: true, say: (l) => io.err(l) }, async (remote) => {
      const outcomes = await execOnHosts(remote.ctx, line);
      if (!values.json && !remote.recording) {
        // Failed hosts' output is shown too: it is usually the reason.
        for (const o of outcomes) if (!o.ok && o.error instanceof HostCommandError && o.error.result.stdout.trim()) io.out(`${o.host} (stdout before failing):\n  ${o.error.result.stdout.trimEnd().split('\n').join('\n  ')}`);
      }
      return reportOutcomes(io, remote, outcomes, {
        json: values.json,
        render: (r) => `${r.stdout}${r.stderr}`.trimEnd().split('\n').filter((l, i, a) => a.length > 1 || l !== ''),
      });
    });
  },
};

export default exec;
