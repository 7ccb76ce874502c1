import { appDetails, appExec, appLogs, appMaintenance, appReleases, appStopStart } from '../../deployer/flows/app.ts';
import { withLock } from '../../deployer/flows/lock.ts';
import { forVerb } from './deploy.ts';
import { removeCommand } from './remove.ts';
import { actionError, noExtraArgs, parseFlags, usageError } from '../args.ts';
import type { CliCommand } from '../io.ts';
import { REMOTE_FLAGS, REMOTE_FLAGS_USAGE, reportOutcomes, withRemote } from '../remote.ts';

const FLAGS = { ...REMOTE_FLAGS, lines: { type: 'string', short: 'n' } } as const;
const USAGE = `xamal app boot [--version V]|details|versions|releases|logs [-n N]|stop|start|exec CMD|maintenance|live|remove [-y] ${REMOTE_FLAGS_USAGE}`;

/** `xamal app …`: the running app on each host. Mutating actions take the deploy lock. */
const command: CliCommand = {
  async run(args, io) {
    // boot = the current (or --version) release, already on the hosts, booted again the deploy's way.
    if (args[0] === 'boot') return forVerb('boot').run(args.slice(1), io);
    if (args[0] === 'remove') return removeCommand('app').run(args.slice(1), io);
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
