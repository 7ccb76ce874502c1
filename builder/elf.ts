import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';
import { compareVersions, NUMERIC_VERSION, type CappedRead } from '../core/index.ts';
import { releaseFolders, type ReleaseContents } from './release-contents.ts';

/**
 * A small ELF reader: just what the release scan needs — DT_NEEDED sonames, DT_SONAME, and the
 * version names required from each library (`GLIBC_2.34`), from the section headers. Handles 32/64
 * bit and both byte orders; anything malformed yields an error, never a guess.
 */
export interface ElfInfo {
  bits: 32 | 64;
  littleEndian: boolean;
  machine: number;
  soname: string | undefined;
  needed: string[];
  /** library soname → version names required from it (`libc.so.6` → [`GLIBC_2.2.5`, `GLIBC_2.34`]). */
  versionsNeeded: Record<string, string[]>;
}

const SHT_DYNAMIC = 6;
const SHT_GNU_VERNEED = 0x6ffffffe;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_SONAME = 14n;

export class ElfError extends Error {}

export function isElf(buf: Buffer): boolean {
  return buf.length >= 4 && buf[0] === 0x7f && buf[1] === 0x45 && buf[2] === 0x4c && buf[3] === 0x46;
}

/** Bounds-checked reads of one ELF file, in its class and byte order. */
interface Reader {
  buf: Buffer;
  bits: 32 | 64;
  le: boolean;
  check(off: number, len: number): void;
  u16(off: number): number;
  u32(off: number): number;
  /** A 64-bit value as a number; refuses one above 2^53. */
  u64(off: number): number;
  /** An address-sized value (u32 or u64). */
  word(off: number): number;
}

function reader(buf: Buffer, bits: 32 | 64, le: boolean): Reader {
  const check = (off: number, len: number) => {
    if (off < 0 || len < 0 || off + len > buf.length) throw new ElfError(`truncated ELF (needs bytes ${off}..${off + len}, has ${buf.length})`);
  };
  const u32 = (o: number) => (check(o, 4), le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const u64 = (o: number) => {
    check(o, 8);
    const v = le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError('offset out of range');
    return Number(v);
  };
  return { buf, bits, le, check, u16: (o) => (check(o, 2), le ? buf.readUInt16LE(o) : buf.readUInt16BE(o)), u32, u64, word: bits === 64 ? u64 : u32 };
}

interface Section {
  type: number;
  offset: number;
  size: number;
  link: number;
  info: number;
}

function sectionHeaders(r: Reader, shoff: number, shentsize: number, shnum: number): Section[] {
  return Array.from({ length: shnum }, (_, i) => {
    const o = shoff + i * shentsize;
    return r.bits === 64
      ? { type: r.u32(o + 4), offset: r.u64(o + 24), size: r.u64(o + 32), link: r.u32(o + 40), info: r.u32(o + 44) }
      : { type: r.u32(o + 4), offset: r.u32(o + 16), size: r.u32(o + 20), link: r.u32(o + 24), info: r.u32(o + 28) };
  });
}

/** The NUL-terminated string at `off` in string table `sectionIndex`. */
function stringAt(r: Reader, sections: Section[], sectionIndex: number, off: number): string {
  const s = sections[sectionIndex];
  if (!s) throw new ElfError('string table index out of range');
  // The string and its NUL must lie inside the string table, not just somewhere in the file.
  if (off >= s.size) throw new ElfError('string offset out of range');
  const start = s.offset + off;
  r.check(start, 1);
  const limit = Math.min(s.offset + s.size, r.buf.length);
  const end = r.buf.subarray(0, limit).indexOf(0, start);
  if (end < 0) throw new ElfError('unterminated string');
  return r.buf.toString('latin1', start, end);
}

/** DT_NEEDED and DT_SONAME of every dynamic section. */
function dynamicEntries(r: Reader, sections: Section[]): { needed: string[]; soname: string | undefined } {
  const needed: string[] = [];
  let soname: string | undefined;
  const { buf, bits, le } = r;
  for (const s of sections.filter((x) => x.type === SHT_DYNAMIC)) {
    const entsize = bits === 64 ? 16 : 8;
    r.check(s.offset, s.size);
    for (let o = s.offset; o + entsize <= s.offset + s.size; o += entsize) {
      // d_tag is read whole (not through `word`, which refuses values above 2^53) and d_val only for
      // the tags we use: an unrelated entry holding a high address must not make the file unreadable.
      const tag = bits === 64 ? (le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o)) : BigInt(r.u32(o));
      if (tag === DT_NULL) break;
      if (tag === DT_NEEDED) needed.push(stringAt(r, sections, s.link, r.word(o + entsize / 2)));
      else if (tag === DT_SONAME) soname = stringAt(r, sections, s.link, r.word(o + entsize / 2));
    }
  }
  return { needed, soname };
}

