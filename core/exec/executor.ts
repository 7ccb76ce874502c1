import type { Command } from './command.ts';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs Commands. Implementations: local (execFile), ssh (deployer), recording (tests, --dry-run). */
export interface Executor {
  /** Runs the command; resolves with its exit code whatever it is. */
  run(cmd: Command): Promise<CommandResult>;
}
