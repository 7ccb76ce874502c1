import { grepPattern, journalSince } from '../../deployer/commands/logs.ts';
import { refuseDuringCanary } from '../../deployer/flows/canary.ts';
import { appDetails, type RoleDetails, appExec, appExecInteractive, appLogs, appMaintenance, appReleases, appStopStart, followAppLogs } from '../../deployer/flows/app.ts';
import { withLock } from '../../deployer/flows/lock.ts';
import { appDetailsWithRollout, rolloutStateLines } from '../../deployer/flows/rollout.ts';
import { exitCodeForOutcomes } from '../../deployer/flows/parallel.ts';
import { DEPLOY_VERB_FLAGS, forVerb } from './deploy.ts';
import { removeCommand } from './remove.ts';
import { actionError, noExtraArgs, parseFlags, usageError } from '../args.ts';
import type { FlagTable } from '../help.ts';
import type { CliCommand, Io } from '../io.ts';
import { printDryRun, REMOTE_FLAGS, REMOTE_FLAGS_USAGE, reportOutcomes, withRemote, type Remote, type RemoteFlags } from '../remote.ts';

const LOGS_FLAGS = {
  lines: { type: 'string', short: 'n', valueName: 'N', description: "logs: the last N lines of each host's log", defaultText: '100; 10 with -f; all with --since or --grep' },
  follow: { type: 'boolean', short: 'f', description: 'logs: keep printing new lines as they come (prefixed by host when several) until Ctrl-C' },
  since: { type: 'string', valueName: 'TIME', description: 'logs: only lines since then: 30s, 5m, 1h, 2d, or a date and time (this machine\'s time zone)' },
  grep: { type: 'string', short: 'g', valueName: 'PATTERN', description: 'logs: only lines matching PATTERN (grep on the host)' },
} as const satisfies FlagTable;

export const APP_FLAGS = {
  ...REMOTE_FLAGS,
  ...LOGS_FLAGS,
  interactive: { type: 'boolean', short: 'i', description: 'exec: run the command on one host (the primary, or the one --hosts names) attached to this terminal over an SSH pty; xamal exits with its status' },
} as const satisfies FlagTable;
const FLAGS = APP_FLAGS;
/** One role of `app details`: its live slot and version, the running slots, and a running canary. */
export function roleLine(r: RoleDetails): string {
  return `${r.role}: live ${r.live ?? 'none'} (${r.version ?? 'never deployed'}), running: ${r.running.join(', ') || 'none'}${r.canary ? `; canary ${r.canary.version} in ${r.canary.slot} (${r.canary.percent}% of new sessions)` : ''}`;
}

const USAGE = `xamal app boot [--version V] [-H]|details|versions|releases|logs [-n N] [-f] [--since 5m|TIME] [-g PATTERN]|stop|start|exec [-i|--interactive] CMD|maintenance|live|remove [-y] ${REMOTE_FLAGS_USAGE}`;

/**
 * `app exec -i CMD`: CMD on one host (the primary, or the one --hosts names) attached to this
 * terminal, as the app's user in the live release's env; xamal exits with its exit status.
 */
async function execInteractive(values: RemoteFlags & { json?: boolean | undefined }, line: string, io: Io): Promise<number> {
  if (values.json) throw usageError('--interactive: cannot be combined with --json', USAGE);
  const terminal = io.terminal?.();
  if (!terminal) throw usageError('--interactive: needs a terminal or piped stdin and stdout', USAGE);
  return withRemote(values, { command: 'app exec -i', secrets: false, say: (l) => io.err(l) }, async (remote) => {
    const { code } = await appExecInteractive(remote.ctx, line, terminal, values.hosts !== undefined);
    printDryRun(io, remote);
    return code;
  });
}

interface LogsFlags {
  lines?: string | undefined;
  follow?: boolean | undefined;
  since?: string | undefined;
  grep?: string | undefined;
  json?: boolean | undefined;
}

/** The journal query of `app logs` flags: -n (default 100, or 10 following; none with --since or --grep, as Kamal), --since, -g. */
function logsQuery(values: LogsFlags) {
  const n = values.lines === undefined ? undefined : /^\d+$/.test(values.lines) ? Number(values.lines) : NaN;
  if (n !== undefined && !(Number.isSafeInteger(n) && n >= 1)) throw usageError(`--lines: expected a positive integer, got ${JSON.stringify(values.lines)}`, USAGE);
  const lines = n ?? (values.since !== undefined || values.grep !== undefined ? undefined : values.follow ? 10 : 100);
  if (values.follow && values.json) throw usageError('--follow: --json is not supported (lines are printed as they come)', USAGE);
  return { lines, ...(values.since !== undefined ? { since: journalSince(values.since) } : {}), ...(values.grep !== undefined ? { grep: grepPattern(values.grep) } : {}) };
}

