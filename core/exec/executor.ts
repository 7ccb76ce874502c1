import { XamalError } from '../errors/index.ts';
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

/** What a command is called in messages: its label, else its program. */
export function commandName(cmd: Command): string {
  return cmd.label ?? String(cmd.argv[0]);
}

/**
 * Runs `cmd` and throws unless it exits 0: `<what> failed (exit N):` and the last lines of its
 * stderr (or stdout when stderr is empty). `what` defaults to the command's name.
 */
export async function runChecked(exec: Executor, cmd: Command, what: string = commandName(cmd)): Promise<CommandResult> {
  const r = await exec.run(cmd);
  if (r.code !== 0) {
    throw new XamalError('external', `${what} failed (exit ${r.code}):\n${(r.stderr || r.stdout).trim().split('\n').slice(-15).join('\n')}`);
  }
  return r;
}
