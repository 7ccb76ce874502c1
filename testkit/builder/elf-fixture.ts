/**
 * Hand-built ELF images for the ELF reader's tests: an ELF header, program headers (PT_LOAD of the
 * whole file at vaddr 0, PT_DYNAMIC), a .dynstr, a .dynamic (DT_NEEDED…, DT_SONAME, extra entries,
 * DT_STRTAB/DT_STRSZ/DT_VERNEED/DT_VERNEEDNUM, DT_NULL), a .gnu.version_r (Verneed + Vernaux
 * entries), a .shstrtab and the section header table, in either class and byte order — complete
 * enough for readelf to read. Offsets of every part are returned so a test can corrupt one field
 * with `patch`.
 */
export interface ElfSpec {
  bits: 32 | 64;
  littleEndian: boolean;
  machine?: number;
  needed?: string[];
  soname?: string;
  /** One Verneed per entry, each with one Vernaux per name. */
  verneed?: { file: string; names: string[] }[];
  /** Extra dynamic entries placed after DT_SONAME, before DT_NULL. */
  extraDynamic?: [tag: bigint, value: bigint][];
  /** Strings to put into .dynstr that nothing references (to control offsets). */
  extraStrings?: string[];
  /** Replace the .gnu.version_r content with these bytes (and its sh_info with `verneedCount`). */
  verneedRaw?: Buffer;
  verneedCount?: number;
  /** Put the section header table right after the ELF header instead of at the end. */
  sectionsFirst?: boolean;
}

export interface BuiltElf {
  buf: Buffer;
  /** Offset of each string in .dynstr (relative to the section). */
  strings: Map<string, number>;
  dynstr: { offset: number; size: number };
  dynamic: { offset: number; size: number; entsize: number };
  verneed: { offset: number; size: number };
  shoff: number;
  shentsize: number;
  /** Offsets, inside a section header, of sh_offset, sh_size, sh_link, sh_info. */
  sh: { offset: number; size: number; link: number; info: number };
  /** Section indexes. */
  index: { dynstr: 1; dynamic: 2; verneed: 3; shstrtab: 4 };
  /** Offset of e_shoff, e_shentsize, e_shnum in the ELF header. */
  eh: { shoff: number; shentsize: number; shnum: number };
  patch: Patcher;
}

export interface Patcher {
  u8(off: number, v: number): void;
  u16(off: number, v: number): void;
  u32(off: number, v: number): void;
  u64(off: number, v: bigint): void;
  /** A 32-bit word in ELF32, a 64-bit word in ELF64. */
  word(off: number, v: bigint | number): void;
}

export const SHT_STRTAB = 3;
export const SHT_DYNAMIC = 6;
export const SHT_GNU_VERNEED = 0x6ffffffe;
export const DT_NULL = 0n;
export const DT_NEEDED = 1n;
export const DT_SONAME = 14n;

const align = (n: number, a: number) => Math.ceil(n / a) * a;

export function patcher(buf: Buffer, bits: 32 | 64, le: boolean): Patcher {
  const p: Patcher = {
    u8: (o, v) => void buf.writeUInt8(v, o),
    u16: (o, v) => void (le ? buf.writeUInt16LE(v, o) : buf.writeUInt16BE(v, o)),
    u32: (o, v) => void (le ? buf.writeUInt32LE(v >>> 0, o) : buf.writeUInt32BE(v >>> 0, o)),
    u64: (o, v) => void (le ? buf.writeBigUInt64LE(BigInt.asUintN(64, v), o) : buf.writeBigUInt64BE(BigInt.asUintN(64, v), o)),
    word: (o, v) => (bits === 64 ? p.u64(o, BigInt(v)) : p.u32(o, Number(BigInt.asUintN(32, BigInt(v))))),
  };
  return p;
}

/** GNU's ELF hash (vna_hash), so the Vernaux entries are realistic. */
function elfHash(name: string): number {
  let h = 0;
  for (const c of Buffer.from(name, 'latin1')) {
    h = ((h << 4) + c) >>> 0;
    const g = h & 0xf0000000;
    if (g) h ^= g >>> 24;
    h &= ~g >>> 0;
  }
  return h >>> 0;
}

