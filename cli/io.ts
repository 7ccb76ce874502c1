/** What a command may touch of the outside world: its arguments and two output streams. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Resolves when the user asks to stop (Ctrl-C / SIGTERM); for long-running commands. */
  interrupted(): Promise<string>;
}

/** A CLI command module: returns an exit code, never calls process.exit. */
export interface CliCommand {
  run(args: string[], io: Io): Promise<number>;
}
