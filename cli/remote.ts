import { displayCommand, LocalExecutor } from '../core/index.ts';
import { deployerEnv } from '../deployer/config.ts';
import { loadDeployConfig } from '../deployer/config/load.ts';
import { DEPLOY_FLAGS, type DeployFlags } from '../deployer/config/options.ts';
import { remoteContext, type RemoteContext } from '../deployer/flows/context.ts';
import { exitCodeForOutcomes, summary, type HostOutcome } from '../deployer/flows/parallel.ts';
import { selectTargets, splitPatterns } from '../deployer/flows/targets.ts';
import { localPerformer } from '../deployer/hooks.ts';
import { RecordingPool, type RecordedStep, type SessionPool } from '../deployer/remote.ts';
import { loadSecrets, Secrets } from '../deployer/secrets.ts';
import type { FlagTable } from './help.ts';
import type { Io } from './io.ts';

export { splitAtCommand } from './args.ts';

/**
 * What the commands that reach hosts share: their flags, opening the config, secrets and an SSH pool
 * (or, with --dry-run, a recording pool whose steps are printed), and printing per-host outcomes.
 */

export const REMOTE_FLAGS = {
  ...DEPLOY_FLAGS,
  hosts: { type: 'string', short: 'h', multiple: true, valueName: 'HOSTS', description: 'Only these hosts (comma-separated; * matches any characters)' },
  roles: { type: 'string', short: 'r', multiple: true, valueName: 'ROLES', description: 'Only the hosts of these roles (comma-separated; * matches any characters)' },
  primary: { type: 'boolean', short: 'p', description: 'Only the primary host: the primary role\'s first host (with -r, the first selected role\'s); not with --hosts' },
  'dry-run': { type: 'boolean', description: 'Change nothing: print the steps that would run on each host' },
  'trust-new-host-keys': { type: 'boolean', description: 'Accept the key of a host not yet in known_hosts and add it there (a changed key is still refused)' },
} as const satisfies FlagTable;

export const REMOTE_FLAGS_USAGE = '[-d DESTINATION] [-c CONFIG_FILE] [--hosts|-h HOSTS] [-r ROLES] [-p|--primary] [--dry-run] [--trust-new-host-keys] [--json]';

export interface RemoteFlags extends DeployFlags {
  hosts?: string[] | undefined;
  roles?: string[] | undefined;
  primary?: boolean | undefined;
  'dry-run'?: boolean | undefined;
  'trust-new-host-keys'?: boolean | undefined;
}

export interface Remote {
  ctx: RemoteContext;
  /** Set with --dry-run: the steps that would have run. */
  recording: RecordingPool | undefined;
  close(): Promise<void>;
}

/**
 * Loads the config (-d, -c), selects hosts and roles (-h, -r), reads the secrets when the command
 * needs them (or for redacting output), finds the performer, and opens the pool: SSH, or recording
 * under --dry-run.
 */
export async function openRemote(values: RemoteFlags, opts: { command: string; secrets: boolean; say?: (line: string) => void }): Promise<Remote> {
  const env = deployerEnv();
  const root = process.cwd();
  const loaded = await loadDeployConfig({ root, configFile: values['config-file'], destination: values.destination, env });
  const { config, destination } = loaded;
  const targets = selectTargets(config, { hosts: splitPatterns(values.hosts), roles: splitPatterns(values.roles), primary: values.primary });
  const local = new LocalExecutor(env);
  const secrets = opts.secrets ? await loadSecrets({ root, secretsPath: config.secretsPath, destination, env, executor: local }) : Secrets.empty();
  const performer = await localPerformer(local, env);
  // Where each host is reached (deploy.yml's ssh settings over ~/.ssh/config): also under --dry-run,
  // whose root steps depend on each host's login user.
  const ssh = await import('../deployer/ssh.ts');
  const sshConfig = await import('../deployer/ssh-config.ts');
  const home = env.HOME ?? '/root';
  const endpoints = sshConfig.resolveEndpoints(config.ssh, sshConfig.readSshConfigFiles(config.ssh.config, { home, root }), config.hosts, home);
  let pool: SessionPool;
  let recording: RecordingPool | undefined;
  if (values['dry-run']) {
    recording = new RecordingPool();
    pool = recording;
  } else {
    const say = opts.say ?? ((line: string) => process.stderr.write(`${line}\n`));
    const sshEnv = { ...(env.SSH_AUTH_SOCK ? { SSH_AUTH_SOCK: env.SSH_AUTH_SOCK } : {}), HOME: home };
    pool = ssh.sshPool(ssh.sshOptionsFromConfig(config.ssh, sshEnv, values['trust-new-host-keys'] === true, { endpoints, log: (line) => say(secrets.redact(line)) }));
  }
  const sshUsers = Object.fromEntries(Object.entries(endpoints).map(([h, e]) => [h, e.user]));
  const ctx = remoteContext({ config, destination, pool, targets, performer, secrets, command: opts.command, env, sshUsers, ...(opts.say ? { say: opts.say } : {}) });
  return { ctx, recording, close: () => pool.close() };
}

