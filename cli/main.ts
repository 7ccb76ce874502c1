import { exitCodeFor, isXamalError, XamalError } from '../core/index.ts';
import { cliConfig } from './config.ts';
import { commandHelpText, hIsHelp } from './help.ts';
import { splitAtCommand } from './args.ts';
import { terminalIo, type CliCommand, type Io } from './io.ts';
import { terminalConfirm } from './confirm.ts';
import { didYouMean } from './suggest.ts';
import { COMMANDS, findCommand, helpText, type CommandEntry } from './table.ts';
import { processTerminal } from './terminal.ts';

/** The words before a `--` (and, for a command that runs a command elsewhere, before that command). */
function ownArgs(rest: readonly string[], cmd: CliCommand): string[] {
  if (cmd.help.passThrough) return splitAtCommand(rest, cmd.help.flags).flags;
  const end = rest.indexOf('--');
  return end < 0 ? [...rest] : rest.slice(0, end);
}

/** `--help` among the command's own words, or `-h` where no flag of the command takes it (Kamal: -h is --hosts). */
export function asksForHelp(rest: readonly string[], cmd: CliCommand): boolean {
  const own = ownArgs(rest, cmd);
  return own.includes('--help') || (hIsHelp(cmd.help.flags) && own.includes('-h'));
}

const isHelpWord = (w: string | undefined) => w === '--help' || w === '-h';

/** `xamal help [WORDS]`: a command's help when the words name one, else the list of the group they start. */
async function printHelp(words: string[], io: Io): Promise<number> {
  const found = words.length ? findCommand(words) : undefined;
  if (found && found.rest.length === 0) {
    io.out(found.entry.alias ? `xamal ${found.entry.synopsis}: ${found.entry.summary}` : commandHelpText(found.entry.summary, (await found.entry.load()).help, io.columns ?? 80));
    return 0;
  }
  if (words.length && !COMMANDS.some((c) => words.every((w, i) => c.words[i] === w))) return unknownCommand(words, io);
  io.out(helpText(words, io.columns));
  return 0;
}

/** The process's own streams and signals, and its terminal for interactive commands (`app exec -i`). */
function processIo(): Io {
  return { ...terminalIo(process.stdout, process.stderr, process), terminal: () => processTerminal(cliConfig().term), ...(process.stdin.isTTY ? { confirm: terminalConfirm } : {}) };
}

/** `unknown command`, with a command or one of deploy.yml's `aliases` it was near. */
function unknownCommand(argv: string[], io: Io, aliases: readonly string[] = []): number {
  io.err(`xamal: unknown command "${argv.join(' ')}"${didYouMean(argv[0] ?? '', [...new Set([...COMMANDS.map((c) => c.words[0]!), ...aliases])])}\n\n${helpText(argv.slice(0, 1), io.columns)}`);
  return 2;
}

async function runCommand(entry: CommandEntry, rest: string[], io: Io): Promise<number> {
  if (!entry.load) throw new XamalError('internal', `${entry.words.join(' ')} is an alias with no command`);
  const cmd = await entry.load();
  if (asksForHelp(rest, cmd)) {
    io.out(commandHelpText(entry.summary, cmd.help, io.columns ?? 80));
    return 0;
  }
  return cmd.run(rest, io);
}

/**
 * The CLI's one exit point: finds the command, runs it, and turns any error into a message and an
 * exit code. Expected errors print their message; anything else is a bug, printed without a stack
 * unless XAMAL_DEBUG is set. A progress frame a failed command leaves is erased first.
 */
export async function main(argv: string[], io: Io = processIo(), { debug }: { debug: boolean } = cliConfig()): Promise<number> {
  if (argv.length === 0 || argv[0] === 'help' || isHelpWord(argv[0])) return printHelp(argv.slice(1), io);
  try {
    return await dispatch(argv[0] === '--version' ? ['version', ...argv.slice(1)] : argv, io);
  } catch (err) {
    io.stopProgress?.();
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
  let aliases: string[] = [];
  if (!found || found.entry.alias) {
    // `xamal farm --help`: the group's list.
    const group = argv.slice(0, -1);
    if (!found && isHelpWord(argv.at(-1)) && group.length && COMMANDS.some((c) => group.every((w, i) => c.words[i] === w))) return printHelp(group, io);
    const { resolveAlias } = await import('./aliases.ts');
    const r = argv[0]?.startsWith('-') ? undefined : await resolveAlias(argv, { builtin: found !== undefined });
    if (r && 'argv' in r) {
      found = findCommand(r.argv);
      if (!found || found.entry.alias) {
        throw new XamalError('usage', `alias ${JSON.stringify(r.alias)} expands to ${JSON.stringify(r.definition)}, which is not a xamal command${found ? ' (an alias stands for a command, not another alias)' : ''}`);
      }
    } else aliases = r?.aliases ?? [];
  }
  if (!found) return unknownCommand(argv, io, aliases);
  return runCommand(found.entry, found.rest, io);
}
