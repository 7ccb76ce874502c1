import { exitCodeFor, isXamalError, XamalError } from '../core/index.ts';
import { cliConfig } from './config.ts';
import type { Io } from './io.ts';
import { plainProgress, ttyProgress } from './progress.ts';
import { didYouMean } from './suggest.ts';
import { COMMANDS, findCommand, helpText, type CommandEntry } from './table.ts';
import { processTerminal } from './terminal.ts';

function processIo(): Io {
  return {
    out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
    terminal: () => processTerminal(cliConfig().term),
    progress: () => (process.stderr.isTTY ? ttyProgress((raw) => process.stderr.write(raw)) : plainProgress((line) => process.stderr.write(`${line}\n`))),
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
  try {
    return await dispatch(argv[0] === '--version' ? ['version', ...argv.slice(1)] : argv, io);
  } catch (err) {
    if (isXamalError(err)) {
      io.err(`xamal: ${err.message}`);
      return exitCodeFor(err.code);
    }
    io.err(`xamal: internal error: ${(err as Error)?.message ?? String(err)}${debug ? `\n${(err as Error)?.stack ?? ''}` : '\n(set XAMAL_DEBUG=1 for details)'}`);
    return 1;
  }
}

/**
 * Finds the command and runs it. A first word that is no command may be an alias of deploy.yml
 * (read only then); a built-in alias (`console`) is expanded the same way. An alias expands once.
 */
async function dispatch(argv: string[], io: Io): Promise<number> {
  let found = findCommand(argv);
  // After a command only --help: `-h` is Kamal's --hosts there.
  if (found?.rest.includes('--help')) {
    io.out(`usage: ${found.entry.usage}\n\n${found.entry.summary}`);
    return 0;
  }
  let aliases: string[] = [];
  if (!found || found.entry.alias) {
    const { resolveAlias } = await import('./aliases.ts');
    const r = argv[0]?.startsWith('-') ? undefined : await resolveAlias(argv, { builtin: found !== undefined });
    if (r && 'argv' in r) {
      found = findCommand(r.argv);
      if (!found || found.entry.alias) {
        throw new XamalError('usage', `alias ${JSON.stringify(r.alias)} expands to ${JSON.stringify(r.definition)}, which is not a xamal command${found ? ' (an alias stands for a command, not another alias)' : ''}`);
      }
    } else aliases = r?.aliases ?? [];
  }
  if (!found) {
    const near = helpText(argv.slice(0, 1));
    io.err(`xamal: unknown command "${argv.join(' ')}"${didYouMean(argv[0] ?? '', [...new Set([...COMMANDS.map((c) => c.words[0]!), ...aliases])])}\n\n${near}`);
    return 2;
  }
  return (await loadCommand(found.entry)).run(found.rest, io);
}

function loadCommand(entry: CommandEntry) {
  if (!entry.load) throw new XamalError('internal', `${entry.words.join(' ')} is an alias with no command`);
  return entry.load();
}
