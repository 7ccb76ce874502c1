import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { posix } from 'node:path';

/**
 * The entries of a source archive (`.tar.gz`), read from their headers without unpacking anything,
 * and the rules an archive must follow before `tar` may unpack it as root: every entry a file,
 * directory or link, named inside the target directory, no link leading out of it, nothing written
 * through a link. Reads ustar, pax (`path`, `linkpath`, `size`) and GNU long names; file contents
 * are skipped. GNU tar refuses some of these itself, not devices (FACTS.md#tar-extract); this check
 * does not depend on it.
 */

export interface TarEntry {
  path: string;
  /** The header's type flag: `0` file, `1` hard link, `2` symbolic link, `5` directory, … */
  type: string;
  linkpath: string;
  mode: number;
}

const BLOCK = 512;
/** A pax or GNU long-name record larger than this is refused (names are at most a few KiB). */
const MAX_META = 1024 * 1024;

const cstr = (b: Buffer, off: number, len: number) => {
  const s = b.subarray(off, off + len);
  const end = s.indexOf(0);
  return s.toString('utf8', 0, end < 0 ? len : end);
};

/** A numeric header field: octal text, or GNU base-256 when the high bit of its first byte is set. */
function numeric(b: Buffer, off: number, len: number): number {
  if ((b[off] as number) & 0x80) {
    let v = (b[off] as number) & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + (b[off + i] as number);
    return v;
  }
  const text = cstr(b, off, len).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

/** The header's checksum matches (bytes summed with the checksum field as spaces). */
function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
  return sum === numeric(h, 148, 8);
}

/** pax records: `<length> <key>=<value>\n`. */
function paxRecords(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const len = parseInt(data.toString('utf8', at, space), 10);
    if (space < 0 || !Number.isFinite(len) || len <= 0 || at + len > data.length) throw new Error('malformed pax header');
    const record = data.toString('utf8', space + 1, at + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    at += len;
  }
  return out;
}

/** Reads tar headers from a stream of blocks; `push` returns the entries each chunk completed. */
function headerReader() {
  let pending = Buffer.alloc(0);
  let skip = 0;
  let meta: { type: string; size: number } | undefined;
  let next: Record<string, string> = {};
  const global: Record<string, string> = {};
  let ended = false;
  const header = (h: Buffer): TarEntry | undefined => {
    if (h.every((x) => x === 0)) {
      ended = true;
      return undefined;
    }
    if (!checksumOk(h)) throw new Error('bad tar header checksum');
    const type = h[156] === 0 ? '0' : String.fromCharCode(h[156] as number);
    const size = numeric(h, 124, 12);
    if ('xgLK'.includes(type)) {
      if (size > MAX_META) throw new Error(`a ${type} header of ${size} bytes`);
      meta = { type, size };
      return undefined;
    }
    const ustar = h.toString('latin1', 257, 263) === 'ustar\0';
    const prefix = ustar ? cstr(h, 345, 155) : '';
    const name = prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100);
    const over = { ...global, ...next };
    next = {};
    // Links, directories, devices and FIFOs carry no data; anything else has `size` bytes (pax may say more).
    if (!'123456'.includes(type)) skip = Math.ceil((over.size !== undefined ? Number(over.size) : size) / BLOCK) * BLOCK;
    if (!Number.isSafeInteger(skip) || skip < 0) throw new Error(`${over.path ?? cstr(h, 0, 100)} has a bad size`);
    return { path: over.path ?? name, type, linkpath: over.linkpath ?? cstr(h, 157, 100), mode: numeric(h, 100, 8) };
  };
  const metaDone = (data: Buffer, m: { type: string }) => {
    if (m.type === 'x') Object.assign(next, paxRecords(data));
    else if (m.type === 'g') Object.assign(global, paxRecords(data));
    else next[m.type === 'L' ? 'path' : 'linkpath'] = cstr(data, 0, data.length);
  };
  return {
    push(chunk: Buffer): TarEntry[] {
      const found: TarEntry[] = [];
      pending = Buffer.concat([pending, chunk]);
      while (!ended) {
        if (skip > 0) {
          const n = Math.min(skip, pending.length);
          pending = pending.subarray(n);
          skip -= n;
          if (skip > 0) break;
        } else if (meta) {
          const padded = Math.ceil(meta.size / BLOCK) * BLOCK;
          if (pending.length < padded) break;
          metaDone(pending.subarray(0, meta.size), meta);
          pending = pending.subarray(padded);
          meta = undefined;
        } else {
          if (pending.length < BLOCK) break;
          const e = header(pending.subarray(0, BLOCK));
          pending = pending.subarray(BLOCK);
          if (e) found.push(e);
        }
      }
      return found;
    },
    get ended() {
      return ended;
    },
  };
}

/** Every entry of a gzipped tar archive, in order; a truncated or malformed one throws. */
export async function tarGzEntries(archive: Buffer): Promise<TarEntry[]> {
  const reader = headerReader();
  const entries: TarEntry[] = [];
  for await (const chunk of Readable.from([archive]).pipe(createGunzip())) {
    entries.push(...reader.push(chunk as Buffer));
    if (reader.ended) break;
  }
  if (!reader.ended) throw new Error('the archive ends before its end-of-archive marker');
  return entries;
}

const KIND: Record<string, string> = { '3': 'a character device', '4': 'a block device', '6': 'a FIFO' };

/** Pure: inside the target directory (relative, no `..` above it): the normalized path, else undefined. */
function inside(path: string): string | undefined {
  if (path.startsWith('/')) return undefined;
  const n = posix.normalize(path);
  return n === '..' || n.startsWith('../') ? undefined : n.replace(/\/$/, '');
}

/** Pure: what is wrong with one entry, given the symbolic links named before it. */
function entryProblem(e: TarEntry, links: Set<string>): string | undefined {
  if (e.path.startsWith('/')) return `${e.path} is an absolute path`;
  if (e.path.split('/').includes('..')) return `${e.path} names a parent directory (..)`;
  if (KIND[e.type]) return `${e.path} is ${KIND[e.type]}`;
  if (!'01257'.includes(e.type)) return `${e.path} has tar entry type ${JSON.stringify(e.type)}, not a file, directory or link`;
  const parts = e.path.split('/').filter((c) => c !== '' && c !== '.');
  for (let i = 1; i < parts.length; i++) {
    const through = parts.slice(0, i).join('/');
    if (links.has(through)) return `${e.path} is written through the link ${through}`;
  }
  // Lexically here; the unpacked tree is checked again with every link followed (builder/links.ts).
  if (e.type === '2' && (e.linkpath.startsWith('/') || inside(posix.join(posix.dirname(e.path), e.linkpath)) === undefined)) {
    return `${e.path} -> ${e.linkpath} points outside the source tree`;
  }
  if (e.type === '1' && (!inside(e.linkpath) || e.linkpath.split('/').includes('..'))) return `${e.path} is a hard link to ${e.linkpath}, outside the source tree`;
  return undefined;
}

/** Pure: what is wrong with an archive's entries (each naming its path), in order; empty when it may be unpacked. */
export function archiveProblems(entries: readonly TarEntry[]): string[] {
  const links = new Set<string>();
  const problems: string[] = [];
  for (const e of entries) {
    const problem = entryProblem(e, links);
    if (problem) problems.push(problem);
    if (e.type === '2') links.add(inside(e.path) ?? e.path);
  }
  return problems;
}
