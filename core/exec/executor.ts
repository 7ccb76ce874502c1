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

/** Runs `cmd` and throws, with the label and the last lines of its output, unless it exits 0. */
export async function runChecked(exec: Executor, cmd: Command): Promise<CommandResult> {
  const r = await exec.run(cmd);
  if (r.code !== 0) {
    throw new XamalError('external', `${cmd.label ?? String(cmd.argv[0])} failed (exit ${r.code}):\n${(r.stderr || r.stdout).trim().split('\n').slice(-15).join('\n')}`);
  }
  return r;
}
