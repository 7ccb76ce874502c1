import { execOnHosts, HostCommandError } from '../../deployer/flows/exec.ts';
import { setup } from '../../deployer/flows/setup.ts';
import { parseFlags, usageError } from '../args.ts';
import type { CliCommand } from '../io.ts';
import { openRemote, REMOTE_FLAGS, REMOTE_FLAGS_USAGE, reportOutcomes, splitAtCommand } from '../remote.ts';
import { setupLines } from './setup.ts';

const BOOTSTRAP_USAGE = `xamal server bootstrap ${REMOTE_FLAGS_USAGE}`;
const EXEC_USAGE = `xamal server exec ${REMOTE_FLAGS_USAGE} [--] CMD…`;

/** `xamal server bootstrap`: the host-level part of setup (packages, Caddy). */
export const bootstrap: CliCommand = {
  async run(args, io) {
    const { positionals, values } = parseFlags(args, REMOTE_FLAGS, BOOTSTRAP_USAGE);
    if (positionals.length) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`, BOOTSTRAP_USAGE);
    const remote = await openRemote(values, { command: 'server bootstrap', secrets: false, say: (l) => io.err(l) });
    try {
      return reportOutcomes(io, remote, await setup(remote.ctx, { bootstrapOnly: true }), { json: values.json, render: setupLines });
    } finally {
      await remote.close();
    }
  },
};

/** `xamal server exec CMD…`: the command on every selected host in parallel; non-zero exit if any host failed. */
export const exec: CliCommand = {
  async run(args, io) {
    const split = splitAtCommand(args, REMOTE_FLAGS);
    const { positionals, values } = parseFlags(split.flags, REMOTE_FLAGS, EXEC_USAGE);
    const words = [...positionals, ...split.rest];
    if (!words.length) throw usageError('expected a command to run', EXEC_USAGE);
    const line = words.join(' ');
    const remote = await openRemote(values, { command: 'server exec', secrets: true, say: (l) => io.err(l) });
    try {
      const outcomes = await execOnHosts(remote.ctx, line);
      if (!values.json && !remote.recording) {
        // Failed hosts' output is shown too: it is usually the reason.
        for (const o of outcomes) if (!o.ok && o.error instanceof HostCommandError && o.error.result.stdout.trim()) io.out(`${o.host} (stdout before failing):\n  ${o.error.result.stdout.trimEnd().split('\n').join('\n  ')}`);
      }
      return reportOutcomes(io, remote, outcomes, {
        json: values.json,
        render: (r) => `${r.stdout}${r.stderr}`.trimEnd().split('\n').filter((l, i, a) => a.length > 1 || l !== ''),
      });
    } finally {
      await remote.close();
    }
  },
};

export default exec;
