import { readFile } from 'node:fs/promises';
import { XamalError } from './errors/index.ts';

/** True for the error of an operation on a path that does not exist (ENOENT). */
export function isMissingFile(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** A file's text, or undefined when it does not exist; any other failure is thrown as it is. */
export async function readTextIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isMissingFile(err)) return undefined;
    throw err;
  }
}

/**
 * A file the user keeps (configuration, secrets): its text, or undefined when it does not exist.
 * Any other failure is an `external` error `cannot read <shown>: …`.
 */
export async function readUserFile(path: string, shown: string): Promise<string | undefined> {
  try {
    return await readTextIfPresent(path);
  } catch (err) {
    throw new XamalError('external', `cannot read ${shown}: ${(err as Error).message}`, { cause: err });
  }
}
