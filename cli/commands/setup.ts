import { setup } from '../../deployer/flows/setup.ts';
import { parseFlags, usageError } from '../args.ts';
import type { CliCommand } from '../io.ts';
import { openRemote, REMOTE_FLAGS, REMOTE_FLAGS_USAGE, reportOutcomes } from '../remote.ts';
import type { HostSetup } from '../../deployer/flows/setup.ts';

const USAGE = `xamal setup ${REMOTE_FLAGS_USAGE}`;

/** Lines for one host: what changed, warnings, or that nothing did. */
export function setupLines(v: HostSetup): string[] {
  return [...(v.changes.length ? v.changes : ['nothing changed']), ...v.warnings.map((w) => `warning: ${w}`)];
}

/** `xamal setup`: bootstrap (packages, Caddy) and the app's directories, units, env files and Caddy route. Idempotent. */
const command: CliCommand = {
  async run(args, io) {
    const { positionals, values } = parseFlags(args, REMOTE_FLAGS, USAGE);
    if (positionals.length) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`, USAGE);
    const remote = await openRemote(values, { command: 'setup', secrets: true, say: (l) => io.err(l) });
    try {
      return reportOutcomes(io, remote, await setup(remote.ctx), { json: values.json, render: setupLines });
    } finally {
      await remote.close();
    }
  },
};
export default command;
