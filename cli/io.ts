import { plainProgress, type Progress } from './progress.ts';

/** What a command may touch of the outside world: its arguments and two output streams. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Resolves when the user asks to stop (Ctrl-C / SIGTERM); for long-running commands. */
  interrupted(): Promise<string>;
  /** Live status lines on stderr (redrawn in place on a terminal); plain lines when absent. */
  progress?(): Progress;
  /** Asks a yes/no question on the terminal (default no); absent when there is no terminal to ask on. */
  confirm?(question: string): Promise<boolean>;
}

/** The command's progress display: the Io's own, else one plain stderr line per change. */
export function progressFor(io: Io): Progress {
  return io.progress?.() ?? plainProgress((line) => io.err(line));
}

/** A CLI command module: returns an exit code, never calls process.exit. */
export interface CliCommand {
  run(args: string[], io: Io): Promise<number>;
}
