import type { Dirent } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { XamalError } from '../core/index.ts';

/**
 * Trees the worker reads or packs as root (a source checkout, an unpacked archive, a release) are
 * checked before anything reads them: every symbolic link must lead somewhere inside the tree when
 * followed as the kernel follows it, and nothing may be a device, FIFO or socket. The check reads
 * only directory entries and link targets, and never anything outside the tree.
 */

/** Links followed while resolving one path, as the kernel's own limit (ELOOP). */
const MAX_LINKS = 40;

const components = (p: string) => p.split('/').filter((c) => c !== '' && c !== '.');

export type Resolved = { ok: true; path: string } | { ok: false; why: 'outside' | 'loop' };

/**
 * Where `rel` (a path inside `root`) leads once every link on the way is followed, relative to
 * `root`: refused as soon as it would leave `root` (an absolute target, or `..` above it) or after 40
 * links. Components that do not exist are taken as named (a dangling link stays inside if its name
 * does).
 */
export async function resolveInTree(root: string, rel: string): Promise<Resolved> {
  const done: string[] = [];
  const todo = components(rel);
  let links = 0;
  while (todo.length > 0) {
    const c = todo.shift() as string;
    if (c === '..') {
      if (done.length === 0) return { ok: false, why: 'outside' };
      done.pop();
      continue;
    }
    const here = join(root, ...done, c);
    const st = await lstat(here).catch(() => undefined);
    if (!st?.isSymbolicLink()) {
      done.push(c);
      continue;
    }
    if (++links > MAX_LINKS) return { ok: false, why: 'loop' };
    const target = await readlink(here);
    if (isAbsolute(target)) return { ok: false, why: 'outside' };
    todo.unshift(...components(target));
  }
  return { ok: true, path: done.join('/') };
}

/** Something in a tree the worker refuses, with its path relative to the tree. */
export type TreeProblem = { kind: 'link'; path: string; target: string; why: 'outside' | 'loop' } | { kind: 'special'; path: string; what: string };

const specialKind = (e: Dirent) => (e.isFIFO() ? 'a FIFO' : e.isSocket() ? 'a socket' : e.isCharacterDevice() || e.isBlockDevice() ? 'a device file' : undefined);

/** Every link in `root` that leads outside it (or loops), and every device, FIFO or socket, in walk order. */
export async function treeProblems(root: string): Promise<TreeProblem[]> {
  const problems: TreeProblem[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const abs = join(dir, e.name);
      const rel = relative(root, abs).split(sep).join('/');
      if (e.isDirectory()) await walk(abs);
      else if (e.isSymbolicLink()) {
        const r = await resolveInTree(root, rel);
        if (!r.ok) problems.push({ kind: 'link', path: rel, target: await readlink(abs), why: r.why });
      } else {
        const what = specialKind(e);
        if (what) problems.push({ kind: 'special', path: rel, what });
      }
    }
  };
  await walk(root);
  return problems;
}

/** Pure: one line per problem, naming the path (`source: deps -> /elsewhere points outside the source tree`). */
export function treeProblemLine(what: string, p: TreeProblem): string {
  if (p.kind === 'special') return `${what}: ${p.path} is ${p.what}; only files, directories and links inside are allowed`;
  return p.why === 'loop' ? `${what}: ${p.path} -> ${p.target} is a loop of links` : `${what}: ${p.path} -> ${p.target} points outside the ${what} tree`;
}

/** Refuses (`build_failed`, naming up to 5 paths) a tree with links leading outside it or special files. */
export async function refuseUnsafeTree(root: string, what: string): Promise<void> {
  const problems = await treeProblems(root);
  if (problems.length === 0) return;
  const lines = problems.slice(0, 5).map((p) => treeProblemLine(what, p));
  if (problems.length > 5) lines.push(`… and ${problems.length - 5} more`);
  throw new XamalError('build_failed', lines.join('\n'));
}

/**
 * Refuses (`build_failed`) a `dir` that is not a real directory reached from `base` through real
 * directories only (e.g. `out/hello` made a link to `/`); `shown` names it.
 */
export async function refuseUnlessRealDirectory(base: string, dir: string, shown: string): Promise<void> {
  const rel = relative(base, dir);
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) throw new XamalError('internal', `${dir} is not inside ${base}`);
  let at = base;
  for (const c of components(rel.split(sep).join('/'))) {
    at = join(at, c);
    const st = await lstat(at).catch(() => undefined);
    const name = relative(base, at);
    if (!st) throw new XamalError('build_failed', `${shown}: ${name} does not exist`);
    if (st.isSymbolicLink()) throw new XamalError('build_failed', `${shown}: ${name} is a link (-> ${await readlink(at)}), not a directory in the work tree`);
    if (!st.isDirectory()) throw new XamalError('build_failed', `${shown}: ${name} is not a directory`);
  }
}
