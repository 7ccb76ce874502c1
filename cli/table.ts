import type { CliCommand } from './io.ts';
import { ERROR_CODES } from '../core/index.ts';
import { twoColumns, wrapText } from './help.ts';

/**
 * The command table: each command's words, its synopsis and one-line summary for the list, and a
 * lazy loader (the list loads no command; `xamal COMMAND --help` loads that command's module, whose
 * `help` has its usage, flags and examples); or a built-in alias (`alias: true`, no loader), which
 * main expands (cli/aliases.ts) into the command it stands for.
 */
export type CommandEntry = {
  words: string[];
  /** The words and arguments, no flags (`rollback [VERSION]`): the list's left column. */
  synopsis: string;
  summary: string;
} & ({ load: () => Promise<CliCommand>; alias?: undefined } | { alias: true; load?: undefined });

export const COMMANDS: CommandEntry[] = [
  {
    words: ['deploy'],
    synopsis: 'deploy',
    summary: 'Deploy: each host pulls the artifact built for it from the farm, boots it on the idle slot, health-checks it; Caddy moves traffic with no reload; then prunes to retain_releases',
    load: async () => (await import('./commands/deploy.ts')).forVerb('deploy'),
  },
  {
    words: ['redeploy'],
    synopsis: 'redeploy',
    summary: 'Deploy again without setup (same as deploy: setup is never implied)',
    load: async () => (await import('./commands/deploy.ts')).forVerb('redeploy'),
  },
  {
    words: ['rollback'],
    synopsis: 'rollback [VERSION]',
    summary: 'Switch back to a retained release (default: the previous one) the same zero-downtime way',
    load: async () => (await import('./commands/deploy.ts')).forVerb('rollback'),
  },
  {
    words: ['prune'],
    synopsis: 'prune',
    summary: 'Remove old releases, keeping retain_releases and never the running or previous one',
    load: async () => (await import('./commands/deploy.ts')).forVerb('prune'),
  },
  {
    words: ['canary'],
    synopsis: 'canary ACTION',
    summary: 'The canary deploy --canary PERCENT started on the primary role: status (share, versions, per host), promote (the ordinary switch to it), abort (back to the live version alone)',
    load: async () => (await import('./commands/canary.ts')).default,
  },
  {
    words: ['app'],
    synopsis: 'app ACTION',
    summary: 'The running app: boot the current release again (blue/green, as a deploy), live slot and version per host, releases kept, logs, stop/start, a command in the live release env (-i: interactive, on one host), maintenance page, remove (units, Caddy route, releases, slots; asks first)',
    load: async () => (await import('./commands/app.ts')).default,
  },
  {
    words: ['console'],
    alias: true,
    synopsis: 'console',
    summary: "A remote IEx shell attached to the running node on the primary host: app exec -i \"bin/<release> remote\" (a console alias in deploy.yml replaces it)",
  },
  {
    words: ['remove'],
    synopsis: 'remove',
    summary: "Remove everything of this app from its hosts (asks first; -y skips): what app remove does, /opt/xamal/<app> (env files, lock, audit log) and the app's user; Caddy and packages stay",
    load: async () => (await import('./commands/remove.ts')).default,
  },
  {
    words: ['details'],
    synopsis: 'details',
    summary: "Show this app per host: each role's live slot, version and running slots, and its Caddy route and upstreams",
    load: async () => (await import('./commands/details.ts')).default,
  },
  {
    words: ['build'],
    synopsis: 'build',
    summary: 'Ask the farm for release builds (CI): follows every target, prints tuples and download URLs; exit 9 if any fails',
    load: async () => (await import('./commands/build.ts')).default,
  },
  {
    words: ['build', 'list'],
    synopsis: 'build list',
    summary: 'The newest builds on the farm (filter by app, commit, target and state; paged)',
    load: async () => (await import('./commands/build-jobs.ts')).jobCommand('list'),
  },
  {
    words: ['build', 'show'],
    synopsis: 'build show BUILD_ID',
    summary: "One build's state, phase, attempts, failure and artifact; exit 9 if it failed",
    load: async () => (await import('./commands/build-jobs.ts')).jobCommand('show'),
  },
  {
    words: ['build', 'logs'],
    synopsis: 'build logs BUILD_ID',
    summary: "One build's log, or (-f) its live log until the build ends",
    load: async () => (await import('./commands/build-jobs.ts')).jobCommand('logs'),
  },
  {
    words: ['build', 'cancel'],
    synopsis: 'build cancel BUILD_ID',
    summary: 'Remove a build from its queue, or stop the worker running it',
    load: async () => (await import('./commands/build-jobs.ts')).jobCommand('cancel'),
  },
  {
    words: ['verify'],
    synopsis: 'verify APP VERSION TUPLE',
    summary: "Check an artifact's signature, provenance and SBOM against the farm key pinned in deploy.yml (or local files with --manifest), one line per check; exit 12 if any fails",
    load: async () => (await import('./commands/verify.ts')).default,
  },
  {
    words: ['version'],
    synopsis: 'version',
    summary: "Print xamal's version",
    load: async () => (await import('./commands/version.ts')).default,
  },
  {
    words: ['target', 'parse'],
    synopsis: 'target parse TUPLE',
    summary: 'Print a target tuple\'s fields as JSON (exit 2 and the reasons when it is invalid)',
    load: async () => (await import('./commands/target-parse.ts')).default,
  },
  {
    words: ['host', 'probe'],
    synopsis: 'host probe',
    summary: "Print this machine's fingerprint (arch, libc, distro, shared libraries) as JSON",
    load: async () => (await import('./commands/host-probe.ts')).default,
  },
  {
    words: ['farm', 'up'],
    synopsis: 'farm up',
    summary: 'Start the farm on embedded defaults (local Redis, Docker engine, registry, disk store), build examples/hello for this machine, serve until Ctrl-C',
    load: async () => (await import('./commands/farm-up.ts')).default,
  },
  {
    words: ['farm', 'images'],
    synopsis: 'farm images ACTION',
    summary: 'Builder images: build from Debian suites (probed, pushed, pinned), list, pin hexpm tags, verify pins',
    load: async () => (await import('./commands/farm-images.ts')).default,
  },
  {
    words: ['farm', 'worker'],
    synopsis: 'farm worker',
    summary: 'Run a build worker for the given platforms (scale out: one per machine, all on one Redis and store)',
    load: async () => (await import('./commands/farm-worker.ts')).default,
  },
  {
    words: ['farm', 'token'],
    synopsis: 'farm token new',
    summary: 'Make an API token: prints it once and the hashed XAMAL_FARM_TOKENS entry',
    load: async () => (await import('./commands/farm-token.ts')).default,
  },
  {
    words: ['farm', 'keys'],
    synopsis: 'farm keys new',
    summary: "Make the farm's artifact signing key: the private key to a 0600 file, the public key and deploy.yml's farm.public_key printed",
    load: async () => (await import('./commands/farm-keys.ts')).default,
  },
  {
    words: ['farm', 'services'],
    synopsis: 'farm services ACTION [NAME…]',
    summary: 'Install (from Debian) and start/stop the local real services on loopback',
    load: async () => (await import('./commands/farm-services.ts')).default,
  },
  {
    words: ['init'],
    synopsis: 'init',
    summary: 'Create config/deploy.yml, .xamal/secrets and sample hooks (.xamal/hooks/*.sample); never overwrites',
    load: async () => (await import('./commands/init.ts')).default,
  },
  {
    words: ['config'],
    synopsis: 'config',
    summary: 'Print the resolved deploy configuration (destination merged, defaults filled, secrets redacted)',
    load: async () => (await import('./commands/config.ts')).default,
  },
  {
    words: ['docs'],
    synopsis: 'docs [SECTION]',
    summary: 'List the sections of config/deploy.yml, or print one section\'s annotated example',
    load: async () => (await import('./commands/docs.ts')).default,
  },
  {
    words: ['secrets'],
    synopsis: 'secrets ACTION',
    summary: 'Print the secrets (redacted unless --reveal), or one secret\'s value',
    load: async () => (await import('./commands/secrets.ts')).default,
  },
  {
    words: ['setup'],
    synopsis: 'setup',
    summary: "Prepare hosts (idempotent): packages, Caddy, /opt/xamal/<app> directories, systemd units, env files (0600), the app's Caddy route; prints what changed",
    load: async () => (await import('./commands/setup.ts')).default,
  },
  {
    words: ['server', 'bootstrap'],
    synopsis: 'server bootstrap',
    summary: 'Host-level setup only: install missing packages and Caddy (run as caddy-api.service); idempotent',
    load: async () => (await import('./commands/server.ts')).bootstrap,
  },
  {
    words: ['server', 'exec'],
    synopsis: 'server exec CMD…',
    summary: "Run a shell command on the hosts in parallel and print each host's output; exit non-zero if any host failed",
    load: async () => (await import('./commands/server.ts')).exec,
  },
  {
    words: ['lock'],
    synopsis: 'lock ACTION',
    summary: 'The deploy lock on the primary host: show the holder, take it (a busy lock names its holder; --force breaks a stale one), release it',
    load: async () => (await import('./commands/lock.ts')).default,
  },
  {
    words: ['caddy'],
    synopsis: 'caddy details',
    summary: "Show this app's Caddy route and its upstreams' state on each host of the primary role",
    load: async () => (await import('./commands/caddy.ts')).default,
  },
  {
    words: ['audit'],
    synopsis: 'audit',
    summary: "Print the last lines of each host's audit log (time, performer, command, version, result)",
    load: async () => (await import('./commands/audit.ts')).default,
  },
];