/** Opens the remote (as openRemote), runs `fn` with it, and closes it whatever happens. */
export async function withRemote<T>(values: RemoteFlags, opts: Parameters<typeof openRemote>[1], fn: (remote: Remote) => Promise<T>): Promise<T> {
  const remote = await openRemote(values, opts);
  try {
    return await fn(remote);
  } finally {
    await remote.close();
  }
}

/** One line per recorded step, grouped by host (in order of first contact), secrets redacted. */
export function dryRunLines(steps: readonly RecordedStep[]): string[] {
  const hosts = [...new Set(steps.map((s) => s.host))];
  return hosts.flatMap((h) => steps.filter((s) => s.host === h)).map((s) => {
    if (s.kind === 'run') return `${s.host}: ${displayCommand(s.command)}${s.command.stdin !== undefined ? '  # with stdin' : ''}`;
    if (s.kind === 'interactive') return `${s.host}: ${displayCommand(s.command)}  # interactive`;
    if (s.kind === 'local') return `local: ${s.what}`;
    if (s.kind === 'caddy') return `${s.host}: caddy ${s.request.method} ${s.request.path}${s.request.body !== undefined ? ` ${JSON.stringify(s.request.body)}` : ''}`;
    return `${s.host}: upload ${s.localPath} → ${s.remotePath} (mode ${s.mode.toString(8)})`;
  });
}

export function printDryRun(io: Io, remote: Remote): void {
  if (!remote.recording) return;
  io.err('dry run: nothing was done; these steps would run (answers assumed empty and successful):');
  for (const line of dryRunLines(remote.recording.steps)) io.out(line);
}

/**
 * Prints each host's outcome (`render` turns a value into lines) and a summary; returns the exit
 * code: 0, or the failures' kind. `--json` prints one array of {host, ok, …}.
 */
export function reportOutcomes<T>(io: Io, remote: Remote, outcomes: readonly HostOutcome<T>[], opts: { json?: boolean | undefined; render: (value: T) => string[]; toJson?: (value: T) => unknown }): number {
  const redact = (t: string) => remote.ctx.secrets.redact(t);
  if (opts.json && !remote.recording) {
    io.out(
      JSON.stringify(
        outcomes.map((o) => (o.ok ? { host: o.host, ok: true, ms: o.ms, ...((opts.toJson ? opts.toJson(o.value) : o.value) as object) } : { host: o.host, ok: false, ms: o.ms, error: redact(o.error.message) })),
        null,
        2,
      ),
    );
  } else {
    printDryRun(io, remote);
    if (!remote.recording) {
      for (const o of outcomes) {
        if (o.ok) {
          const lines = opts.render(o.value);
          io.out(`${o.host}:${lines.length ? '' : ' ok'}`);
          for (const l of lines) io.out(`  ${l}`);
        } else {
          io.out(`${o.host}: FAILED: ${redact(o.error.message).split('\n').join('\n  ')}`);
        }
      }
    }
    io.err(summary(outcomes));
  }
  return exitCodeForOutcomes(outcomes);
}