/** The version names required from each library, from every .gnu.version_r section. */
function versionNeeds(r: Reader, sections: Section[]): Record<string, string[]> {
  const versionsNeeded: Record<string, string[]> = {};
  for (const s of sections.filter((x) => x.type === SHT_GNU_VERNEED)) {
    r.check(s.offset, s.size);
    // Every Verneed and Vernaux entry is 16 bytes and must lie inside the section; entries do not
    // overlap, so a section of n bytes holds at most n/16 of them. Counting them bounds the walk:
    // overlapping vn_next/vna_next chains would otherwise cost O(n²) (or, with a huge vn_cnt, hang).
    const end = s.offset + s.size;
    let budget = Math.floor(s.size / 16);
    const entry = (at: number) => {
      if (at + 16 > end) throw new ElfError('version entry outside .gnu.version_r');
      if (budget-- <= 0) throw new ElfError('too many version entries (cyclic or overlapping chain)');
    };
    let o = s.offset;
    for (let i = 0; i < s.info; i++) {
      entry(o);
      const cnt = r.u16(o + 2);
      const file = stringAt(r, sections, s.link, r.u32(o + 4));
      const aux = r.u32(o + 8);
      const next = r.u32(o + 12);
      const names = (versionsNeeded[file] ??= []);
      let a = o + aux;
      for (let j = 0; j < cnt; j++) {
        entry(a);
        names.push(stringAt(r, sections, s.link, r.u32(a + 8)));
        const an = r.u32(a + 12);
        if (an === 0) break;
        a += an;
      }
      if (next === 0) break;
      o += next;
    }
  }
  for (const k of Object.keys(versionsNeeded)) versionsNeeded[k] = [...new Set(versionsNeeded[k])].sort(compareVersionNames);
  return versionsNeeded;
}

export function parseElf(buf: Buffer): ElfInfo {
  if (!isElf(buf) || buf.length < 52) throw new ElfError('not an ELF file');
  const bits = buf[4] === 2 ? 64 : buf[4] === 1 ? 32 : 0;
  const le = buf[5] === 1 ? true : buf[5] === 2 ? false : undefined;
  if (!bits || le === undefined) throw new ElfError('unknown ELF class or byte order');
  const r = reader(buf, bits, le);
  const machine = r.u16(18);
  const shoff = bits === 64 ? r.u64(0x28) : r.u32(0x20);
  const shentsize = r.u16(bits === 64 ? 0x3a : 0x2e);
  const shnum = r.u16(bits === 64 ? 0x3c : 0x30);
  if (shoff === 0 || shnum === 0) return { bits, littleEndian: le, machine, soname: undefined, needed: [], versionsNeeded: {} };
  if (shentsize < (bits === 64 ? 64 : 40)) throw new ElfError('bad section header size');
  const sections = sectionHeaders(r, shoff, shentsize, shnum);
  const { needed, soname } = dynamicEntries(r, sections);
  return { bits, littleEndian: le, machine, soname, needed, versionsNeeded: versionNeeds(r, sections) };
}

const GLIBC_NAME = new RegExp(`^GLIBC_(${NUMERIC_VERSION})$`);

/** `GLIBC_2.34` → `2.34`; undefined for any other version name. */
const glibcVersion = (name: string) => GLIBC_NAME.exec(name)?.[1];

function compareVersionNames(a: string, b: string): number {
  const va = glibcVersion(a);
  const vb = glibcVersion(b);
  return va && vb ? compareVersions(va, vb) : a.localeCompare(b);
}

/** Highest `GLIBC_x.y` any of these ELF files requires, or undefined (musl, or no versioned symbols). */
export function maxGlibc(infos: readonly ElfInfo[]): string | undefined {
  let max: string | undefined;
  for (const info of infos) {
    for (const names of Object.values(info.versionsNeeded)) {
      for (const n of names) {
        const v = glibcVersion(n);
        if (v && (max === undefined || compareVersions(v, max) > 0)) max = v;
      }
    }
  }
  return max;
}

export interface ReleaseScan {
  elfFiles: string[];
  /** Highest glibc symbol version needed by any file (the artifact's real libc floor). */
  glibcNeeded: string | undefined;
  /** Sonames needed from the host: everything DT_NEEDED minus what the release ships itself. */
  sonames: string[];
  /** Files that looked like ELF but could not be parsed, with why. */
  unreadable: { file: string; error: string }[];
}

/** An ELF file larger than this is listed as unreadable, not read (beam.smp is tens of MiB). */
export const MAX_ELF_BYTES = 256 * 1024 ** 2;

/** A file of the release the scan also hands back (releases/start_erl.data), read up to `maxBytes`. */
export interface WantedFile {
  path: string;
  maxBytes: number;
}

/**
 * Consumes one tar entry (the archive reader needs each drained): its bytes when `keep(its first four
 * bytes)` says so and it has at most `max`, `'too large'` when kept but longer, else undefined.
 */
