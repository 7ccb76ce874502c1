import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ElfError, isElf, maxGlibc, parseElf, scanReleaseArchive, scanReleaseTarball } from '../../../builder/elf.ts';
import { readWhileWritten } from '../../../builder/growing-file.ts';
import type { ElfInfo } from '../../../builder/elf.ts';
import { compareVersions } from '../../../core/index.ts';
import { buildElf, shField } from '../../../testkit/builder/elf-fixture.ts';
import type { ElfSpec } from '../../../testkit/builder/elf-fixture.ts';

// ---------------------------------------------------------------------------------------------
// Real files of this machine, and readelf as the reference
// ---------------------------------------------------------------------------------------------

const READELF = '/usr/bin/readelf';
const hasReadelf = existsSync(READELF);

function firstMatch(dir: string, re: RegExp): string | undefined {
  try {
    const hit = readdirSync(dir).filter((n) => re.test(n)).sort()[0];
    return hit === undefined ? undefined : join(dir, hit);
  } catch {
    return undefined;
  }
}

const multiarch = firstMatch('/usr/lib', /^x86_64-linux-gnu$|^aarch64-linux-gnu$|-linux-gnu$/) ?? '/usr/lib/x86_64-linux-gnu';
const ertsDir = firstMatch('/usr/lib/erlang', /^erts-\d/);
const cryptoApp = firstMatch('/usr/lib/erlang/lib', /^crypto-\d/);

const REAL = {
  sh: '/bin/sh',
  ls: '/usr/bin/ls',
  true: '/usr/bin/true',
  readelf: READELF,
  libcrypto: join(multiarch, 'libcrypto.so.3'),
  libssl: join(multiarch, 'libssl.so.3'),
  libc: join(multiarch, 'libc.so.6'),
  libstdcxx: join(multiarch, 'libstdc++.so.6'),
  libz: join(multiarch, 'libz.so.1'),
  libtinfo: join(multiarch, 'libtinfo.so.6'),
  beam: ertsDir ? join(ertsDir, 'bin', 'beam.smp') : '/usr/lib/erlang/erts-missing/bin/beam.smp',
  cryptoNif: cryptoApp ? join(cryptoApp, 'priv', 'lib', 'crypto.so') : '/usr/lib/erlang/lib/crypto-missing/priv/lib/crypto.so',
};

interface ReadelfView {
  needed: string[];
  soname: string | undefined;
  versions: Record<string, Set<string>>;
}

function readelf(args: string[], file: string): string {
  return execFileSync(READELF, [...args, file], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 64 << 20 });
}

/** NEEDED / SONAME from `readelf -dW`, version names per file from `readelf -VW`'s .gnu.version_r. */
function readelfView(file: string): ReadelfView {
  const needed: string[] = [];
  let soname: string | undefined;
  for (const line of readelf(['-dW'], file).split('\n')) {
    const n = /\(NEEDED\)\s+Shared library: \[(.*)\]$/.exec(line);
    if (n) needed.push(n[1]!);
    const s = /\(SONAME\)\s+Library soname: \[(.*)\]$/.exec(line);
    if (s) soname = s[1]!;
  }
  const versions: Record<string, Set<string>> = {};
  let inNeeds = false;
  let current: Set<string> | undefined;
  for (const line of readelf(['-VW'], file).split('\n')) {
    if (/^Version \w+ section '/.test(line)) {
      inNeeds = line.startsWith("Version needs section '.gnu.version_r'");
      current = undefined;
      continue;
    }
    if (!inNeeds) continue;
    const f = /^\s+[0-9a-fx]+: Version: \d+\s+File: (\S+)\s+Cnt: \d+/.exec(line);
    if (f) {
      current = versions[f[1]!] ??= new Set();
      continue;
    }
    const v = /^\s+0x[0-9a-f]+:\s+Name: (\S+)\s+Flags:/.exec(line);
    if (v && current) current.add(v[1]!);
  }
  return { needed, soname, versions };
}

function asSets(info: ElfInfo): Record<string, Set<string>> {
  return Object.fromEntries(Object.entries(info.versionsNeeded).map(([k, v]) => [k, new Set(v)]));
}

