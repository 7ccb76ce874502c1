import { displayCommand, type Command } from './command.ts';
import type { CommandResult, Executor } from './executor.ts';

export type Responder = (cmd: Command) => Partial<CommandResult> | undefined;

/**
 * Records every command instead of running it (tests, `--dry-run`). A responder may script results;
 * otherwise each command "succeeds" with empty output.
 */
export class RecordingExecutor implements Executor {
  readonly commands: Command[] = [];

  constructor(private readonly responder: Responder = () => undefined) {}

  async run(cmd: Command): Promise<CommandResult> {
    this.commands.push(cmd);
    return { code: 0, stdout: '', stderr: '', ...this.responder(cmd) };
  }

  /** What would have run, one redacted shell line per command. */
  lines(): string[] {
    return this.commands.map(displayCommand);
  }
}
