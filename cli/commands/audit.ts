import { readAudit } from '../../deployer/flows/audit.ts';
import { parseFlags, usageError } from '../args.ts';
import type { CliCommand } from '../io.ts';
import { openRemote, REMOTE_FLAGS, REMOTE_FLAGS_USAGE, reportOutcomes } from '../remote.ts';

const USAGE = `xamal audit [-n LINES] ${REMOTE_FLAGS_USAGE}`;

/** `xamal audit`: the last lines of each host's audit log (who did what, when, with which result). */
const command: CliCommand = {
  async run(args, io) {
    const { positionals, values } = parseFlags(args, { ...REMOTE_FLAGS, lines: { type: 'string', short: 'n' } }, USAGE);
    if (positionals.length) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`, USAGE);
    const lines = values.lines === undefined ? 50 : Number(values.lines);
    if (!Number.isInteger(lines) || lines < 1) throw usageError(`-n expects a number of lines, got ${JSON.stringify(values.lines)}`, USAGE);
    const remote = await openRemote(values, { command: 'audit', secrets: true });
    try {
      return reportOutcomes(io, remote, await readAudit(remote.ctx, lines), {
        json: values.json,
        toJson: (entries) => ({ entries }),
        render: (entries) =>
          entries.length
            ? entries.map((e) => ('text' in e ? e.text : `${e.time} ${e.performer}: ${e.command}${e.version ? ` (${e.version})` : ''} → ${e.result}`))
            : ['no audit entries'],
      });
    } finally {
      await remote.close();
    }
  },
};
export default command;
