import { hostname } from 'node:os';
import type { DeployConfig } from '../config/schema.ts';
import { appLayout, type AppLayout } from '../commands/layout.ts';
import type { SessionPool } from '../remote.ts';
import { Secrets } from '../secrets.ts';
import type { Targets } from './targets.ts';

/** Everything a remote flow needs, in one value the CLI builds (tests build it with a RecordingPool). */
export interface RemoteContext {
  config: DeployConfig;
  destination: string | undefined;
  layout: AppLayout;
  pool: SessionPool;
  targets: Targets;
  /** Who acts (git user.name or login): lock holder and audit performer. */
  performer: string;
  /** For redacting output, errors and audit lines (and for env files in setup). */
  secrets: Secrets;
  /** The command being run, for audit lines: `setup`, `server exec`, … */
  command: string;
  /** The environment xamal was started with (XAMAL_LOCK). */
  env: Readonly<Record<string, string | undefined>>;
  /** Concurrency cap across hosts. Default 10. */
  concurrency?: number;
  /** Progress lines (never secrets). */
  say?: (line: string) => void;
  /** Where each host is in a long flow (`pull`, `web.boot`, …): the CLI's progress display. */
  step?: (host: string, step: string) => void;
  clock: Clock;
  /**
   * The login user on a host: deploy.yml's ssh.user, else ~/.ssh/config's User for it, else root.
   * Root steps use sudo when it is not root (`commands/files.ts#asRoot`).
   */
  sshUser(host: string): string;
  /** This machine and process: lock holders. */
  local: { host: string; pid: number; isAlive: (pid: number) => boolean };
}

export interface Clock {
  now(): Date;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => new Date(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/** Whether a process on this machine is alive (signal 0: EPERM still means it exists). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function localMachine(): RemoteContext['local'] {
  return { host: hostname(), pid: process.pid, isAlive: processAlive };
}

export type ContextInput = Omit<RemoteContext, 'layout' | 'secrets' | 'clock' | 'local' | 'sshUser'> &
  Partial<Pick<RemoteContext, 'secrets' | 'clock' | 'local'>> & {
    /** Each host's login user when ~/.ssh/config decided it (`ssh.ts#resolveEndpoints`). */
    sshUsers?: Readonly<Record<string, string>>;
  };

export function remoteContext(input: ContextInput): RemoteContext {
  const { sshUsers, ...rest } = input;
  return {
    ...rest,
    sshUser: (host) => input.config.ssh.user ?? sshUsers?.[host] ?? 'root',
    layout: appLayout(input.config.service, input.destination),
    secrets: input.secrets ?? Secrets.empty(),
    clock: input.clock ?? realClock,
    local: input.local ?? localMachine(),
  };
}