/** The entry whose words prefix `argv`, longest first. */
export function findCommand(argv: string[]): { entry: CommandEntry; rest: string[] } | undefined {
  const sorted = [...COMMANDS].sort((a, b) => b.words.length - a.words.length);
  for (const entry of sorted) {
    if (entry.words.every((w, i) => argv[i] === w)) return { entry, rest: argv.slice(entry.words.length) };
  }
  return undefined;
}

/**
 * The list of commands (those starting with `prefix` when any do) with their summaries, and the exit
 * codes, wrapped and aligned to `columns` (80 when not given).
 */
export function helpText(prefix: string[] = [], columns = 80): string {
  const width = Math.max(40, columns);
  const matching = COMMANDS.filter((c) => prefix.every((w, i) => c.words[i] === w));
  const rows = matching.length ? matching : COMMANDS;
  return [
    ...wrapText('xamal — build farm and deployer for Elixir releases', width),
    '',
    ...wrapText('Usage: xamal COMMAND [ARGUMENTS] [FLAGS]', width),
    '',
    'Commands:',
    ...twoColumns(rows.map((r) => [r.synopsis, r.summary]), width),
    '',
    'Exit codes:',
    ...twoColumns([['0', 'success'], ...exitCodeRows().map(([exit, meaning]): [string, string] => [String(exit), meaning])], width),
    '',
    ...wrapText("Run `xamal help COMMAND` or `xamal COMMAND --help` for a command's usage, flags and examples.", width),
  ].join('\n');
}

/** One row per exit code (from core's error table, the one place kinds map to codes), in order. */
export function exitCodeRows(): [number, string][] {
  const byExit = new Map<number, string[]>();
  for (const { exit, meaning } of Object.values(ERROR_CODES)) byExit.set(exit, [...(byExit.get(exit) ?? []), meaning]);
  return [...byExit.entries()].sort(([a], [b]) => a - b).map(([exit, meanings]) => [exit, meanings.join('; ')]);
}