export function buildElf(spec: ElfSpec): BuiltElf {
  const { bits, littleEndian: le } = spec;
  const needed = spec.needed ?? [];
  const verneed = spec.verneed ?? [];
  const ehsize = bits === 64 ? 64 : 52;
  const shentsize = bits === 64 ? 64 : 40;
  const shnum = 5;
  const phentsize = bits === 64 ? 56 : 32;
  const phnum = 2;
  const dynEnt = bits === 64 ? 16 : 8;

  // .dynstr
  const strings = new Map<string, number>();
  const parts: Buffer[] = [Buffer.from([0])];
  let strLen = 1;
  const addStr = (s: string) => {
    if (strings.has(s)) return;
    strings.set(s, strLen);
    const b = Buffer.from(`${s}\0`, 'latin1');
    parts.push(b);
    strLen += b.length;
  };
  for (const s of spec.extraStrings ?? []) addStr(s);
  for (const s of needed) addStr(s);
  if (spec.soname !== undefined) addStr(spec.soname);
  for (const v of verneed) {
    addStr(v.file);
    for (const n of v.names) addStr(n);
  }
  const dynstrBytes = Buffer.concat(parts);


  // .gnu.version_r
  let verneedBytes: Buffer;
  let verneedCount: number;
  if (spec.verneedRaw) {
    verneedBytes = spec.verneedRaw;
    verneedCount = spec.verneedCount ?? 1;
  } else {
    const total = verneed.reduce((n, v) => n + 16 * (1 + v.names.length), 0);
    verneedBytes = Buffer.alloc(total);
    const vp = patcher(verneedBytes, bits, le);
    let o = 0;
    verneed.forEach((v, i) => {
      const size = 16 * (1 + v.names.length);
      vp.u16(o, 1); // vn_version
      vp.u16(o + 2, v.names.length); // vn_cnt
      vp.u32(o + 4, strings.get(v.file)!); // vn_file
      vp.u32(o + 8, v.names.length ? 16 : 0); // vn_aux
      vp.u32(o + 12, i === verneed.length - 1 ? 0 : size); // vn_next
      v.names.forEach((n, j) => {
        const a = o + 16 * (1 + j);
        vp.u32(a, elfHash(n)); // vna_hash
        vp.u16(a + 4, 0); // vna_flags
        vp.u16(a + 6, 2 + j); // vna_other
        vp.u32(a + 8, strings.get(n)!); // vna_name
        vp.u32(a + 12, j === v.names.length - 1 ? 0 : 16); // vna_next
      });
      o += size;
    });
    verneedCount = spec.verneedCount ?? verneed.length;
  }

  // .shstrtab
  const names = ['', '.dynstr', '.dynamic', '.gnu.version_r', '.shstrtab'];
  const shstrtab = Buffer.from(names.map((n) => `${n}\0`).join(''), 'latin1');
  const nameOff = (i: number) => names.slice(0, i).reduce((n, x) => n + x.length + 1, 0);

  // .dynamic entries (DT_STRTAB etc. are filled in once the layout is known)
  const dynCount = needed.length + (spec.soname !== undefined ? 1 : 0) + (spec.extraDynamic?.length ?? 0) + 5;

  // layout (vaddr = file offset)
  let cursor = ehsize;
  const phoff = cursor;
  cursor += phnum * phentsize;
  let shoff = 0;
  if (spec.sectionsFirst) {
    shoff = align(cursor, 8);
    cursor = shoff + shnum * shentsize;
  }
  const dynstrOff = cursor;
  cursor += dynstrBytes.length;
  const dynamicOff = align(cursor, 8);
  cursor = dynamicOff + dynCount * dynEnt;
  const verneedOff = align(cursor, 8);
  cursor = verneedOff + verneedBytes.length;
  const shstrtabOff = cursor;
  cursor += shstrtab.length;
  if (!spec.sectionsFirst) {
    shoff = align(cursor, 8);
    cursor = shoff + shnum * shentsize;
  }
  const buf = Buffer.alloc(cursor);
  const dyn: [bigint, bigint][] = [
    ...needed.map((n): [bigint, bigint] => [DT_NEEDED, BigInt(strings.get(n)!)]),
    ...(spec.soname !== undefined ? [[DT_SONAME, BigInt(strings.get(spec.soname)!)] as [bigint, bigint]] : []),
    ...(spec.extraDynamic ?? []),
    [5n, BigInt(dynstrOff)], // DT_STRTAB
    [10n, BigInt(dynstrBytes.length)], // DT_STRSZ
    [0x6ffffffen, BigInt(verneedOff)], // DT_VERNEED
    [0x6fffffffn, BigInt(verneedCount)], // DT_VERNEEDNUM
    [DT_NULL, 0n],
  ];
  const p = patcher(buf, bits, le);

  // ELF header
  buf.set([0x7f, 0x45, 0x4c, 0x46, bits === 64 ? 2 : 1, le ? 1 : 2, 1, 0], 0);
  p.u16(16, 3); // e_type ET_DYN
  p.u16(18, spec.machine ?? (bits === 64 ? 62 : 3));
  p.u32(20, 1); // e_version
  const eh =
    bits === 64
      ? { phoff: 0x20, shoff: 0x28, ehsize: 0x34, phentsize: 0x36, phnum: 0x38, shentsize: 0x3a, shnum: 0x3c, shstrndx: 0x3e }
      : { phoff: 0x1c, shoff: 0x20, ehsize: 0x28, phentsize: 0x2a, phnum: 0x2c, shentsize: 0x2e, shnum: 0x30, shstrndx: 0x32 };
  p.word(eh.phoff, phoff);
  p.word(eh.shoff, shoff);
  p.u16(eh.ehsize, ehsize);
  p.u16(eh.phentsize, phentsize);
  p.u16(eh.phnum, phnum);
  p.u16(eh.shentsize, shentsize);
  p.u16(eh.shnum, shnum);
  p.u16(eh.shstrndx, 4);

  // program headers: PT_LOAD (whole file, R), PT_DYNAMIC
  const ph = bits === 64 ? { flags: 4, offset: 8, vaddr: 16, paddr: 24, filesz: 32, memsz: 40, align: 48 } : { offset: 4, vaddr: 8, paddr: 12, filesz: 16, memsz: 20, flags: 24, align: 28 };
  const segment = (i: number, type: number, offset: number, size: number, flags: number, alignment: number) => {
    const o = phoff + i * phentsize;
    p.u32(o, type);
    p.u32(o + ph.flags, flags);
    for (const f of [ph.offset, ph.vaddr, ph.paddr]) p.word(o + f, offset);
    p.word(o + ph.filesz, size);
    p.word(o + ph.memsz, size);
    p.word(o + ph.align, alignment);
  };
  segment(0, 1, 0, buf.length, 4, 0x1000);
  segment(1, 2, dynamicOff, dyn.length * dynEnt, 6, bits / 8);

  dynstrBytes.copy(buf, dynstrOff);
  dyn.forEach(([tag, val], i) => {
    p.word(dynamicOff + i * dynEnt, tag);
    p.word(dynamicOff + i * dynEnt + dynEnt / 2, val);
  });
  verneedBytes.copy(buf, verneedOff);
  shstrtab.copy(buf, shstrtabOff);

  const sh =
    bits === 64
      ? { type: 4, flags: 8, addr: 16, offset: 24, size: 32, link: 40, info: 44, align: 48, entsize: 56 }
      : { type: 4, flags: 8, addr: 12, offset: 16, size: 20, link: 24, info: 28, align: 32, entsize: 36 };
  const section = (i: number, type: number, offset: number, size: number, link: number, info: number, entsize: number) => {
    const o = shoff + i * shentsize;
    p.u32(o, nameOff(i));
    p.u32(o + sh.type, type);
    if (i !== 4) p.word(o + sh.flags, 2); // SHF_ALLOC
    if (i !== 4) p.word(o + sh.addr, offset);
    p.word(o + sh.offset, offset);
    p.word(o + sh.size, size);
    p.u32(o + sh.link, link);
    p.u32(o + sh.info, info);
    p.word(o + sh.align, type === SHT_STRTAB ? 1 : bits / 8);
    p.word(o + sh.entsize, entsize);
  };
  section(1, SHT_STRTAB, dynstrOff, dynstrBytes.length, 0, 0, 0);
  section(2, SHT_DYNAMIC, dynamicOff, dyn.length * dynEnt, 1, 0, dynEnt);
  section(3, SHT_GNU_VERNEED, verneedOff, verneedBytes.length, 1, verneedCount, 0);
  section(4, SHT_STRTAB, shstrtabOff, shstrtab.length, 0, 0, 0);

  return {
    buf,
    strings,
    dynstr: { offset: dynstrOff, size: dynstrBytes.length },
    dynamic: { offset: dynamicOff, size: dyn.length * dynEnt, entsize: dynEnt },
    verneed: { offset: verneedOff, size: verneedBytes.length },
    shoff,
    shentsize,
    sh: { offset: sh.offset, size: sh.size, link: sh.link, info: sh.info },
    index: { dynstr: 1, dynamic: 2, verneed: 3, shstrtab: 4 },
    eh: { shoff: eh.shoff, shentsize: eh.shentsize, shnum: eh.shnum },
    patch: p,
  };
}

/** Offset of field `field` (from BuiltElf.sh) in section header `index`. */
export function shField(elf: BuiltElf, index: number, field: number): number {
  return elf.shoff + index * elf.shentsize + field;
}
