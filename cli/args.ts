import { parseArgs, type ParseArgsConfig } from 'node:util';
import { XamalError } from '../core/index.ts';
import type { CliCommand, Io } from './io.ts';
import { didYouMean } from './suggest.ts';

type FlagOptions = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs with its errors turned into usage errors that name the flag. */
export function parseFlags<T extends FlagOptions>(args: string[], options: T, usage: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    const first = (err as Error).message.split('\n')[0]!;
    // Node names an unknown flag as `Unknown option '--hostz'`: suggest a flag this command has.
    const typed = /^Unknown option '(-{1,2}[^']+)'/.exec(first)?.[1];
    const flags = Object.entries(options).flatMap(([name, o]) => [`--${name}`, ...(o.short ? [`-${o.short}`] : [])]);
    throw new XamalError('usage', `${typed ? `unknown flag ${typed}${didYouMean(typed, flags)}` : first}\nusage: ${usage}`);
  }
}

/** A command that takes `flags`: `run` gets them parsed (an unknown flag is a usage error). */
export function flagCommand<T extends FlagOptions>(usage: string, flags: T, run: (parsed: ReturnType<typeof parseFlags<T>>, io: Io) => Promise<number>): CliCommand {
  return {
    async run(args, io) {
      return run(parseFlags(args, flags, usage), io);
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