async function entryBytes(entry: AsyncIterable<unknown>, max: number, keep: (head: Buffer) => boolean): Promise<Buffer | 'too large' | undefined> {
  const chunks: Buffer[] = [];
  let have = 0;
  let kept: boolean | undefined;
  let dropped = false;
  for await (const data of entry) {
    const chunk = data as Buffer;
    have += chunk.length;
    if (dropped) continue;
    chunks.push(chunk);
    if (kept === undefined && have >= 4) kept = keep(Buffer.concat(chunks).subarray(0, 4));
    if (kept === false || have > max) {
      dropped = true;
      chunks.length = 0;
    }
  }
  kept ??= keep(Buffer.concat(chunks));
  if (!kept) return undefined;
  return have > max ? 'too large' : Buffer.concat(chunks);
}

/**
 * Scans the release as it ships: every regular ELF file in its tarball, which the build user packed
 * (builder/plan.ts tarCommand). The worker reads only that archive's bytes (opened without following
 * a link), never a path of the build's output: a link, FIFO or device there is an entry, never
 * followed or read. Also hands back `wanted` (a regular file, capped), or why it is not there, and
 * the applications and ERTS the release ships (from its folders' names, for the SBOM).
 */
export async function scanReleaseTarball(tarball: string, wanted: WantedFile): Promise<ReleaseArchiveScan> {
  const file = await open(tarball, constants.O_RDONLY | constants.O_NOFOLLOW);
  return scanReleaseArchive(file.createReadStream(), wanted);
}

/** What scanning a release's tarball found, and the sha256 and size of every byte it read. */
export interface ReleaseArchiveScan {
  scan: ReleaseScan;
  wanted: CappedRead;
  contents: ReleaseContents;
  archive: { sha256: string; size: number };
}

/** scanReleaseTarball's scan of a tarball's bytes as `source` gives them (a file still being written: builder/growing-file.ts). */
export async function scanReleaseArchive(source: Readable, wanted: WantedFile): Promise<ReleaseArchiveScan> {
  const infos = new Map<string, ElfInfo>();
  const elfFiles: string[] = [];
  const unreadable: ReleaseScan['unreadable'] = [];
  const shipped = new Set<string>();
  let found: CappedRead = { kind: 'missing' };
  const folders = releaseFolders();
  const ex = extract();
  const hash = createHash('sha256');
  let size = 0;
  const hashed = new Transform({
    transform(chunk: Buffer, _enc, next) {
      hash.update(chunk);
      size += chunk.length;
      next(null, chunk);
    },
  });
  const done = pipeline(source, hashed, createGunzip(), ex);
  done.catch(() => undefined); // its failure ends the loop below, and is thrown after it
  for await (const entry of ex) {
    const h = entry.header;
    const path = posix.normalize(h.name).replace(/^(\.\/)+|\/$/g, '');
    folders.add(path, h.type === 'directory');
    if (h.type === 'link') {
      // A hard link to a file packed before it: the same bytes under another name.
      if (infos.has(posix.normalize(h.linkname ?? '').replace(/^(\.\/)+/, ''))) {
        elfFiles.push(path);
        shipped.add(posix.basename(path));
      }
    }
    if (path === wanted.path) {
      const bytes = await entryBytes(entry, wanted.maxBytes, () => h.type === 'file');
      if (h.type !== 'file') found = { kind: 'refused', why: `is a ${h.type ?? 'special entry'}, not a regular file` };
      else found = bytes instanceof Buffer ? { kind: 'read', data: bytes } : { kind: 'refused', why: `is larger than ${wanted.maxBytes} bytes` };
      continue;
    }
    if (h.type !== 'file') {
      await entryBytes(entry, 0, () => false);
      continue;
    }
    const bytes = await entryBytes(entry, MAX_ELF_BYTES, isElf);
    if (bytes === undefined) continue;
    if (bytes === 'too large') {
      unreadable.push({ file: path, error: `larger than ${MAX_ELF_BYTES} bytes` });
      continue;
    }
    try {
      const info = parseElf(bytes);
      infos.set(path, info);
      elfFiles.push(path);
      shipped.add(posix.basename(path));
      if (info.soname) shipped.add(info.soname);
    } catch (err) {
      unreadable.push({ file: path, error: (err as Error).message });
    }
  }
  await done;
  const sonames = [...new Set([...infos.values()].flatMap((i) => i.needed))].filter((s) => !shipped.has(s)).sort();
  unreadable.sort((x, y) => (x.file < y.file ? -1 : x.file > y.file ? 1 : 0));
  return { scan: { elfFiles: elfFiles.sort(), glibcNeeded: maxGlibc([...infos.values()]), sonames, unreadable }, wanted: found, contents: folders.contents(), archive: { sha256: hash.digest('hex'), size } };
}
