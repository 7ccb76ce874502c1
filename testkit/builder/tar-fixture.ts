import { gzipSync } from 'node:zlib';

/**
 * Hand-made tar archives for tests: entries exactly as given (absolute paths, `..`, devices, links
 * before writes through them), which `tar` itself would refuse or rewrite when creating one.
 */
export interface FixtureEntry {
  path: string;
  /** Type flag: `0` file (default), `1` hard link, `2` symbolic link, `3` char device, `5` directory, `6` FIFO. */
  type?: string;
  linkpath?: string;
  mode?: number;
  /** Owner and group as stored (numbers); 0 by default. */
  uid?: number;
  data?: string;
}

const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, '0')}\0`;

function header(e: FixtureEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(e.path, 0, 100, 'utf8');
  h.write(octal(e.mode ?? 0o644, 8), 100, 'latin1');
  h.write(octal(e.uid ?? 0, 8), 108, 'latin1');
  h.write(octal(e.uid ?? 0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(0, 12), 136, 'latin1');
  h.write(' '.repeat(8), 148, 'latin1');
  h.write(e.type ?? '0', 156, 'latin1');
  h.write(e.linkpath ?? '', 157, 100, 'utf8');
  h.write('ustar\u000000', 257, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** A .tar.gz of `entries`, in order. */
export function tarGzOf(entries: FixtureEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '', 'utf8');
    blocks.push(header(e, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}
