import { stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { command, isMissingFile, XamalError, type Arg, type Command, type Executor } from '../core/index.ts';
import type { Secrets } from './secrets.ts';

/**
 * Hooks: the user's executables in `.xamal/hooks/<name>` (hooks_path), run on this machine at
 * points of a deploy with `XAMAL_*` facts in their environment. An absent hook is skipped; a hook
 * that exits non-zero aborts the command with an error naming it. When each runs (Kamal's moments):
 * deployer/config/examples/hooks.yml (`xamal docs hooks`); the CLI runs pre-connect, pre-build,
 * pre-deploy and post-deploy, the deploy flow the boot and switch hooks, once per boot group.
 */
export const HOOK_NAMES = [
  'pre-connect',
  'pre-build',
  'pre-deploy',
  'pre-app-boot',
  'post-app-boot',
  'pre-caddy-switch',
  'post-caddy-switch',
  'post-deploy',
] as const;
export type HookName = (typeof HOOK_NAMES)[number];

/** Where hooks live unless deploy.yml's hooks_path says otherwise (relative to the project). */
export const DEFAULT_HOOKS_PATH = '.xamal/hooks';

/** Hooks that also get the secrets as environment variables (as in Kamal). */
export const HOOKS_WITH_SECRETS: ReadonlySet<HookName> = new Set(['pre-connect', 'pre-deploy', 'post-deploy']);

/** What a hook is told about the run. */
export interface HookDetails {
  service: string;
  version: string;
  hosts: readonly string[];
  roles: readonly string[];
  destination?: string | undefined;
  /** Who deploys: git user.name, else the login (see `localPerformer`). */
  performer: string;
  recordedAt: Date;
  /** Whether the deploy lock is held. */
  lock?: boolean;
  /** `deploy`, `rollback`, … and its subcommand if any. */
  command: string;
  subcommand?: string | undefined;
  /** Seconds the command took (post-deploy). */
  runtime?: number;
}

/** The `XAMAL_*` variables for a hook, plus the secrets for the hooks that get them. */
export function hookEnv(name: HookName, details: HookDetails, secrets?: Secrets): Record<string, Arg> {
  const env: Record<string, Arg> = {
    ...(secrets && HOOKS_WITH_SECRETS.has(name) ? secrets.asEnv() : {}),
    XAMAL_SERVICE: details.service,
    XAMAL_VERSION: details.version,
    XAMAL_SERVICE_VERSION: `${details.service}@${details.version}`,
    XAMAL_HOSTS: details.hosts.join(','),
    XAMAL_ROLES: details.roles.join(','),
    XAMAL_DESTINATION: details.destination ?? '',
    XAMAL_PERFORMER: details.performer,
    XAMAL_RECORDED_AT: details.recordedAt.toISOString(),
    XAMAL_LOCK: details.lock ? 'true' : 'false',
    XAMAL_COMMAND: details.command,
    XAMAL_SUBCOMMAND: details.subcommand ?? '',
  };
  if (details.runtime !== undefined) env.XAMAL_RUNTIME = String(Math.round(details.runtime));
  return env;
}

export interface HookOptions {
  /** The project directory (hooks run there; a relative hooks_path is resolved from it). */
  root: string;
  hooksPath: string;
  /** Runs the hook: a LocalExecutor whose base environment is the one xamal was started with. */
  executor: Executor;
  secrets?: Secrets;
  /** Receives the hook's output (secrets scrubbed). */
  say?: (line: string) => void;
}

export function hookPath(root: string, hooksPath: string, name: HookName): string {
  const dir = isAbsolute(hooksPath) ? hooksPath : join(root, hooksPath);
  return join(dir, name);
}

/** The hook as a command: its path as argv, run in the project directory. */
export function hookCommand(name: HookName, details: HookDetails, opts: Pick<HookOptions, 'root' | 'hooksPath' | 'secrets'>): Command {
  return command([hookPath(opts.root, opts.hooksPath, name)], { cwd: opts.root, env: hookEnv(name, details, opts.secrets), label: `hook ${name}` });
}

export type HookOutcome = { ran: false } | { ran: true; stdout: string; stderr: string };

/** Runs the hook if it exists; throws `hook_failed` naming it when it is not executable or exits non-zero. */
export async function runHook(name: HookName, details: HookDetails, opts: HookOptions): Promise<HookOutcome> {
  const path = hookPath(opts.root, opts.hooksPath, name);
  const shown = join(opts.hooksPath, name);
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new XamalError('hook_failed', `hook ${name}: ${shown} is not a file`);
    if ((st.mode & 0o111) === 0) throw new XamalError('hook_failed', `hook ${name}: ${shown} is not executable (chmod +x ${shown})`);
  } catch (err) {
    if (isMissingFile(err)) return { ran: false };
    throw err;
  }
  const scrub = (t: string) => (opts.secrets ? opts.secrets.redact(t) : t);
  const r = await opts.executor.run(hookCommand(name, details, opts));
  const stdout = scrub(r.stdout);
  const stderr = scrub(r.stderr);
  if (opts.say) for (const line of `${stdout}${stderr}`.split('\n').filter(Boolean)) opts.say(`[${name}] ${line}`);
  if (r.code !== 0) {
    const tail = `${stdout}${stderr}`.trim().split('\n').slice(-10).join('\n');
    throw new XamalError('hook_failed', `hook ${name} failed (exit ${r.code})${tail ? `:\n${tail}` : ''}`, { details: { hook: name, exitCode: r.code } });
  }
  return { ran: true, stdout, stderr };
}

/** Runs a hook of the command by name; `extra` replaces some of the command's details (a boot group's hosts, the lock, the runtime). */
export type HookRunner = (name: HookName, extra?: Partial<HookDetails>) => Promise<void>;

/**
 * The command's hook runner: `details` gives the facts at the moment a hook runs (its own
 * `recordedAt`). With `skip` (-H/--skip-hooks, --dry-run) no hook runs.
 */
export function hookRunner(details: () => HookDetails, opts: HookOptions & { skip?: boolean }): HookRunner {
  if (opts.skip) return async () => {};
  return async (name, extra = {}) => {
    await runHook(name, { ...details(), ...extra }, opts);
  };
}

/** Who is deploying: `git config user.name`, else the login name from the environment. */
export async function localPerformer(executor: Executor, env: Readonly<Record<string, string | undefined>>): Promise<string> {
  try {
    const r = await executor.run(command(['git', 'config', 'user.name'], { timeoutMs: 5_000 }));
    const name = r.stdout.trim();
    if (r.code === 0 && name) return name;
  } catch {
    /* no git: fall back to the login */
  }
  return env.USER || env.LOGNAME || 'unknown';
}
