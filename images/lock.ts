import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { ArchSchema, XamalError, issuesFromZod, readTextIfPresent, ValidationError, type Arch } from '../core/index.ts';
import { ImageFactsSchema } from './facts.ts';

export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const Digest = z.string().regex(DIGEST_RE, 'expected sha256:<64 hex>');

export const LockEntrySchema = z
  .object({
    /** The tag form, `repository:tag` — never a digest. */
    ref: z.string().regex(/^[a-z0-9._/:-]+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'expected repository:tag'),
    /** What the tag resolved to: an index (multi-arch) digest or a single manifest's. */
    digest: Digest,
    /**
     * Per-platform manifest digests (Docker 20.10 cannot pull one index digest for two platforms), and
     * each platform's probed tuple when the entry holds several (a hexpm tag: amd64 and arm64).
     */
    platforms: z.array(z.object({ arch: ArchSchema, digest: Digest.optional(), tuple: z.string().optional() }).strict()).min(1),
    resolvedAt: z.string().datetime(),
    source: z.enum(['hexpm', 'recipe', 'registry']),
    flavour: z.enum(['builder', 'runtime']).default('builder'),
    /** Probed facts (written when the image was built or pulled and probed). */
    facts: ImageFactsSchema.optional(),
    /** The probed target tuple of a builder image. */
    tuple: z.string().optional(),
    /** For images built here: which recipe, and its content key (a changed recipe means rebuild). */
    recipe: z
      .object({
        suite: z.string(),
        arch: ArchSchema,
        flavour: z.enum(['builder', 'runtime']),
        key: z.string(),
        /** OTP and Elixir compiled from source (images/toolchains.json) instead of the suite's packages. */
        toolchain: z.object({ otp: z.string(), elixir: z.string() }).strict().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type LockEntry = z.output<typeof LockEntrySchema>;

export const LockFileSchema = z.object({ version: z.literal(1), images: z.array(LockEntrySchema) }).strict();
export type LockFile = z.output<typeof LockFileSchema>;

export function emptyLock(): LockFile {
  return { version: 1, images: [] };
}

export async function readLock(path: string): Promise<LockFile> {
  const text = await readTextIfPresent(path);
  if (text === undefined) return emptyLock();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new XamalError('validation', `${path}: not valid JSON (${(err as Error).message})`);
  }
  const r = LockFileSchema.safeParse(json);
  if (!r.success) throw new ValidationError(issuesFromZod(r.error), `${path}: invalid lock file`);
  return r.data;
}

/** Writes atomically (temp file + rename): a reader never sees half a lock. Entries sorted by ref. */
export async function writeLock(path: string, lock: LockFile): Promise<void> {
  const sorted: LockFile = { version: 1, images: [...lock.images].sort((a, b) => a.ref.localeCompare(b.ref)) };
  await mkdir(dirname(path), { recursive: true });
  // Unique per call: two writes from one process must not share (and steal) a temp file.
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(sorted, null, 2)}\n`);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Pure: the lock with `entry` added or replacing the one with the same ref. */
export function upsertLock(lock: LockFile, entry: LockEntry): LockFile {
  return { version: 1, images: [...lock.images.filter((e) => e.ref !== entry.ref), entry] };
}

/**
 * `127.0.0.1:5000/xamal/builder:tag` → repository and tag (a registry port is not a tag). A digest
 * (`repo:tag@sha256:…`) is not part of either.
 */
export function splitRef(ref: string): { repository: string; tag: string | undefined } {
  const at = ref.indexOf('@');
  const name = at < 0 ? ref : ref.slice(0, at);
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  return colon > slash ? { repository: name.slice(0, colon), tag: name.slice(colon + 1) } : { repository: name, tag: undefined };
}

/** `repo@sha256:…` for pulling one platform of an entry. */
export function pinnedRef(entry: LockEntry, arch: Arch): string {
  const repo = splitRef(entry.ref).repository;
  const p = entry.platforms.find((x) => x.arch === arch);
  if (!p) throw new XamalError('unsupported', `${entry.ref} has no ${arch} image (platforms: ${entry.platforms.map((x) => x.arch).join(', ')})`);
  return `${repo}@${p.digest ?? entry.digest}`;
}

/**
 * Workers build only in locked images: the ref must be in one of the locks and the digest must be
 * the one recorded for it (index or per-platform).
 */
export function requirePinned(locks: readonly LockFile[], ref: string, digest: string): LockEntry {
  const entries = locks.flatMap((l) => l.images).filter((e) => e.ref === ref);
  if (entries.length === 0) throw new XamalError('forbidden', `image ${ref} is not pinned: run \`xamal farm images pin\` (or build it with \`xamal farm images build\`)`);
  const match = entries.find((e) => e.digest === digest || e.platforms.some((p) => p.digest === digest));
  if (!match) {
    const known = entries.flatMap((e) => [e.digest, ...e.platforms.flatMap((p) => (p.digest ? [p.digest] : []))]);
    throw new XamalError('forbidden', `image ${ref}@${digest} does not match its pin (${[...new Set(known)].join(', ')}): refusing to build in it`);
  }
  return match;
}
