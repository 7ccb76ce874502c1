import type { Terminal } from '../deployer/remote.ts';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * The process's own terminal for an interactive command. A pty is asked for when stdin is a TTY
 * (as `ssh -t`); raw mode is undone when the command ends, and also when the process exits on any
 * other path while it is on.
 */
export function processTerminal(term: string): Terminal {
  const stdin = process.stdin;
  const restore = () => {
    if (stdin.isTTY) stdin.setRawMode(false);
  };
  return {
    input: stdin,
    output: process.stdout,
    errors: process.stderr,
    term,
    size: () => (stdin.isTTY ? { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 } : undefined),
    setRaw(on) {
      if (!stdin.isTTY) return;
      stdin.setRawMode(on);
      if (on) process.once('exit', restore);
      else process.removeListener('exit', restore);
    },
    onResize(fn) {
      process.on('SIGWINCH', fn);
      return () => {
        process.removeListener('SIGWINCH', fn);
      };
    },
    onSignal(fn) {
      const handlers = SIGNALS.map((sig) => [sig, () => fn(sig)] as const);
      for (const [sig, h] of handlers) process.on(sig, h);
      return () => {
        for (const [sig, h] of handlers) process.removeListener(sig, h);
      };
    },
  };
}
