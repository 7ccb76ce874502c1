import { parseArgs } from 'node:util';
import { XamalError } from '../core/index.ts';
import type { CommandHelp, FlagTable } from './help.ts';
import type { CliCommand, Io } from './io.ts';
import { didYouMean } from './suggest.ts';

/** Node's `Option '-h, --hosts <value>' argument missing` said as `--hosts (-h) expects a value: HOSTS` (and that -h is not help there). */
function missingValue(message: string, options: FlagTable): string | undefined {
  const long = /^Option '(?:-\w, )?--([^ ']+) <value>' argument missing/.exec(message)?.[1];
  const f = long === undefined ? undefined : options[long];
  if (!f) return undefined;
  return `--${long}${f.short ? ` (-${f.short})` : ''} expects a value: ${f.valueName ?? 'VALUE'}${f.short === 'h' ? ' (-h is --hosts here; --help prints the help)' : ''}`;
}

/**
 * node:util parseArgs over a command's flag table (each flag with its --help description) with its
 * errors turned into usage errors that name the flag.
 */
export function parseFlags<T extends FlagTable>(args: string[], options: T, usage: string) {
  // The type asks for a description already; this catches a table built past it (help must say every flag).
  const undescribed = Object.keys(options).filter((name) => !options[name]!.description?.trim());
  if (undescribed.length) throw new Error(`flag ${undescribed.map((n) => `--${n}`).join(', ')} has no description for --help`);
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    const first = (err as Error).message.split('\n')[0]!;
    // Node names an unknown flag as `Unknown option '--hostz'`: suggest a flag this command has.
    const typed = /^Unknown option '(-{1,2}[^']+)'/.exec(first)?.[1];
    const flags = Object.entries(options).flatMap(([name, o]) => [`--${name}`, ...(o.short ? [`-${o.short}`] : [])]);
    throw new XamalError('usage', `${typed ? `unknown flag ${typed}${didYouMean(typed, flags)}` : (missingValue(first, options) ?? first)}\nusage: ${usage}`);
  }
}

/**
 * A command that takes the flags of its `help`: `run` gets them parsed (an unknown flag is a usage
 * error), and --help lists the same table.
 */
export function flagCommand<T extends FlagTable>(help: CommandHelp & { flags: T }, run: (parsed: ReturnType<typeof parseFlags<T>>, io: Io) => Promise<number>): CliCommand {
  return {
    help,
    async run(args, io) {
      return run(parseFlags(args, help.flags, help.usage), io);
    },
  };
}

export function usageError(message: string, usage: string): XamalError {
  return new XamalError('usage', `${message}\nusage: ${usage}`);
}

/** Refuses arguments left over: `unexpected argument "x"`. */
export function noExtraArgs(rest: readonly string[], usage: string): void {
  if (rest.length) throw usageError(`unexpected argument ${JSON.stringify(rest[0])}`, usage);
}

/**
 * The usage error for an action word that is unknown (`unknown action "x"`, with the one of `actions`
 * a typo was near) or absent (`expected …`).
 */
export function actionError(action: string | undefined, usage: string, expected = 'an action', actions: readonly string[] = []): XamalError {
  return usageError(action ? `unknown action ${JSON.stringify(action)}${didYouMean(action, actions)}` : `expected ${expected}`, usage);
}

/** `a`, `a or b`, `a, b or c`. */
function oneOf(words: readonly string[]): string {
  return words.length > 1 ? `${words.slice(0, -1).join(', ')} or ${words.at(-1)}` : (words[0] ?? '');
}

/** The leading action word, which must be one of `actions`, and the words after it. */
export function takeAction<A extends string>(positionals: readonly string[], actions: readonly A[], usage: string): [A, string[]] {
  const [action, ...rest] = positionals;
  if (!(actions as readonly string[]).includes(action ?? '')) throw actionError(action, usage, oneOf(actions), actions);
  return [action as A, rest];
}

/** The action word, one of `actions`, with nothing after it. */
export function onlyAction<A extends string>(positionals: readonly string[], actions: readonly A[], usage: string): A {
  const [action, rest] = takeAction(positionals, actions, usage);
  noExtraArgs(rest, usage);
  return action;
}

/**
 * Splits `[flags…] CMD [ARGS…]` at the first word that is neither a flag nor a flag's value, so
 * `xamal server exec -r web uname -m` runs `uname -m` (a `--` works too).
 */
export function splitAtCommand(args: readonly string[], flags: Record<string, { type: string; short?: string }>): { flags: string[]; rest: string[] } {
  const takesValue = new Set(Object.entries(flags).flatMap(([long, f]) => (f.type === 'string' ? [`--${long}`, ...(f.short ? [`-${f.short}`] : [])] : [])));
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return { flags: args.slice(0, i), rest: args.slice(i + 1) };
    if (!a.startsWith('-')) return { flags: args.slice(0, i), rest: args.slice(i) };
    if (takesValue.has(a)) i++;
  }
  return { flags: [...args], rest: [] };
}
