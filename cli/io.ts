import type { Terminal } from '../deployer/remote.ts';
import type { CommandHelp } from './help.ts';
import { plainProgress, ttyScreen, type Progress } from './progress.ts';

/** What a command may touch of the outside world: its arguments and two output streams. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Resolves when the user asks to stop (Ctrl-C / SIGTERM); for long-running commands. */
  interrupted(): Promise<string>;
  /** Live status lines on stderr (redrawn in place on a terminal); plain lines when absent. */
  progress?(): Progress;
  /** Erases a progress frame still on screen (the command failed); the exit point calls it. */
  stopProgress?(): void;
  /** The width help wraps to: the terminal's columns (absent when stdout is not a terminal: 80). */
  columns?: number | undefined;
  /** The process's stdin/stdout/stderr for an interactive command (`app exec -i`); absent in tests that give none. */
  terminal?(): Terminal;
  /** Asks a yes/no question on the terminal (default no); absent when there is no terminal to ask on. */
  confirm?(question: string): Promise<boolean>;
}

/** The command's progress display: the Io's own, else one plain stderr line per change. */
export function progressFor(io: Io): Progress {
  return io.progress?.() ?? plainProgress((line) => io.err(line));
}

/** A CLI command module: returns an exit code, never calls process.exit. */
export interface CliCommand {
  /** What `xamal COMMAND --help` prints: usage, description, the flags it parses, examples. */
  help: CommandHelp;
  run(args: string[], io: Io): Promise<number>;
}

/** An output stream as the terminal Io uses it (process.stdout, process.stderr, or a fake). */
export interface OutStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** The signals the terminal Io listens to (the process, or a fake). */
export interface SignalSource {
  pid: number;
  on(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  prependListener(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  prependListener(event: 'exit', listener: (code: number) => void): unknown;
  off(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  listenerCount(signal: string): number;
  kill(pid: number, signal: string): unknown;
}

const asLine = (t: string) => (t.endsWith('\n') ? t : `${t}\n`);

/**
 * The Io of a process on `stdout` and `stderr`. When stderr is a terminal, progress is a frame redrawn
 * in place and every line printed while it is live (stderr's, and stdout's when stdout is that
 * terminal too) goes above it; Ctrl-C, SIGTERM or the process exiting erase it first (a signal
 * nobody else listens to then does what it would have: ends the process).
 */
export function terminalIo(stdout: OutStream, stderr: OutStream, proc: SignalSource): Io {
  const screen = stderr.isTTY ? ttyScreen((raw) => stderr.write(raw), stderr.columns || 80) : undefined;
  const print = (stream: OutStream, t: string) => (screen && (stream === stderr || stdout.isTTY) ? screen.above(() => stream.write(asLine(t))) : stream.write(asLine(t)));
  let watching = false;
  const onSignal = (sig: NodeJS.Signals) => {
    screen?.clear();
    if (proc.listenerCount(sig) > 1) return;
    proc.off(sig, onSignal);
    proc.kill(proc.pid, sig);
  };
  const watch = () => {
    if (watching) return;
    watching = true;
    // First in line, so the listeners counted are all those the signal reached (others may remove theirs).
    proc.prependListener('SIGINT', onSignal);
    proc.prependListener('SIGTERM', onSignal);
    proc.prependListener('exit', () => screen?.clear());
  };
  return {
    out: (t) => void print(stdout, t),
    err: (t) => void print(stderr, t),
    columns: stdout.isTTY ? stdout.columns || 80 : undefined,
    progress: () => {
      if (!screen) return plainProgress((line) => stderr.write(asLine(line)));
      watch();
      return screen.progress();
    },
    stopProgress: () => screen?.clear(),
    interrupted: () =>
      new Promise((resolve) => {
        const on = (sig: string) => {
          proc.off('SIGINT', on);
          proc.off('SIGTERM', on);
          resolve(sig);
        };
        proc.on('SIGINT', on);
        proc.on('SIGTERM', on);
      }),
  };
}
