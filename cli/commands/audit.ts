import { readAudit } from '../../deployer/flows/audit.ts';
import { flagCommand, noExtraArgs, usageError } from '../args.ts';
import { REMOTE_FLAGS, REMOTE_FLAGS_USAGE, reportOutcomes, withRemote } from '../remote.ts';

const USAGE = `xamal audit [-n LINES] ${REMOTE_FLAGS_USAGE}`;

const FLAGS = { ...REMOTE_FLAGS, lines: { type: 'string', short: 'n', valueName: 'LINES', description: "The last LINES entries of each host's audit log", defaultText: '50' } } as const;

/** `xamal audit`: the last lines of each host's audit log (who did what, when, with which result). */
export default flagCommand({
  usage: USAGE,
  flags: FLAGS,
  examples: [
    ['xamal audit', "The last 50 entries of each host's audit log"],
    ['xamal audit -n 10 --hosts web1 --json', 'The last 10 entries on web1, as JSON'],
  ],
}, async ({ positionals, values }, io) => {
  noExtraArgs(positionals, USAGE);
  const lines = values.lines === undefined ? 50 : Number(values.lines);
  if (!Number.isInteger(lines) || lines < 1) throw usageError(`-n expects a number of lines, got ${JSON.stringify(values.lines)}`, USAGE);
  return withRemote(values, { command: 'audit', secrets: true }, async (remote) =>
    reportOutcomes(io, remote, await readAudit(remote.ctx, lines), {
      json: values.json,
      toJson: (entries) => ({ entries }),
      render: (entries) =>
        entries.length
          ? entries.map((e) => ('text' in e ? e.text : `${e.time} ${e.performer}: ${e.command}${e.version ? ` (${e.version})` : ''} → ${e.result}`))
          : ['no audit entries'],
    }),
  );
});