describe('parseElf on real files, cross-checked against readelf', () => {
  const files = Object.entries(REAL);

  it.skipIf(!hasReadelf || !existsSync(multiarch))('finds at least 8 of the reference ELF files on this machine', () => {
    expect(files.filter(([, f]) => existsSync(f)).length).toBeGreaterThanOrEqual(8);
  });

  for (const [name, file] of files) {
    it.skipIf(!hasReadelf || !existsSync(file))(`reads the same DT_NEEDED list, DT_SONAME and needed version names as readelf for ${name} (${file})`, () => {
      const buf = readFileSync(file);
      const info = parseElf(buf);
      const ref = readelfView(file);
      expect(ref.needed.length + Object.keys(ref.versions).length).toBeGreaterThan(0); // the parse of readelf worked
      expect(info.needed).toEqual(ref.needed);
      expect(info.soname).toEqual(ref.soname);
      expect(asSets(info)).toEqual(ref.versions);
      expect(info.bits).toBe(buf[4] === 2 ? 64 : 32);
      expect(info.littleEndian).toBe(buf[5] === 1);
      for (const names of Object.values(info.versionsNeeded)) expect(names).toEqual([...new Set(names)]);
    });
  }
});

describe('what the installed OTP needs from the host', () => {
  it.skipIf(!existsSync(REAL.beam))('beam.smp needs at most GLIBC 2.34 and needs libtinfo.so.6', () => {
    const info = parseElf(readFileSync(REAL.beam));
    const glibc = maxGlibc([info]);
    expect(glibc).toBeDefined();
    expect(compareVersions(glibc!, '2.34')).toBeLessThanOrEqual(0);
    expect(info.needed).toContain('libtinfo.so.6');
    expect(info.needed).toContain('libc.so.6');
    expect(Object.keys(info.versionsNeeded)).toContain('libc.so.6');
  });

  it.skipIf(!existsSync(REAL.beam) || !/erts-13\.1\.5$/.test(dirname(dirname(REAL.beam))))('bookworm ERTS 13.1.5 beam.smp needs exactly GLIBC 2.34, as FACTS.md#where-a-release-runs says', () => {
    expect(maxGlibc([parseElf(readFileSync(REAL.beam))])).toBe('2.34');
  });

  it.skipIf(!existsSync(REAL.cryptoNif))('crypto.so needs libcrypto.so.3', () => {
    const info = parseElf(readFileSync(REAL.cryptoNif));
    expect(info.needed).toContain('libcrypto.so.3');
    expect(info.soname).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// maxGlibc
// ---------------------------------------------------------------------------------------------

function info(versionsNeeded: Record<string, string[]>): ElfInfo {
  return { bits: 64, littleEndian: true, machine: 62, soname: undefined, needed: Object.keys(versionsNeeded), versionsNeeded };
}

describe('maxGlibc', () => {
  it('is undefined when nothing needs a GLIBC version (musl, or no versioned symbols)', () => {
    expect(maxGlibc([])).toBeUndefined();
    expect(maxGlibc([info({}), info({ 'libc.musl-x86_64.so.1': [] })])).toBeUndefined();
  });

  it('compares versions numerically per component, not as strings', () => {
    expect(maxGlibc([info({ 'libc.so.6': ['GLIBC_2.9', 'GLIBC_2.10'] })])).toBe('2.10');
    expect(maxGlibc([info({ 'libc.so.6': ['GLIBC_2.3.4', 'GLIBC_2.34', 'GLIBC_2.2.5'] })])).toBe('2.34');
    expect(maxGlibc([info({ 'libc.so.6': ['GLIBC_2.3', 'GLIBC_2.3.4'] })])).toBe('2.3.4');
  });

  it('takes the maximum over every file and every needed library (libm, ld-linux too)', () => {
    const infos = [info({ 'libc.so.6': ['GLIBC_2.17'] }), info({ 'libm.so.6': ['GLIBC_2.29'], 'libc.so.6': ['GLIBC_2.14'] })];
    expect(maxGlibc(infos)).toBe('2.29');
  });

  it('ignores GLIBC_PRIVATE, GLIBCXX_, CXXABI_, GCC_ and other non-glibc version names', () => {
    const i = info({
      'libc.so.6': ['GLIBC_2.2.5', 'GLIBC_PRIVATE'],
      'libstdc++.so.6': ['GLIBCXX_3.4.29', 'CXXABI_1.3.9'],
      'libgcc_s.so.1': ['GCC_12.0.0'],
      'libz.so.1': ['ZLIB_1.2.9'],
    });
    expect(maxGlibc([i])).toBe('2.2.5');
  });
});

// ---------------------------------------------------------------------------------------------
// Synthetic ELF images
// ---------------------------------------------------------------------------------------------

const sample = (bits: 32 | 64, littleEndian: boolean, extra: Partial<ElfSpec> = {}): ElfSpec => ({
  bits,
  littleEndian,
  needed: ['libfoo.so.1', 'libc.so.6'],
  soname: 'libself.so.2',
  verneed: [{ file: 'libc.so.6', names: ['GLIBC_2.34', 'GLIBC_2.2.5'] }],
  ...extra,
});

/** Either returns or throws ElfError; anything else (RangeError, TypeError…) is rethrown. */
function parseOrElfError(buf: Buffer): ElfInfo | ElfError {
  try {
    return parseElf(buf);
  } catch (err) {
    if (err instanceof ElfError) return err;
    throw err;
  }
}

describe('parseElf on hand-built images', () => {
  const variants = [
    [32, true, 'ELF32 little-endian', 3],
    [64, false, 'ELF64 big-endian', 43],
    [32, false, 'ELF32 big-endian', 20],
    [64, true, 'ELF64 little-endian', 62],
  ] as const;

  for (const [bits, le, label, machine] of variants) {
    it(`reads DT_NEEDED, DT_SONAME and the Verneed/Vernaux names of an ${label} file`, () => {
      const { buf } = buildElf(sample(bits, le, { machine }));
      expect(parseElf(buf)).toEqual({
        bits,
        littleEndian: le,
        machine,
        soname: 'libself.so.2',
        needed: ['libfoo.so.1', 'libc.so.6'],
        versionsNeeded: { 'libc.so.6': ['GLIBC_2.2.5', 'GLIBC_2.34'] },
      });
    });
  }

  it('reads several Verneed entries, merges repeats of one file and sorts GLIBC versions numerically', () => {
    const { buf } = buildElf(
      sample(64, true, {
        verneed: [
          { file: 'libc.so.6', names: ['GLIBC_2.10', 'GLIBC_2.9'] },
          { file: 'libm.so.6', names: ['GLIBC_2.29'] },
          { file: 'libc.so.6', names: ['GLIBC_2.9', 'GLIBC_2.3.4'] },
        ],
      }),
    );
    expect(parseElf(buf).versionsNeeded).toEqual({ 'libc.so.6': ['GLIBC_2.3.4', 'GLIBC_2.9', 'GLIBC_2.10'], 'libm.so.6': ['GLIBC_2.29'] });
  });

  it('reads an ELF without DT_SONAME or version requirements (an executable)', () => {
    const { buf } = buildElf({ bits: 32, littleEndian: true, needed: ['libc.so.6'] });
    expect(parseElf(buf)).toMatchObject({ soname: undefined, needed: ['libc.so.6'], versionsNeeded: {} });
  });

  it('stops the dynamic section at DT_NULL even when entries follow', () => {
    const elf = buildElf(sample(64, true, { extraStrings: ['libghost.so.9'] }));
    // overwrite DT_SONAME with DT_NULL: the NEEDED before it count, the SONAME does not
    elf.patch.word(elf.dynamic.offset + 2 * elf.dynamic.entsize, 0);
    expect(parseElf(elf.buf)).toMatchObject({ needed: ['libfoo.so.1', 'libc.so.6'], soname: undefined });
  });

  it('returns empty results for an ELF without a section header table', () => {
    const elf = buildElf(sample(64, true));
    elf.patch.word(elf.eh.shoff, 0);
    expect(parseElf(elf.buf)).toMatchObject({ needed: [], soname: undefined, versionsNeeded: {} });
  });

  it('is not thrown off by an unrelated dynamic entry whose value does not fit a double (a 64-bit address)', () => {
    const { buf } = buildElf(sample(64, true, { extraDynamic: [[0x6ffffff0n, 0xffffffff80001000n], [0x6ffffef5n, 0xfffffffffffffff0n]] }));
    expect(parseElf(buf)).toMatchObject({ needed: ['libfoo.so.1', 'libc.so.6'], soname: 'libself.so.2' });
  });

  it.skipIf(!hasReadelf)('builds images that readelf reads the same way (the fixture is sound)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xamal-elf-fixture-'));
    try {
      for (const [bits, le] of [[32, true], [64, false]] as const) {
        const file = join(dir, `x${bits}${le ? 'le' : 'be'}.so`);
        writeFileSync(file, buildElf(sample(bits, le)).buf);
        const ref = readelfView(file);
        const got = parseElf(readFileSync(file));
        expect(got.needed).toEqual(ref.needed);
        expect(got.soname).toEqual(ref.soname);
        expect(asSets(got)).toEqual(ref.versions);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parseElf on malformed input', () => {
  it('recognises the ELF magic only as the four bytes 7f 45 4c 46', () => {
    expect(isElf(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))).toBe(true);
    expect(isElf(Buffer.from([0x7f, 0x45, 0x4c]))).toBe(false);
    expect(isElf(Buffer.from([0x7f, 0x45, 0x4c, 0x47]))).toBe(false);
    expect(isElf(Buffer.from('ELF\x7f'))).toBe(false);
  });

  it('rejects non-ELF buffers with ElfError', () => {
    for (const b of [
      Buffer.alloc(0),
      Buffer.from('\x7fEL'),
      Buffer.from('#!/bin/sh\necho hello\n'.repeat(5)),
      Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x47]), Buffer.alloc(60)]),
      Buffer.alloc(64),
    ]) {
      expect(() => parseElf(b)).toThrow(ElfError);
    }
  });

  it('rejects an unknown ELF class or byte order with ElfError', () => {
    const a = buildElf(sample(64, true)).buf;
    a[4] = 3;
    expect(() => parseElf(a)).toThrow(ElfError);
    const b = buildElf(sample(64, true)).buf;
    b[5] = 0;
    expect(() => parseElf(b)).toThrow(ElfError);
  });

  it('rejects a header too short for its class with ElfError', () => {
    const buf = buildElf(sample(64, true)).buf.subarray(0, 60);
    expect(() => parseElf(buf)).toThrow(ElfError);
  });

  for (const [bits, le] of [[32, true], [64, false], [64, true]] as const) {
    for (const sectionsFirst of [false, true]) {
      it(`throws only ElfError (or returns) when an ELF${bits} ${le ? 'LE' : 'BE'} image${sectionsFirst ? ' with the section table first' : ''} is cut at any point`, () => {
        const { buf } = buildElf(sample(bits, le, { sectionsFirst }));
        let errors = 0;
        for (let cut = 0; cut < buf.length; cut += cut < 80 ? 1 : 7) {
          const r = parseOrElfError(Buffer.from(buf.subarray(0, cut)));
          if (r instanceof ElfError) errors++;
        }
        expect(errors).toBeGreaterThan(0);
        expect(parseOrElfError(buf)).not.toBeInstanceOf(ElfError);
      });
    }
  }

  it('never returns a result from a truncated image that claims data past its end', () => {
    // With the section table first, the cut lands in string/dynamic/verneed data: every prefix shorter
    // than the last byte of .gnu.version_r must be refused, not half-read.
    const elf = buildElf(sample(64, true, { sectionsFirst: true }));
    for (let cut = 0; cut < elf.verneed.offset + elf.verneed.size; cut++) {
      expect(parseOrElfError(Buffer.from(elf.buf.subarray(0, cut))), `cut at ${cut}`).toBeInstanceOf(ElfError);
    }
  });

  it('rejects a DT_NEEDED string offset past the end of .dynstr with ElfError', () => {
    for (const [bits, le] of [[32, true], [64, false]] as const) {
      const elf = buildElf(sample(bits, le));
      elf.patch.word(elf.dynamic.offset + elf.dynamic.entsize / 2, elf.dynstr.size + 1000);
      expect(() => parseElf(elf.buf)).toThrow(ElfError);
      elf.patch.word(elf.dynamic.offset + elf.dynamic.entsize / 2, 0xffffffff);
      expect(() => parseElf(elf.buf)).toThrow(ElfError);
    }
  });

  it('rejects a string offset equal to the size of .dynstr even if a NUL byte follows the section', () => {
    // pick a .dynstr length that leaves alignment padding (NUL bytes) before .dynamic, as in real files
    const elf = ['', 'a', 'ab', 'abc', 'abcd', 'abcde', 'abcdef', 'abcdefg']
      .map((x) => buildElf(sample(64, true, { extraStrings: [x] })))
      .find((e) => e.dynamic.offset > e.dynstr.offset + e.dynstr.size)!;
    expect(elf.buf[elf.dynstr.offset + elf.dynstr.size]).toBe(0);
    elf.patch.word(elf.dynamic.offset + elf.dynamic.entsize / 2, elf.dynstr.size);
    expect(() => parseElf(elf.buf)).toThrow(ElfError);
  });

  it('rejects a string whose terminating NUL lies outside its string table', () => {
    const elf = buildElf(sample(32, true));
    // shrink .dynstr by one byte: the last string (GLIBC_2.2.5) loses its NUL
    elf.patch.u32(shField(elf, elf.index.dynstr, elf.sh.size), elf.dynstr.size - 1);
    expect(() => parseElf(elf.buf)).toThrow(ElfError);
  });

  it('rejects a string table index (sh_link) out of range with ElfError', () => {
    const elf = buildElf(sample(64, true));
    elf.patch.u32(shField(elf, elf.index.dynamic, elf.sh.link), 99);
    expect(() => parseElf(elf.buf)).toThrow(ElfError);
  });

  it('rejects a section table pointing past the end of the file with ElfError', () => {
    for (const [bits, le] of [[32, true], [64, false]] as const) {
      const elf = buildElf(sample(bits, le));
      elf.patch.word(elf.eh.shoff, elf.buf.length - 10);
      expect(() => parseElf(elf.buf)).toThrow(ElfError);
      elf.patch.word(elf.eh.shoff, 0xfffffff0);
      expect(() => parseElf(elf.buf)).toThrow(ElfError);
      elf.patch.word(elf.eh.shoff, elf.shoff);
      elf.patch.u16(elf.eh.shnum, 0xffff);
      expect(() => parseElf(elf.buf)).toThrow(ElfError);
    }
    const huge = buildElf(sample(64, true));
    huge.patch.u64(huge.eh.shoff, 0x7fff_ffff_ffff_fff0n);
    expect(() => parseElf(huge.buf)).toThrow(ElfError);
  });

  it('rejects a section header size smaller than the class needs with ElfError', () => {
    const elf = buildElf(sample(64, true));
    elf.patch.u16(elf.eh.shentsize, 40);
    expect(() => parseElf(elf.buf)).toThrow(ElfError);
  });

  it('rejects a section whose data lies past the end of the file with ElfError', () => {
    const elf = buildElf(sample(64, true));
    elf.patch.u64(shField(elf, elf.index.dynamic, elf.sh.size), BigInt(elf.buf.length));
    expect(() => parseElf(elf.buf)).toThrow(ElfError);
    const v = buildElf(sample(64, false));
    v.patch.u64(shField(v, v.index.verneed, v.sh.offset), BigInt(v.buf.length - 4));
    expect(() => parseElf(v.buf)).toThrow(ElfError);
  });

  it('rejects Verneed/Vernaux entries that point outside .gnu.version_r with ElfError', () => {
    // vn_aux pointing into the section header table: the bytes there must not be read as names
    const elf = buildElf(sample(64, true));
    elf.patch.u32(elf.verneed.offset + 8, elf.shoff - elf.verneed.offset);
    expect(() => parseElf(elf.buf)).toThrow(ElfError);
    // sh_info claims two Verneed entries and vn_next points past the section
    const n = buildElf(sample(32, true));
    n.patch.u32(shField(n, n.index.verneed, n.sh.info), 2);
    n.patch.u32(n.verneed.offset + 12, n.verneed.size);
    expect(() => parseElf(n.buf)).toThrow(ElfError);
  });

  it('terminates on a vn_next or vna_next that would loop back in 32-bit arithmetic (-16)', () => {
    const a = buildElf(sample(32, true, { verneedCount: 0xffffffff }));
    a.patch.u32(a.verneed.offset + 12, 0xfffffff0); // vn_next = -16: back onto itself
    expect(parseOrElfError(a.buf)).toBeInstanceOf(ElfError);
    const b = buildElf(sample(64, false));
    b.patch.u16(b.verneed.offset + 2, 0xffff); // vn_cnt
    b.patch.u32(b.verneed.offset + 16 + 16 + 12, 0xfffffff0); // second vna_next = -16: back to the first
    expect(parseOrElfError(b.buf)).toBeInstanceOf(ElfError);
  });

  it('terminates quickly on overlapping Verneed/Vernaux chains (vn_next into the previous entry’s aux list)', () => {
    // Every 16-byte record is at once a Verneed (vn_cnt = 65535, vn_aux = 16, vn_next = 16) and a
    // Vernaux (vna_name valid, vna_next = 16): walking each Verneed's full aux list from every record
    // is ~n²/2 string reads (billions) unless the walk is bounded by the section's size.
    const records = 2 * 65536;
    const raw = Buffer.alloc(records * 16);
    for (let r = 0; r < records; r++) {
      const o = r * 16;
      raw.writeUInt16LE(1, o);
      raw.writeUInt16LE(0xffff, o + 2);
      raw.writeUInt32LE(1, o + 4); // vn_file (also vna_flags/vna_other): "libc.so.6"
      raw.writeUInt32LE(16, o + 8); // vn_aux / vna_name (offset 16 in .dynstr)
      raw.writeUInt32LE(16, o + 12); // vn_next / vna_next
    }
    const { buf } = buildElf({
      bits: 64,
      littleEndian: true,
      extraStrings: ['libc.so.6', 'GLIBC_2.34'], // offsets 1 and 11; 16 falls inside "GLIBC_2.34"
      verneedRaw: raw,
      verneedCount: records,
    });
    const t0 = performance.now();
    parseOrElfError(buf);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('never loops forever when sh_info claims more Verneed entries than the chain has', () => {
    const elf = buildElf(sample(64, true, { verneedCount: 0xffffffff }));
    expect(parseElf(elf.buf).versionsNeeded).toEqual({ 'libc.so.6': ['GLIBC_2.2.5', 'GLIBC_2.34'] });
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzzing a real ELF
// ---------------------------------------------------------------------------------------------

/** [offset, size] of the parts the reader looks at, from readelf -SW/-hW. */
function structuralRanges(file: string): [number, number][] {
  const ranges: [number, number][] = [[0, 64]];
  const h = readelf(['-hW'], file);
  const shoff = Number(/Start of section headers:\s+(\d+)/.exec(h)?.[1]);
  const shnum = Number(/Number of section headers:\s+(\d+)/.exec(h)?.[1]);
  const shsize = Number(/Size of section headers:\s+(\d+)/.exec(h)?.[1]);
  if (shoff && shnum && shsize) ranges.push([shoff, shnum * shsize]);
  for (const line of readelf(['-SW'], file).split('\n')) {
    const m = /\]\s+(\.dynstr|\.dynamic|\.gnu\.version_r)\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)/.exec(line);
    if (m) ranges.push([parseInt(m[2]!, 16), parseInt(m[3]!, 16)]);
  }
  return ranges;
}

describe('parseElf under fuzzing', () => {
  const target = existsSync(REAL.true) ? REAL.true : REAL.sh;

  it.skipIf(!existsSync(target) || !hasReadelf)(
    `returns or throws ElfError, never another error and never hangs, when random bytes of ${basename(target)} are flipped`,
    () => {
      const original = readFileSync(target);
      const ranges = structuralRanges(target);
      const offsetIn = ([start, size]: [number, number]) => fc.integer({ min: start, max: Math.min(start + size, original.length) - 1 });
      const offset = fc.oneof({ arbitrary: fc.integer({ min: 0, max: original.length - 1 }), weight: 1 }, ...ranges.map((r) => ({ arbitrary: offsetIn(r), weight: 2 })));
      const flips = fc.array(fc.tuple(offset, fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 16 });
      let returned = 0;
      let refused = 0;
      const t0 = performance.now();
      fc.assert(
        fc.property(flips, (fl) => {
          const buf = Buffer.from(original);
          for (const [o, x] of fl) buf[o] = buf[o]! ^ x;
          const start = performance.now();
          const r = parseOrElfError(buf); // rethrows anything but ElfError → the property fails
          expect(performance.now() - start).toBeLessThan(1000);
          if (r instanceof ElfError) refused++;
          else returned++;
        }),
        { numRuns: 300 },
      );
      expect(returned + refused).toBeGreaterThanOrEqual(300);
      expect(refused).toBeGreaterThan(0);
      expect(performance.now() - t0).toBeLessThan(20_000);
    },
    30_000,
  );
});

// ---------------------------------------------------------------------------------------------
// scanReleaseTarball
// ---------------------------------------------------------------------------------------------

const START_ERL = { path: 'releases/start_erl.data', maxBytes: 64 };

/** Packs `dir` the way the build does (`tar -C dir … .`), then scans the tarball. */
async function packAndScan(dir: string) {
  const tarball = join(mkdtempSync(join(tmpdir(), 'xamal-tgz-')), 'release.tar.gz');
  execFileSync('tar', ['-C', dir, '--use-compress-program=gzip -1', '-cf', tarball, '.']);
  try {
    return await scanReleaseTarball(tarball, START_ERL);
  } finally {
    rmSync(dirname(tarball), { recursive: true, force: true });
  }
}
/** Each directory is packed and scanned once (beam.smp and libcrypto make a large tarball). */
const scans = new Map<string, Promise<Awaited<ReturnType<typeof packAndScan>>>>();
const scanRelease = async (dir: string) => {
  if (!scans.has(dir)) scans.set(dir, packAndScan(dir));
  return (await scans.get(dir)!).scan;
};

describe('scanReleaseTarball on a packed release', () => {
  const needFiles = [REAL.libcrypto, REAL.beam, REAL.cryptoNif, REAL.ls, REAL.libz];
  const canRun = hasReadelf && needFiles.every((f) => existsSync(f));
  let root = '';
  let outside = '';

  beforeAll(() => {
    if (!canRun) return;
    root = mkdtempSync(join(tmpdir(), 'xamal-release-'));
    outside = mkdtempSync(join(tmpdir(), 'xamal-outside-'));
    const put = (src: string, rel: string) => {
      mkdirSync(dirname(join(root, rel)), { recursive: true });
      copyFileSync(src, join(root, rel));
    };
    put(REAL.beam, 'erts-x/bin/beam.smp');
    put(REAL.cryptoNif, 'lib/crypto-x/priv/lib/crypto.so');
    // shipped under another file name: excluded by its DT_SONAME, not by its name
    put(REAL.libcrypto, 'lib/crypto-x/priv/lib/libcrypto-bundled.so');
    mkdirSync(join(root, 'releases/0.1.0'), { recursive: true });
    writeFileSync(join(root, 'releases/0.1.0/env.sh'), '#!/bin/sh\necho hi\n');
    mkdirSync(join(root, 'bin'), { recursive: true });
    writeFileSync(join(root, 'bin/app'), '#!/bin/sh\nexec erl "$@"\n');
    writeFileSync(join(root, 'lib/notes.txt'), 'plain text, no magic\n');
    writeFileSync(join(root, 'lib/fake-magic.bin'), Buffer.from([0x7f, 0x45, 0x4c, 0x47, 1, 2, 3, 4]));
    writeFileSync(join(root, 'lib/only-7f.bin'), Buffer.from([0x7f]));
    writeFileSync(join(root, 'lib/empty'), Buffer.alloc(0));
    // the full magic, then cut inside the header
    writeFileSync(join(root, 'lib/truncated.so'), readFileSync(REAL.libcrypto).subarray(0, 40));
    // symlinks are not followed: neither a linked file nor a linked directory is scanned
    mkdirSync(join(outside, 'bin'));
    copyFileSync(REAL.ls, join(outside, 'bin/ls')); // needs libselinux.so.1, which nothing else needs
    symlinkSync(join(outside, 'bin'), join(root, 'lib/linked-dir'));
    symlinkSync(realpathSync(REAL.libz), join(root, 'lib/libz.so.1')); // would "ship" libz.so.1 if followed
    symlinkSync(join(outside, 'bin/ls'), join(root, 'erts-x/bin/ls'));
    symlinkSync(join(root, 'lib'), join(root, 'lib/loop')); // a cycle, if it were followed
  });

  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
    if (outside) rmSync(outside, { recursive: true, force: true });
  });

  it.skipIf(!canRun)('lists every regular ELF file, relative and sorted, and no text, fake-magic or symlinked file', async () => {
    const scan = await scanRelease(root);
    expect(scan.elfFiles).toEqual(['erts-x/bin/beam.smp', 'lib/crypto-x/priv/lib/crypto.so', 'lib/crypto-x/priv/lib/libcrypto-bundled.so']);
  });

  it.skipIf(!canRun)('reports sonames needed from the host minus those the release ships (by DT_SONAME), sorted', async () => {
    const scan = await scanRelease(root);
    const copied = [REAL.beam, REAL.cryptoNif, REAL.libcrypto].map(readelfView);
    const shipped = new Set(copied.map((v) => v.soname).filter((s) => s !== undefined));
    const expected = [...new Set(copied.flatMap((v) => v.needed))].filter((s) => !shipped.has(s)).sort();
    expect(scan.sonames).toEqual(expected);
    expect(scan.sonames).not.toContain('libcrypto.so.3');
    expect(scan.sonames).toContain('libtinfo.so.6');
    expect(scan.sonames).toContain('libc.so.6');
    expect(scan.sonames).toContain('libz.so.1'); // the symlink named libz.so.1 is not followed
    expect(scan.sonames).not.toContain('libselinux.so.1'); // nor is the linked directory
  });

  it.skipIf(!canRun)('reports the highest GLIBC version any scanned file needs', async () => {
    const scan = await scanRelease(root);
    const all = [REAL.beam, REAL.cryptoNif, REAL.libcrypto]
      .flatMap((f) => Object.values(readelfView(f).versions).flatMap((s) => [...s]))
      .map((n) => /^GLIBC_(\d+(?:\.\d+)*)$/.exec(n)?.[1])
      .filter((v) => v !== undefined)
      .sort(compareVersions);
    expect(scan.glibcNeeded).toBe(all.at(-1));
    expect(scan.glibcNeeded).toBe(maxGlibc([REAL.beam, REAL.cryptoNif, REAL.libcrypto].map((f) => parseElf(readFileSync(f)))));
  });

  it.skipIf(!canRun)('scanned while tar writes it, the tarball gives what scanning the finished file gives, and the sha256 and size of all its bytes', async () => {
    const tarball = join(mkdtempSync(join(tmpdir(), 'xamal-tgz-')), 'release.tar.gz');
    try {
      const packing = new Promise<void>((resolve, reject) => {
        execFile('tar', ['-C', root, '--use-compress-program=gzip -1', '-cf', tarball, '.'], (err) => (err ? reject(err) : resolve()));
      });
      const during = await scanReleaseArchive(readWhileWritten(tarball, packing, 1), START_ERL);
      const bytes = readFileSync(tarball);
      expect(during.archive).toEqual({ sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length });
      const after = await scanReleaseTarball(tarball, START_ERL);
      expect({ ...during, archive: undefined }).toEqual({ ...after, archive: undefined });
      expect(during.scan.elfFiles.length).toBe(3);
    } finally {
      rmSync(dirname(tarball), { recursive: true, force: true });
    }
  });

  it.skipIf(!canRun)('lists a file with the full ELF magic that cannot be parsed as unreadable, with the reason', async () => {
    const scan = await scanRelease(root);
    expect(scan.unreadable).toEqual([{ file: 'lib/truncated.so', error: expect.stringMatching(/truncated|ELF/) }]);
  });

  it('reports nothing for a release without ELF files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xamal-noelf-'));
    try {
      writeFileSync(join(dir, 'README'), 'hello');
      expect(await scanRelease(dir)).toEqual({ elfFiles: [], glibcNeeded: undefined, sonames: [], unreadable: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('scans hand-built ELF files of both classes and byte orders alongside each other', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xamal-synth-'));
    try {
      writeFileSync(join(dir, 'a.so'), buildElf(sample(32, true)).buf);
      writeFileSync(join(dir, 'b.so'), buildElf({ bits: 64, littleEndian: false, needed: ['libself.so.2', 'libbar.so.3'], verneed: [{ file: 'libc.so.6', names: ['GLIBC_2.38'] }] }).buf);
      // several unreadable files are reported in a stable (sorted) order
      const bad = buildElf(sample(64, true));
      bad.patch.word(bad.dynamic.offset + bad.dynamic.entsize / 2, 1_000_000);
      writeFileSync(join(dir, 'z-bad.so'), bad.buf);
      writeFileSync(join(dir, 'm-bad.so'), bad.buf);
      writeFileSync(join(dir, 'c-bad.so'), bad.buf);
      const scan = await scanRelease(dir);
      expect(scan).toEqual({
        elfFiles: ['a.so', 'b.so'],
        glibcNeeded: '2.38',
        sonames: ['libbar.so.3', 'libc.so.6', 'libfoo.so.1'],
        unreadable: [
          { file: 'c-bad.so', error: expect.any(String) },
          { file: 'm-bad.so', error: expect.any(String) },
          { file: 'z-bad.so', error: expect.any(String) },
        ],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('scanReleaseTarball reads the packed entries, never the paths they name', () => {
  let dir = '';
  let outside = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xamal-entries-'));
    outside = mkdtempSync(join(tmpdir(), 'xamal-canary-'));
    mkdirSync(join(dir, 'releases'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it('hands back start_erl.data when it is a regular file within its cap', async () => {
    writeFileSync(join(dir, 'releases/start_erl.data'), '13.1.5 0.1.0\n');
    expect((await packAndScan(dir)).wanted).toEqual({ kind: 'read', data: Buffer.from('13.1.5 0.1.0\n') });
  });

  it('refuses start_erl.data that is a link (to a canary outside), larger than its cap, a FIFO, or missing, naming why', async () => {
    writeFileSync(join(outside, 'canary'), 'secret 1.0\n');
    symlinkSync(join(outside, 'canary'), join(dir, 'releases/start_erl.data'));
    expect((await packAndScan(dir)).wanted).toEqual({ kind: 'refused', why: 'is a symlink, not a regular file' });
    rmSync(join(dir, 'releases/start_erl.data'));
    writeFileSync(join(dir, 'releases/start_erl.data'), 'x'.repeat(65));
    expect((await packAndScan(dir)).wanted).toEqual({ kind: 'refused', why: 'is larger than 64 bytes' });
    rmSync(join(dir, 'releases/start_erl.data'));
    execFileSync('mkfifo', [join(dir, 'releases/start_erl.data')]);
    expect((await packAndScan(dir)).wanted).toEqual({ kind: 'refused', why: 'is a fifo, not a regular file' });
    rmSync(join(dir, 'releases/start_erl.data'));
    expect((await packAndScan(dir)).wanted).toEqual({ kind: 'missing' });
  });

  it('lists a hard link to an ELF file under its own name too, and skips FIFOs without blocking', async () => {
    writeFileSync(join(dir, 'a.so'), buildElf(sample(64, true)).buf);
    linkSync(join(dir, 'a.so'), join(dir, 'b.so'));
    execFileSync('mkfifo', [join(dir, 'pipe')]);
    const scan = (await packAndScan(dir)).scan;
    expect(scan.elfFiles).toEqual(['a.so', 'b.so']);
    expect(scan.sonames).toEqual(['libc.so.6', 'libfoo.so.1']);
  });

  it('refuses a tarball path that is itself a symbolic link (ELOOP), reading nothing through it', async () => {
    writeFileSync(join(outside, 'real.tar.gz'), Buffer.alloc(0));
    symlinkSync(join(outside, 'real.tar.gz'), join(dir, 'release.tar.gz'));
    await expect(scanReleaseTarball(join(dir, 'release.tar.gz'), START_ERL)).rejects.toThrow(/ELOOP/);
  });

  it('throws on a truncated tarball instead of reporting a partial scan', async () => {
    writeFileSync(join(dir, 'a.so'), buildElf(sample(64, true)).buf);
    const tarball = join(outside, 'cut.tar.gz');
    execFileSync('tar', ['-C', dir, '-czf', tarball, '.']);
    writeFileSync(tarball, readFileSync(tarball).subarray(0, 100));
    await expect(scanReleaseTarball(tarball, START_ERL)).rejects.toThrow();
  });
});
