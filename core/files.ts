import { constants } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
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

/** What `readCappedFile` found: nothing, a file it would not read (and why), or the file's bytes. */
export type CappedRead = { kind: 'missing' } | { kind: 'refused'; why: string } | { kind: 'read'; data: Buffer };

const KIND_OF = (s: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }) =>
  s.isDirectory() ? 'a directory' : s.isFIFO() ? 'a FIFO' : s.isSocket() ? 'a socket' : s.isCharacterDevice() || s.isBlockDevice() ? 'a device' : 'not a regular file';

/**
 * Reads a regular file of at most `maxBytes`, never through a symbolic link at its last component
 * (O_NOFOLLOW) and never blocking on a FIFO (O_NONBLOCK): a link, a device (`/dev/zero`), a FIFO or
 * a larger file is refused unread. Other failures are thrown as they are.
 */
export async function readCappedFile(path: string, maxBytes: number): Promise<CappedRead> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'missing' };
    if (code === 'ELOOP') return { kind: 'refused', why: 'is a symbolic link' };
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { kind: 'refused', why: `is ${KIND_OF(st)}` };
    if (st.size > maxBytes) return { kind: 'refused', why: `is larger than ${maxBytes} bytes` };
    const buf = Buffer.alloc(maxBytes + 1);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got > maxBytes) return { kind: 'refused', why: `is larger than ${maxBytes} bytes` };
    return { kind: 'read', data: buf.subarray(0, got) };
  } finally {
    await fh.close();
  }
}
