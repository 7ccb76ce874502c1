import { exitCodeFor, isXamalError } from '../core/index.ts';
import { cliConfig } from './config.ts';
import type { Io } from './io.ts';
import { terminalConfirm } from './confirm.ts';
import { plainProgress, ttyProgress } from './progress.ts';
import { didYouMean } from './suggest.ts';
import { COMMANDS, findCommand, helpText } from './table.ts';

function processIo(): Io {
  return {
    out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
    progress: () => (process.stderr.isTTY ? ttyProgress((raw) => process.stderr.write(raw)) : plainProgress((line) => process.stderr.write(`${line}\n`))),
    ...(process.stdin.isTTY ? { confirm: terminalConfirm } : {}),
    interrupted: () =>
      new Promise((resolve) => {
        const on = (sig: string) => {
          process.off('SIGINT', on);
          process.off('SIGTERM', on);
          resolve(sig);
        };
        process.on('SIGINT', on);
        process.on('SIGTERM', on);
      }),
  };
}

/**
 * The CLI's one exit point: finds the command, runs it, and turns any error into a message and an
 * exit code. Expected errors print their message; anything else is a bug, printed without a stack
 * unless XAMAL_DEBUG is set.
 */
export async function main(argv: string[], io: Io = processIo(), { debug }: { debug: boolean } = cliConfig()): Promise<number> {
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    io.out(helpText(argv.slice(1)));
    return 0;
  }
  const found = findCommand(argv[0] === '--version' ? ['version', ...argv.slice(1)] : argv);
  if (!found) {
    const near = helpText(argv.slice(0, 1));
    io.err(`xamal: unknown command "${argv.join(' ')}"${didYouMean(argv[0] ?? '', [...new Set(COMMANDS.map((c) => c.words[0]!))])}\n\n${near}`);
    return 2;
  }
  // After a command only --help: `-h` is Kamal's --hosts there.
  if (found.rest.includes('--help')) {
    io.out(`usage: ${found.entry.usage}\n\n${found.entry.summary}`);
    return 0;
  }
  try {
    const cmd = await found.entry.load();
    return await cmd.run(found.rest, io);
  } catch (err) {
    if (isXamalError(err)) {
      io.err(`xamal: ${err.message}`);
      return exitCodeFor(err.code);
    }
    io.err(`xamal: internal error: ${(err as Error)?.message ?? String(err)}${debug ? `\n${(err as Error)?.stack ?? ''}` : '\n(set XAMAL_DEBUG=1 for details)'}`);
    return 1;
  }
}
