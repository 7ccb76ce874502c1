import { appDetails, appExec, appLogs, appMaintenance, appReleases, appStopStart } from '../../deployer/flows/app.ts';
import { withLock } from '../../deployer/flows/lock.ts';
import { DEPLOY_VERB_FLAGS, forVerb } from './deploy.ts';
import { actionError, noExtraArgs, parseFlags, usageError } from '../args.ts';
import type { FlagTable } from '../help.ts';
import type { CliCommand } from '../io.ts';
import { REMOTE_FLAGS, REMOTE_FLAGS_USAGE, reportOutcomes, withRemote } from '../remote.ts';

const FLAGS = { ...REMOTE_FLAGS, lines: { type: 'string', short: 'n', valueName: 'N', description: 'logs: the last N lines of each host\'s log', defaultText: '100' } } as const satisfies FlagTable;
const USAGE = `xamal app boot [--version V] [-H]|details|versions|releases|logs [-n N]|stop|start|exec CMD|maintenance|live ${REMOTE_FLAGS_USAGE}`;

/** `xamal app …`: the running app on each host. Mutating actions take the deploy lock. */
const command: CliCommand = {
  help: {
    usage: USAGE,
    description: [
      'Actions:',
      '  boot: boot the live release (or --version) again in the idle slot, as a deploy does',
      '  details: each role\'s live slot, version and running units; versions: the version only',
      '  releases: the releases each host keeps; logs: the last lines of the app\'s journal',
      '  stop, start: the app\'s units; exec CMD: CMD in the live release\'s environment',
      '  maintenance: Caddy answers 503 with the maintenance page; live: traffic to the app again',
      'stop, start, maintenance and live take the deploy lock.',
    ].join('\n'),
    flags: { ...FLAGS, version: { ...DEPLOY_VERB_FLAGS.version!, description: 'boot: the release to boot', defaultText: 'the live version' } },
    examples: [
      ['xamal app details', 'Which slot is live, with which version, on each host'],
      ['xamal app logs -n 50 -r web', 'The last 50 lines of the log on each host of the web role'],
      ['xamal app exec \'bin/shop eval "Shop.Release.migrate()"\'', "A command in the live release's environment on every host"],
      ['xamal app maintenance', 'Serve the maintenance page (503) until xamal app live'],
    ],
  },
  async run(args, io) {
    // boot = the current (or --version) release, already on the hosts, booted again the deploy's way.
    if (args[0] === 'boot') return forVerb('boot').run(args.slice(1), io);
    const { positionals, values } = parseFlags(args, FLAGS, USAGE);
    const [action, ...rest] = positionals;
    const needsArg = action === 'exec';
    if (!action) throw actionError(action, USAGE);
    if (needsArg && rest.length === 0) throw usageError('exec: expected a command', USAGE);
    if (!needsArg) noExtraArgs(rest, USAGE);
    return withRemote(values, { command: `app ${action}`, secrets: true, say: (l) => io.err(l) }, async (remote) => {
      const { ctx } = remote;
      const json = values.json;
      switch (action) {
        case 'details':
        case 'versions':
          return reportOutcomes(io, remote, await appDetails(ctx), {
            json,
            toJson: (roles) => ({ roles }),
            render: (roles) => roles.map((r) => (action === 'versions' ? `${r.role}: ${r.version ?? 'none'}` : `${r.role}: live ${r.live ?? 'none'} (${r.version ?? 'never deployed'}), running: ${r.running.join(', ') || 'none'}`)),
          });
        case 'releases':
          return reportOutcomes(io, remote, await appReleases(ctx), { json, toJson: (releases) => ({ releases }), render: (v) => (v.length ? v : ['none']) });
        case 'logs': {
          const n = Number(values.lines ?? 100);
          if (!Number.isInteger(n) || n < 1) throw usageError('--lines: expected a positive integer', USAGE);
          return reportOutcomes(io, remote, await appLogs(ctx, n), { json, toJson: (logs) => ({ logs }), render: (t) => t.trimEnd().split('\n') });
        }
        case 'exec':
          return reportOutcomes(io, remote, await appExec(ctx, rest.join(' ')), { json, toJson: (output) => ({ output }), render: (t) => t.trimEnd().split('\n') });
        case 'stop':
        case 'start':
          return reportOutcomes(io, remote, await withLock(ctx, { message: `app ${action}` }, () => appStopStart(ctx, action)), { json, toJson: (slots) => ({ slots }), render: (s) => [`${action === 'stop' ? 'stopped' : 'started'} ${s.join(', ')}`] });
        case 'maintenance':
        case 'live':
          return reportOutcomes(io, remote, await withLock(ctx, { message: `app ${action}` }, () => appMaintenance(ctx, action === 'maintenance')), {
            json,
            toJson: (maintenance) => ({ maintenance }),
            render: (on) => [on ? 'maintenance page on (503)' : 'live'],
          });
        default:
          throw actionError(action, USAGE);
      }
    });
  },
};
export default command;
