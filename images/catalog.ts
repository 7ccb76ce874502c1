import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import {
  ArchSchema,
  compareVersions,
  parseOrThrow,
  parseTarget,
  selectorMismatches,
  ValidationError,
  XamalError,
  type Arch,
  type Issue,
  type Target,
  type TargetSelector,
} from '../core/index.ts';
import { codenameInfo, DEBIAN_SUITES } from './distros.ts';
import { parseHexpmRef } from './hexpm-tag.ts';
import type { LockEntry, LockFile } from './lock.ts';
import { FLAVOURS } from './recipes/debian.ts';

/**
 * The catalog: which images the farm may build in. Hexpm entries are tags only (their digests come
 * from `xamal farm images pin`); recipe entries are built here from Debian suites.
 */
const ArchList = z.array(ArchSchema).min(1);

export const CatalogEntrySchema = z.discriminatedUnion('source', [
  z
    .object({
      source: z.literal('hexpm'),
      ref: z.string().superRefine((ref, ctx) => {
        try {
          parseHexpmRef(ref);
        } catch (err) {
          for (const i of (err as ValidationError).issues ?? [{ path: 'ref', message: String(err) }]) {
            ctx.addIssue({ code: 'custom', message: i.path === 'ref' ? i.message : `${i.path}: ${i.message}` });
          }
        }
      }),
      arches: ArchList.default(['x86_64', 'aarch64']),
    })
    .strict(),
  z
    .object({
      source: z.literal('recipe'),
      suite: z.enum(DEBIAN_SUITES),
      arches: ArchList,
      flavours: z.array(z.enum(FLAVOURS)).min(1).default(['builder', 'runtime']),
    })
    .strict(),
  /** A builder image of a Debian suite with OTP and Elixir compiled from source (images/toolchains.json). */
  z
    .object({
      source: z.literal('toolchain'),
      suite: z.enum(DEBIAN_SUITES),
      otp: z.string().regex(/^\d+(?:\.\d+){1,4}$/, 'expected an OTP release like 27.3.4.1'),
      elixir: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected an Elixir release like 1.18.3'),
      arches: ArchList,
    })
    .strict(),
]);
export type CatalogEntry = z.output<typeof CatalogEntrySchema>;

export const CatalogSchema = z.object({ $comment: z.string().optional(), images: z.array(CatalogEntrySchema) }).strict();
export type Catalog = z.output<typeof CatalogSchema>;

export const CATALOG_PATH = fileURLToPath(new URL('./catalog.json', import.meta.url));
export const COMMITTED_LOCK_PATH = fileURLToPath(new URL('./images.lock.json', import.meta.url));

export function parseCatalog(json: unknown, source = 'catalog'): Catalog {
  return parseOrThrow(CatalogSchema, json, `${source}: invalid image catalog`);
}

export async function readCatalog(path = CATALOG_PATH): Promise<Catalog> {
  const text = await readFile(path, 'utf8');
  try {
    return parseCatalog(JSON.parse(text), path);
  } catch (err) {
    if (err instanceof SyntaxError) throw new XamalError('validation', `${path}: not valid JSON (${err.message})`);
    throw err;
  }
}

/**
 * One usable image: a locked entry's platform with its probed tuple. Unprobed entries and platforms
 * other than the one the tuple was probed on have none.
 */
export interface CatalogImage {
  ref: string;
  digest: string;
  arch: Arch;
  tuple: string | undefined;
  source: LockEntry['source'];
  flavour: LockEntry['flavour'];
}

/**
 * An entry's probed tuple for one of its platforms: the platform's own (probed per platform), else
 * the entry's — a tuple names one arch, so other platforms have none.
 */
export function platformTuple(entry: Pick<LockEntry, 'tuple' | 'platforms'>, arch: Arch): string | undefined {
  const own = entry.platforms.find((p) => p.arch === arch)?.tuple;
  if (own) return own;
  if (!entry.tuple) return undefined;
  const parsed = parseTarget(entry.tuple);
  return parsed.ok && parsed.value.arch !== arch ? undefined : entry.tuple;
}

/** Every (locked image, platform) the farm could build in, from all locks. */
export function usableImages(locks: readonly LockFile[]): CatalogImage[] {
  return locks.flatMap((l) =>
    l.images.flatMap((e) =>
      e.platforms.map((p) => ({ ref: e.ref, digest: p.digest ?? e.digest, arch: p.arch, tuple: platformTuple(e, p.arch), source: e.source, flavour: e.flavour })),
    ),
  );
}

export interface LookupResult {
  matches: CatalogImage[];
  /** Every image that did not match, with why. */
  rejected: { image: CatalogImage; reasons: Issue[] }[];
}

/** Builder images whose probed tuple satisfies the selector, newest OTP/Elixir first. */
export function lookupBySelector(images: readonly CatalogImage[], selector: TargetSelector): LookupResult {
  const out: LookupResult = { matches: [], rejected: [] };
  const targets = new Map<CatalogImage, Target>();
  for (const image of images) {
    if (image.flavour !== 'builder') continue;
    if (!image.tuple) {
      out.rejected.push({ image, reasons: [{ path: 'tuple', message: 'not probed yet' }] });
      continue;
    }
    const parsed = parseTarget(image.tuple);
    if (!parsed.ok) {
      out.rejected.push({ image, reasons: parsed.issues.map((i) => ({ path: 'tuple', message: `${i.path}: ${i.message}` })) });
      continue;
    }
    const reasons = selectorMismatches(parsed.value, selector);
    if (reasons.length) out.rejected.push({ image, reasons });
    else {
      out.matches.push(image);
      targets.set(image, parsed.value);
    }
  }
  // By version, not by string: the tuple starts with the arch, and "otp9" > "otp10" as text.
  out.matches.sort((a, b) => {
    const ta = targets.get(a)!;
    const tb = targets.get(b)!;
    return compareVersions(tb.otp, ta.otp) || compareVersions(tb.elixir, ta.elixir) || a.tuple!.localeCompare(b.tuple!);
  });
  return out;
}

/** The distro a recipe suite produces (for messages and planning; the tuple still comes from the probe). */
export function suiteDistro(suite: string): string {
  const c = codenameInfo(suite);
  return c ? `${c.distro}${c.release}` : suite;
}
