import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The assets step's inputs (issue 20, P2): a project declares what its `mix assets.deploy` reads
 * (core/contracts/build-settings.ts `BuildAssetsSchema`); the worker hashes those files of the
 * checkout, and the plan (builder/plan.ts) skips the step when an earlier build of the app left its
 * output under the same key, restoring that output (priv/static) instead.
 */

/** Where the assets step writes (Phoenix's convention: bundles, digested copies, cache_manifest.json). */
export const ASSETS_OUTPUT = 'priv/static';

/** Files, and bytes read, a key may cover: past either the step runs (a key that costs more than the step saves nothing). */
export const MAX_ASSETS_INPUT_FILES = 20_000;
export const MAX_ASSETS_INPUT_BYTES = 512 * 1024 ** 2;

/** The declared inputs hashed, or why they could not be (the step then runs). */
export type AssetsInputs = { hash: string; files: number } | { problem: string };

const escape = (s: string) => s.replace(/[.+^${}()|[\]\\]/g, (c) => `\\${c}`);

/** Pure: one name of a pattern as a regular expression (`*` any run of characters but `/`, `?` one). */
const segmentSource = (seg: string) => escape(seg).replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');

/**
 * Pure: a pattern (`assets/**`, `lib/**\/*.heex`) as a regular expression over paths relative to
 * the project root: `**` as a whole name is any number of directories (none included), at the end
 * everything below. Hand-written rather than picomatch: the schema accepts only `*`, `?` and `**`,
 * and these dozen tested lines cover exactly that, with no brace or extglob forms to keep refusing.
 */
export function assetsPatternRegExp(pattern: string): RegExp {
  const segs = pattern.split('/');
  let src = '';
  segs.forEach((seg, i) => {
    const last = i === segs.length - 1;
    if (seg === '**') src += last ? '.+' : '(?:[^/]+/)*';
    else src += segmentSource(seg) + (last ? '' : '/');
  });
  return new RegExp(`^${src}$`);
}

/** Pure: the directory a pattern's files are all under (its names before the first wildcard); '' for the root. */
export function patternRoot(pattern: string): string {
  const segs = pattern.split('/');
  const fixed: string[] = [];
  for (const seg of segs.slice(0, -1)) {
    if (/[*?]/.test(seg)) break;
    fixed.push(seg);
  }
  return fixed.join('/');
}

interface Found {
  files: string[];
  problem?: string;
}

/** Every regular file under `rel` (relative to `src`), never through a link; a link or special file is a problem. */
async function walk(src: string, rel: string, out: Found): Promise<void> {
  if (out.problem) return;
  const st = await lstat(join(src, rel)).catch(() => undefined);
  if (!st) return;
  if (st.isSymbolicLink()) return void (out.problem = `${rel} is a symbolic link`);
  if (st.isFile()) return void out.files.push(rel);
  if (!st.isDirectory()) return void (out.problem = `${rel} is not a regular file nor a directory`);
  if (out.files.length > MAX_ASSETS_INPUT_FILES) return void (out.problem = `more than ${MAX_ASSETS_INPUT_FILES} files to hash`);
  for (const name of (await readdir(join(src, rel))).sort()) {
    if (rel === '' && name === '.git') continue;
    await walk(src, rel ? `${rel}/${name}` : name, out);
  }
}

/**
 * The declared inputs of the checkout at `src` hashed (each file's path and bytes), with the
 * source's own files under priv/static (the digest step reads them): or why not — a pattern matching
 * no file (a typo would otherwise leave the output stale), a link or special file where the inputs
 * are, too many files or bytes. Links are never followed.
 */
export async function hashAssetsInputs(src: string, patterns: readonly string[]): Promise<AssetsInputs> {
  const roots = [...new Set([...patterns.map(patternRoot), ASSETS_OUTPUT])].sort();
  const found: Found = { files: [] };
  for (const root of roots.filter((r) => !roots.some((o) => o !== r && (o === '' || r.startsWith(`${o}/`))))) await walk(src, root, found);
  if (found.problem) return { problem: found.problem };
  const regexps = patterns.map((p) => ({ pattern: p, re: assetsPatternRegExp(p) }));
  const unmatched = regexps.find(({ re }) => !found.files.some((f) => re.test(f)));
  if (unmatched) return { problem: `the input pattern ${unmatched.pattern} matches no file` };
  const inputs = found.files.filter((f) => f.startsWith(`${ASSETS_OUTPUT}/`) || regexps.some(({ re }) => re.test(f)));
  const h = createHash('sha256');
  let bytes = 0;
  for (const f of inputs) {
    const read = await hashFile(h, src, f, MAX_ASSETS_INPUT_BYTES - bytes);
    if (typeof read === 'string') return { problem: read };
    bytes += read;
  }
  return { hash: h.digest('hex'), files: inputs.length };
}

/**
 * Adds a file's path, size and bytes to `h`, read as a regular file only (never through a link nor
 * blocking on a FIFO); resolves with its size, or why it was not read (a link, another kind, more
 * than `maxBytes`: the inputs' budget left).
 */
async function hashFile(h: Hash, src: string, rel: string, maxBytes: number): Promise<number | string> {
  const fh = await open(join(src, rel), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => err);
  if (!('stat' in fh)) return fh.code === 'ELOOP' ? `${rel} is a symbolic link` : `${rel} cannot be read (${fh.code ?? fh.message})`;
  try {
    const st = await fh.stat();
    if (!st.isFile()) return `${rel} is not a regular file`;
    if (st.size > maxBytes) return `the inputs are larger than ${MAX_ASSETS_INPUT_BYTES} bytes`;
    h.update(`${rel}\0${st.size}\0`);
    if (st.size === 0) return 0;
    let n = 0;
    for await (const chunk of fh.createReadStream({ autoClose: false, end: st.size - 1 })) {
      h.update(chunk as Buffer);
      n += (chunk as Buffer).length;
    }
    return n === st.size ? n : `${rel} changed while it was read`;
  } finally {
    await fh.close();
  }
}

/** What the assets key is made of besides the inputs: everything else the step's output depends on. */
export interface AssetsKeyParts {
  app: string;
  imageDigest: string;
  mixEnv: string;
  /** sha256 of mix.lock, and of mix.exs with the compile-time config (builder/cache.ts SourceHashes). */
  lockHash: string;
  configHash: string;
  command: readonly string[];
  env: Readonly<Record<string, string>>;
  patterns: readonly string[];
  inputsHash: string;
}

/** Pure: the assets cache key (`assets-<32 hex>`): equal only when every part is. */
export function assetsCacheKey(k: AssetsKeyParts): string {
  const canonical = JSON.stringify([
    'assets-v1', k.app, k.imageDigest, k.mixEnv, k.lockHash, k.configHash, k.command,
    Object.entries(k.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)), [...k.patterns].sort(), k.inputsHash,
  ]);
  return `assets-${createHash('sha256').update(canonical).digest('hex').slice(0, 32)}`;
}