/** `app logs`: each host's lines; with -f, new lines as they come (prefixed by host when several) until Ctrl-C. */
async function logs(io: Io, remote: Remote, values: LogsFlags, q: ReturnType<typeof logsQuery>): Promise<number> {
  const { ctx } = remote;
  if (!values.follow) return reportOutcomes(io, remote, await appLogs(ctx, q), { json: values.json, toJson: (logs) => ({ logs }), render: (t) => t.trimEnd().split('\n') });
  const stop = new AbortController();
  void io.interrupted().then(() => stop.abort());
  const several = ctx.targets.hosts.length > 1;
  const outcomes = await followAppLogs(ctx, q, (host, line) => io.out(several ? `${host}: ${line}` : line), stop.signal);
  printDryRun(io, remote);
  for (const o of outcomes) if (!o.ok) io.err(`${o.host}: FAILED: ${ctx.secrets.redact(o.error.message)}`);
  return exitCodeForOutcomes(outcomes);
}

/** `xamal app …`: the running app on each host. Mutating actions take the deploy lock. */
const command: CliCommand = {
  help: {
    usage: USAGE,
    description: [
      'Actions:',
      '  boot: boot the live release (or --version) again in the idle slot, as a deploy does',
      '  details: each role\'s live slot, version and running units, the versions a watched rollout marked failed, and the last deploy; versions: the version only',
      '  releases: the releases each host keeps; logs: the last lines of the app\'s journal',
      '  stop, start: the app\'s units; exec CMD: CMD in the live release\'s environment (-i: on one host, interactive)',
      '  maintenance: Caddy answers 503 with the maintenance page; live: traffic to the app again',
      '  remove [-y]: take the app off its hosts: Caddy route, slot units, releases, slots (asks first)',
      'stop, start, maintenance and live take the deploy lock.',
    ].join('\n'),
    flags: { ...FLAGS, version: { ...DEPLOY_VERB_FLAGS.version!, description: 'boot: the release to boot', defaultText: 'the live version' } },
    examples: [
      ['xamal app details', 'Which slot is live, with which version, on each host'],
      ['xamal app logs -n 50 -r web', 'The last 50 lines of the log on each host of the web role'],
      ['xamal app exec \'bin/shop eval "Shop.Release.migrate()"\'', "A command in the live release's environment on every host"],
      ['xamal app exec -i "bin/hello remote"', 'A remote IEx shell on the primary host (what xamal console runs)'],
      ['xamal app maintenance', 'Serve the maintenance page (503) until xamal app live'],
    ],
  },
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
    if (values.interactive && action !== 'exec') throw usageError('--interactive: only with exec', USAGE);
    if (values.interactive) return execInteractive(values, rest.join(' '), io);
    // Flags checked before any host is contacted.
    const query = action === 'logs' ? logsQuery(values) : undefined;
    return withRemote(values, { command: `app ${action}`, secrets: true, say: (l) => io.err(l) }, async (remote) => {
      const { ctx } = remote;
      const json = values.json;
      switch (action) {
        case 'details':
          return reportOutcomes(io, remote, await appDetailsWithRollout(ctx), {
            json,
            render: (d) => [...d.roles.map(roleLine), ...rolloutStateLines(d)],
          });
        case 'versions':
          return reportOutcomes(io, remote, await appDetails(ctx), {
            json,
            toJson: (roles) => ({ roles }),
            render: (roles) => roles.map((r) => `${r.role}: ${r.version ?? 'none'}`),
          });
        case 'releases':
          return reportOutcomes(io, remote, await appReleases(ctx), { json, toJson: (releases) => ({ releases }), render: (v) => (v.length ? v : ['none']) });
        case 'logs':
          return logs(io, remote, values, query!);
        case 'exec':
          return reportOutcomes(io, remote, await appExec(ctx, rest.join(' ')), { json, toJson: (output) => ({ output }), render: (t) => t.trimEnd().split('\n') });
        case 'stop':
        case 'start':
          return reportOutcomes(io, remote, await withLock(ctx, { message: `app ${action}` }, () => appStopStart(ctx, action)), { json, toJson: (slots) => ({ slots }), render: (s) => [`${action === 'stop' ? 'stopped' : 'started'} ${s.join(', ')}`] });
        case 'maintenance':
        case 'live':
          // Either replaces the app's route: during a canary that would drop its split (promote or abort it first).
          return reportOutcomes(io, remote, await withLock(ctx, { message: `app ${action}` }, async () => (await refuseDuringCanary(ctx), appMaintenance(ctx, action === 'maintenance'))), {
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
