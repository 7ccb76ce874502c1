import { parseArgs, type ParseArgsConfig } from 'node:util';
import { XamalError } from '../core/index.ts';

/** node:util parseArgs with its errors turned into usage errors that name the flag. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, usage: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new XamalError('usage', `${(err as Error).message.split('\n')[0]}\nusage: ${usage}`);
  }
}

export function usageError(message: string, usage: string): XamalError {
  return new XamalError('usage', `${message}\nusage: ${usage}`);
}
