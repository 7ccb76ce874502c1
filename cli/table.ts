import type { CliCommand } from './io.ts';
import { ERROR_CODES } from '../core/index.ts';

/** The command table: each command's words, a one-line summary, and a lazy loader. */
export interface CommandEntry {
  words: string[];
  usage: string;
  summary: string;
  load: () => Promise<CliCommand>;
}

export const COMMANDS: CommandEntry[] = [
  {
    words: ['deploy'],
    usage: 'xamal deploy [--version V] [-d DEST] [-h HOSTS] [-r ROLES] [--dry-run] [--json]',
    summary: 'Deploy: each host pulls the artifact built for it from the farm, boots it on the idle slot, health-checks it; Caddy moves traffic with no reload; then prunes to retain_releases',
    load: async () => (await import('./commands/deploy.ts')).forVerb('deploy'),
  },
  {
    words: ['redeploy'],
    usage: 'xamal redeploy [--version V] …',
    summary: 'Deploy again without setup (same as deploy: setup is never implied)',
    load: async () => (await import('./commands/deploy.ts')).forVerb('redeploy'),
  },
  {
    words: ['rollback'],
    usage: 'xamal rollback [VERSION] …',
    summary: 'Switch back to a retained release (default: the previous one) the same zero-downtime way',
    load: async () => (await import('./commands/deploy.ts')).forVerb('rollback'),
  },
  {
    words: ['prune'],
    usage: 'xamal prune …',
    summary: 'Remove old releases, keeping retain_releases and never the running or previous one',
    load: async () => (await import('./commands/deploy.ts')).forVerb('prune'),
  },
  {
    words: ['app'],
    usage: 'xamal app boot [--version V]|details|versions|releases|logs|stop|start|exec CMD|maintenance|live|remove [-y] …',
    summary: 'The running app: boot the current release again (blue/green, as a deploy), live slot and version per host, releases kept, logs, stop/start, a command in the live release env, maintenance page, remove (units, Caddy route, releases, slots; asks first)',
    load: async () => (await import('./commands/app.ts')).default,
  },
  {
    words: ['remove'],
    usage: 'xamal remove [-y|--confirmed] [-d DEST] [-h HOSTS] [-r ROLES] [--dry-run] [--json]',
    summary: "Remove everything of this app from its hosts (asks first; -y skips): what app remove does, /opt/xamal/<app> (env files, lock, audit log) and the app's user; Caddy and packages stay",
    load: async () => (await import('./commands/remove.ts')).default,
  },
  {
    words: ['details'],
    usage: 'xamal details [-d DEST] [-h HOSTS] [-r ROLES] [--json]',
    summary: "Show this app per host: each role's live slot, version and running slots, and its Caddy route and upstreams",
    load: async () => (await import('./commands/details.ts')).default,
  },
  {
    words: ['build'],
    usage: 'xamal build --farm URL --app APP --git URL (--commit SHA|--ref REF) --target T … [--json]',
    summary: 'Ask the farm for release builds (CI): follows every target, prints tuples and download URLs; exit 9 if any fails',
    load: async () => (await import('./commands/build.ts')).default,
  },
  {
    words: ['version'],
    usage: 'xamal version (or xamal --version)',
    summary: "Print xamal's version",
    load: async () => (await import('./commands/version.ts')).default,
  },
  {
    words: ['target', 'parse'],
    usage: 'xamal target parse TUPLE',
    summary: 'Print a target tuple\'s fields as JSON (exit 2 and the reasons when it is invalid)',
    load: async () => (await import('./commands/target-parse.ts')).default,
  },
  {
    words: ['host', 'probe'],
    usage: 'xamal host probe',
    summary: "Print this machine's fingerprint (arch, libc, distro, shared libraries) as JSON",
    load: async () => (await import('./commands/host-probe.ts')).default,
  },
  {
    words: ['farm', 'up'],
    usage: 'xamal farm up [--host 127.0.0.1] [--port 7420] [--no-example]',
    summary: 'Start the farm on embedded defaults (local Redis, Docker engine, registry, disk store), build examples/hello for this machine, serve until Ctrl-C',
    load: async () => (await import('./commands/farm-up.ts')).default,
  },
  {
    words: ['farm', 'images'],
    usage: 'xamal farm images build|list|pin|verify …',
    summary: 'Builder images: build from Debian suites (probed, pushed, pinned), list, pin hexpm tags, verify pins',
    load: async () => (await import('./commands/farm-images.ts')).default,
  },
  {
    words: ['farm', 'worker'],
    usage: 'xamal farm worker [--arch x86_64,aarch64] [--concurrency N]',
    summary: 'Run a build worker for the given platforms (scale out: one per machine, all on one Redis and store)',
    load: async () => (await import('./commands/farm-worker.ts')).default,
  },
  {
    words: ['farm', 'token'],
    usage: 'xamal farm token new --name NAME --scopes read,build[,admin]',
    summary: 'Make an API token: prints it once and the hashed XAMAL_FARM_TOKENS entry',
    load: async () => (await import('./commands/farm-token.ts')).default,
  },
  {
    words: ['farm', 'services'],
    usage: 'xamal farm services up|down|status [redis|dockerd|s3|registry …] [--json]',
    summary: 'Install (from Debian) and start/stop the local real services on loopback',
    load: async () => (await import('./commands/farm-services.ts')).default,
  },
  {
    words: ['init'],
    usage: 'xamal init [-q]',
    summary: 'Create config/deploy.yml, .xamal/secrets and sample hooks (.xamal/hooks/*.sample); never overwrites',
    load: async () => (await import('./commands/init.ts')).default,
  },
  {
    words: ['config'],
    usage: 'xamal config [-d DESTINATION] [-c CONFIG_FILE] [--json] [-v|-q]',
    summary: 'Print the resolved deploy configuration (destination merged, defaults filled, secrets redacted)',
    load: async () => (await import('./commands/config.ts')).default,
  },
  {
    words: ['docs'],
    usage: 'xamal docs [SECTION]',
    summary: 'List the sections of config/deploy.yml, or print one section\'s annotated example',
    load: async () => (await import('./commands/docs.ts')).default,
  },
  {
    words: ['secrets'],
    usage: 'xamal secrets print [--reveal] | extract NAME [-d DESTINATION] [-c CONFIG_FILE] [--json]',
    summary: 'Print the secrets (redacted unless --reveal), or one secret\'s value',
    load: async () => (await import('./commands/secrets.ts')).default,
  },
  {
    words: ['setup'],
    usage: 'xamal setup [-d DEST] [-c FILE] [--hosts H] [-r ROLES] [--dry-run] [--trust-new-host-keys] [--json]',
    summary: "Prepare hosts (idempotent): packages, Caddy, /opt/xamal/<app> directories, systemd units, env files (0600), the app's Caddy route; prints what changed",
    load: async () => (await import('./commands/setup.ts')).default,
  },
  {
    words: ['server', 'bootstrap'],
    usage: 'xamal server bootstrap [-d DEST] [-c FILE] [--hosts H] [-r ROLES] [--dry-run] [--json]',
    summary: 'Host-level setup only: install missing packages and Caddy (run as caddy-api.service); idempotent',
    load: async () => (await import('./commands/server.ts')).bootstrap,
  },
  {
    words: ['server', 'exec'],
    usage: 'xamal server exec [-d DEST] [--hosts H] [-r ROLES] [--dry-run] [--json] [--] CMD…',
    summary: "Run a shell command on the hosts in parallel and print each host's output; exit non-zero if any host failed",
    load: async () => (await import('./commands/server.ts')).exec,
  },
  {
    words: ['lock'],
    usage: 'xamal lock status | acquire -m MESSAGE [--lock-wait SECONDS] [--force] | release [-d DEST] [--json]',
    summary: 'The deploy lock on the primary host: show the holder, take it (a busy lock names its holder; --force breaks a stale one), release it',
    load: async () => (await import('./commands/lock.ts')).default,
  },
  {
    words: ['caddy'],
    usage: 'xamal caddy details [-d DEST] [--hosts H] [--json]',
    summary: "Show this app's Caddy route and its upstreams' state on each host of the primary role",
    load: async () => (await import('./commands/caddy.ts')).default,
  },
  {
    words: ['audit'],
    usage: 'xamal audit [-n LINES] [-d DEST] [--hosts H] [-r ROLES] [--json]',
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

export function helpText(prefix: string[] = []): string {
  const matching = COMMANDS.filter((c) => prefix.every((w, i) => c.words[i] === w));
  const rows = matching.length ? matching : COMMANDS;
  const width = Math.max(...rows.map((r) => r.usage.length));
  return [
    'xamal — build farm and deployer for Elixir releases',
    '',
    'Commands:',
    ...rows.map((r) => `  ${r.usage.padEnd(width)}  ${r.summary}`),
    '',
    'Exit codes:',
    '  0  success',
    ...exitCodeRows().map(([exit, meaning]) => `  ${String(exit).padEnd(2)} ${meaning}`),
    '',
    'Run `xamal help` for this list.',
  ].join('\n');
}

/** One row per exit code (from core's error table, the one place kinds map to codes), in order. */
export function exitCodeRows(): [number, string][] {
  const byExit = new Map<number, string[]>();
  for (const { exit, meaning } of Object.values(ERROR_CODES)) byExit.set(exit, [...(byExit.get(exit) ?? []), meaning]);
  return [...byExit.entries()].sort(([a], [b]) => a - b).map(([exit, meanings]) => [exit, meanings.join('; ')]);
}
