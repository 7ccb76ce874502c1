import { join } from 'node:path';
import { isXamalError, readCappedFile, XamalError } from '../core/index.ts';
import { refuseUnlessRealDirectory } from './links.ts';

/**
 * A reader of mix.lock, the Elixir term Mix writes (Mix.Dep.Lock: `%{"app": inspect(entry), …}`),
 * for the SBOM (builder/sbom.ts). The lock comes from the build's own work directory, so it is
 * untrusted: this reads only the subset Mix writes — strings, atoms, integers, lists, keyword lists
 * and tuples inside one outer map — bounded in size, depth and count, and evaluates nothing. Anything
 * else (a comment, a sigil, a nested map, an SCM other than :hex and :git, a malformed field) is
 * refused with its line and column, never guessed at.
 *
 *   "jason": {:hex, :jason, "1.4.4", "<inner sha256>", [:mix], [{:decimal, "~> 2.0", [hex: :decimal, repo: "hexpm", optional: true]}], "hexpm", "<outer sha256>"},
 *   "dep": {:git, "https://github.com/org/dep.git", "<commit>", [branch: "main"]},
 */

/** A lock larger than this is refused unread (the largest real ones are a few hundred KiB). */
export const MAX_LOCK_BYTES = 4 * 1024 * 1024;
const MAX_DEPTH = 8;
const MAX_ENTRIES = 10_000;
const MAX_ITEMS = 10_000;
const MAX_STRING = 4096;
/** Erlang's own limit on an atom's length. */
const MAX_ATOM = 255;

export interface LockedHexDep {
  scm: 'hex';
  /** The lock's key: the OTP application's name. */
  app: string;
  /** The Hex package's name (usually the app's; `{:app, hex: :package}` makes them differ). */
  package: string;
  version: string;
  /** sha256 of the package's contents (Hex's inner checksum). */
  innerChecksum: string;
  /** sha256 of the package tarball as Hex serves it (Hex's outer checksum); absent in locks written before Hex 0.21. */
  outerChecksum?: string;
  /** Build tools (`mix`, `rebar3`, `make`). */
  managers: string[];
  /** The apps it depends on, as its lock entry lists them. */
  deps: { app: string; optional: boolean }[];
  /** The Hex repository: `hexpm`, `hexpm:<organization>`, or a self-hosted one's name. */
  repo: string;
}

export interface LockedGitDep {
  scm: 'git';
  app: string;
  url: string;
  /** The commit Mix checked out. */
  commit: string;
  /** What mix.exs asked for: a branch, tag or ref (absent: the default branch). */
  ref?: { kind: 'branch' | 'tag' | 'ref'; value: string };
  /** `sparse:` or `subdir:`: the folder of the repository the dependency is. */
  subdir?: string;
}

export type LockedDep = LockedHexDep | LockedGitDep;

type Term =
  | { t: 'string'; v: string; at: number }
  | { t: 'atom'; v: string; at: number }
  | { t: 'int'; v: number; at: number }
  | { t: 'list'; items: Term[]; at: number }
  | { t: 'kw'; pairs: [string, Term][]; at: number }
  | { t: 'tuple'; items: Term[]; at: number };

/** `line L, column C` of an offset. */
function where(text: string, at: number): string {
  const before = text.slice(0, at);
  const line = before.split('\n').length;
  return `line ${line}, column ${at - before.lastIndexOf('\n')}`;
}

const refused = (text: string, at: number, message: string) => new XamalError('validation', `mix.lock ${where(text, at)}: ${message}`);

const shown = (text: string, at: number) => (at >= text.length ? 'the end of the file' : JSON.stringify(text.slice(at, at + 12)));

const IDENT = /[A-Za-z_][A-Za-z0-9_@]*[?!]?/y;
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '#': '#', n: '\n', t: '\t', r: '\r' };

/** A recursive-descent reader of the term subset, over `text` from offset `pos`. */
class Reader {
  pos = 0;
  private items = 0;
  constructor(readonly text: string) {}

  fail(message: string, at = this.pos): XamalError {
    return refused(this.text, at, message);
  }

  skipSpace(): void {
    while (this.pos < this.text.length && ' \t\r\n'.includes(this.text[this.pos]!)) this.pos++;
  }

  /** Skips blanks, then consumes `token` or refuses naming what was expected. */
  expect(token: string, what = JSON.stringify(token)): void {
    this.skipSpace();
    if (!this.text.startsWith(token, this.pos)) throw this.fail(`expected ${what}, found ${shown(this.text, this.pos)}`);
    this.pos += token.length;
  }

  peek(token: string): boolean {
    this.skipSpace();
    return this.text.startsWith(token, this.pos);
  }

  string(): string {
    const start = this.pos;
    this.pos++; // the opening quote
    let out = '';
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) throw this.fail('a string is not closed', start);
      if (c === '"') break;
      if (c < ' ') throw this.fail('a string holds a control character (Mix writes them escaped)');
      if (c === '\\') {
        const e = ESCAPES[this.text[this.pos + 1] ?? ''];
        if (e === undefined) throw this.fail(`unsupported escape \\${this.text[this.pos + 1] ?? ''} in a string`);
        out += e;
        this.pos += 2;
      } else {
        out += c;
        this.pos++;
      }
      if (out.length > MAX_STRING) throw this.fail(`a string longer than ${MAX_STRING} characters`, start);
    }
    this.pos++;
    return out;
  }

  /** An atom after its `:`: `name` or `"quoted"`. */
  atomName(): string {
    const at = this.pos;
    let name: string;
    if (this.text[this.pos] === '"') name = this.string();
    else {
      IDENT.lastIndex = this.pos;
      const m = IDENT.exec(this.text);
      if (!m) throw this.fail(`expected an atom name after ":", found ${shown(this.text, this.pos)}`);
      name = m[0];
      this.pos += name.length;
    }
    if (name.length === 0 || name.length > MAX_ATOM) throw this.fail(`an atom of ${name.length} characters`, at);
    return name;
  }

  /** A keyword key here (`name: ` or `"name": `), consumed; else undefined with nothing consumed. */
  keywordKey(): string | undefined {
    const start = this.pos;
    if (this.text[this.pos] === '"') {
      const key = this.string();
      if (this.text[this.pos] === ':' && /\s/.test(this.text[this.pos + 1] ?? '')) return (this.pos++, key);
    } else {
      IDENT.lastIndex = this.pos;
      const m = IDENT.exec(this.text);
      if (m && this.text[this.pos + m[0].length] === ':' && /\s/.test(this.text[this.pos + m[0].length + 1] ?? '')) {
        this.pos += m[0].length + 1;
        return m[0];
      }
    }
    this.pos = start;
    return undefined;
  }

  count(): void {
    if (++this.items > MAX_ITEMS * 10) throw this.fail(`more than ${MAX_ITEMS * 10} terms`);
  }

  /** Comma-separated items up to `close` (a trailing comma allowed), each read by `item`. */
  sequence<T>(close: string, item: () => T): T[] {
    const out: T[] = [];
    if (this.peek(close)) return (this.pos += close.length, out);
    for (;;) {
      out.push(item());
      if (out.length > MAX_ITEMS) throw this.fail(`more than ${MAX_ITEMS} items in one list or tuple`);
      if (this.peek(close)) return (this.pos += close.length, out);
      this.expect(',', `"," or "${close}"`);
      if (this.peek(close)) return (this.pos += close.length, out);
    }
  }

  list(depth: number, at: number): Term {
    const keys: boolean[] = [];
    const items = this.sequence(']', () => {
      this.skipSpace();
      const key = this.keywordKey();
      keys.push(key !== undefined);
      return { key, value: this.term(depth + 1) };
    });
    if (items.length > 0 && keys.every(Boolean)) return { t: 'kw', pairs: items.map((i) => [i.key!, i.value]), at };
    if (keys.some(Boolean)) throw this.fail('a list mixes keyword pairs with other terms', at);
    return { t: 'list', items: items.map((i) => i.value), at };
  }

  term(depth: number): Term {
    if (depth > MAX_DEPTH) throw this.fail(`terms nested deeper than ${MAX_DEPTH}`);
    this.skipSpace();
    this.count();
    const at = this.pos;
    const c = this.text[this.pos];
    if (c === '"') return { t: 'string', v: this.string(), at };
    if (c === ':') return (this.pos++, { t: 'atom', v: this.atomName(), at });
    if (c === '[') return (this.pos++, this.list(depth, at));
    if (c === '{') return (this.pos++, { t: 'tuple', items: this.sequence('}', () => this.term(depth + 1)), at });
    const digits = /[0-9]{1,15}(?![0-9A-Za-z_.])/y;
    digits.lastIndex = this.pos;
    const n = digits.exec(this.text);
    if (n) return (this.pos += n[0].length, { t: 'int', v: Number(n[0]), at });
    for (const bare of ['true', 'false', 'nil']) {
      if (this.text.startsWith(bare, this.pos) && !/[A-Za-z0-9_@?!:]/.test(this.text[this.pos + bare.length] ?? '')) return (this.pos += bare.length, { t: 'atom', v: bare, at });
    }
    throw this.fail(`expected a string, atom, integer, list or tuple, found ${shown(this.text, this.pos)} (mix.lock holds only what Mix writes)`);
  }

  /** The outer map: `%{"app": entry, …}` (or `"app" => entry`). */
  map(): [string, Term][] {
    this.expect('%{', 'the lock\'s outer map "%{"');
    const entries = this.sequence('}', () => {
      this.skipSpace();
      const at = this.pos;
      if (this.text[this.pos] !== '"') throw this.fail(`expected an application name in quotes, found ${shown(this.text, this.pos)}`);
      const key = this.string();
      if (this.text[this.pos] === ':') this.pos++;
      else this.expect('=>', '":" or "=>" after the application name');
      return [key, this.term(2), at] as const;
    });
    if (entries.length > MAX_ENTRIES) throw this.fail(`more than ${MAX_ENTRIES} entries`);
    this.skipSpace();
    if (this.pos < this.text.length) throw this.fail(`unexpected ${shown(this.text, this.pos)} after the lock's map`);
    return entries.map(([k, v]) => [k, v]);
  }
}

const APP_NAME = /^[a-z][a-z0-9_]*$/;
const SEMVER = /^\d{1,9}\.\d{1,9}\.\d{1,9}(?:-[0-9A-Za-z.-]{1,64})?(?:\+[0-9A-Za-z.-]{1,64})?$/;
const SHA256 = /^[0-9a-fA-F]{64}$/;
const COMMIT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const HEX_REPO = /^[A-Za-z0-9_.-]{1,64}(?::[A-Za-z0-9_.-]{1,64})?$/;

/** Field readers that refuse with the entry's name, the field and where it is. */
function fields(text: string, app: string, entry: Term) {
  const bad = (term: Term | undefined, what: string) => refused(text, (term ?? entry).at, `"${app}": expected ${what}${term ? '' : ', found nothing'}`);
  const str = (term: Term | undefined, what: string, pattern?: RegExp): string => {
    if (!term || term.t !== 'string' || (pattern && !pattern.test(term.v))) throw bad(term, what);
    return term.v;
  };
  const atom = (term: Term | undefined, what: string, pattern = APP_NAME): string => {
    if (!term || term.t !== 'atom' || !pattern.test(term.v)) throw bad(term, what);
    return term.v;
  };
  /** A keyword list (an empty list counts as one). */
  const keywords = (term: Term | undefined, what: string): [string, Term][] => {
    if (term?.t === 'kw') return term.pairs;
    if (term?.t === 'list' && term.items.length === 0) return [];
    throw bad(term, what);
  };
  const list = (term: Term | undefined, what: string): Term[] => {
    if (term?.t === 'list') return term.items;
    throw bad(term, what);
  };
  return { bad, str, atom, keywords, list };
}

/** A Hex entry: `{:hex, :package, "version", "inner sha", [managers], [deps], "repo", "outer sha"}` (older locks stop after deps or repo). */
function hexEntry(text: string, app: string, t: Extract<Term, { t: 'tuple' }>): LockedHexDep {
  const f = fields(text, app, t);
  const [, pkg, version, inner, managers, deps, repo, outer] = t.items;
  if (t.items.length < 6 || t.items.length > 8) throw f.bad(t, `a :hex entry of 6 to 8 fields, found ${t.items.length}`);
  const depList = f.list(deps, 'its dependencies as a list').map((d) => {
    if (d.t !== 'tuple' || d.items.length !== 3) throw f.bad(d, 'a dependency like {:name, "~> 1.0", [hex: :name, repo: "hexpm", optional: false]}');
    const [name, requirement, opts] = d.items;
    if (requirement?.t !== 'string' && !(requirement?.t === 'atom' && requirement.v === 'nil')) throw f.bad(requirement, 'a version requirement (a string or nil)');
    const optional = f.keywords(opts, 'the dependency\'s options as a keyword list').find(([k]) => k === 'optional')?.[1];
    return { app: f.atom(name, 'a dependency\'s application name'), optional: optional?.t === 'atom' && optional.v === 'true' };
  });
  return {
    scm: 'hex',
    app,
    package: f.atom(pkg, 'the Hex package name (an atom like :jason)'),
    version: f.str(version, 'a SemVer version like "1.4.4"', SEMVER),
    innerChecksum: f.str(inner, 'a sha256 checksum (64 hex digits)', SHA256).toLowerCase(),
    ...(outer ? { outerChecksum: f.str(outer, 'a sha256 checksum (64 hex digits)', SHA256).toLowerCase() } : {}),
    managers: f.list(managers, 'its build tools as a list of atoms').map((m) => f.atom(m, 'a build tool (an atom like :mix)')),
    deps: depList,
    repo: repo ? f.str(repo, 'a Hex repository name like "hexpm"', HEX_REPO) : 'hexpm',
  };
}

const GIT_REFS = ['branch', 'tag', 'ref'] as const;

/** A git entry: `{:git, "url", "commit", [branch: "main", …]}`. */
function gitEntry(text: string, app: string, t: Extract<Term, { t: 'tuple' }>): LockedGitDep {
  const f = fields(text, app, t);
  if (t.items.length !== 4) throw f.bad(t, `a :git entry of 4 fields, found ${t.items.length}`);
  const [, url, commit, opts] = t.items;
  const options = f.keywords(opts, 'its options as a keyword list');
  const ref = GIT_REFS.map((kind) => ({ kind, term: options.find(([k]) => k === kind)?.[1] })).find((r) => r.term);
  const subdir = options.find(([k]) => k === 'sparse' || k === 'subdir')?.[1];
  return {
    scm: 'git',
    app,
    url: f.str(url, 'the repository URL as a string', /^\S{1,2048}$/),
    commit: f.str(commit, 'the commit (40 or 64 lowercase hex digits)', COMMIT),
    ...(ref ? { ref: { kind: ref.kind, value: f.str(ref.term, `the ${ref.kind} as a string`) } } : {}),
    ...(subdir ? { subdir: f.str(subdir, 'the subdirectory as a string') } : {}),
  };
}

/**
 * Pure: the dependencies mix.lock pins, in its order. Refuses (`validation`, naming the line and
 * column) any text outside the subset Mix writes, and any entry that is not a well-formed :hex or
 * :git one.
 */
export function parseMixLock(text: string): LockedDep[] {
  if (text.length > MAX_LOCK_BYTES) throw new XamalError('validation', `mix.lock is larger than ${MAX_LOCK_BYTES} bytes`);
  const reader = new Reader(text);
  const seen = new Set<string>();
  return reader.map().map(([app, term]) => {
    if (!APP_NAME.test(app)) throw refused(text, term.at, `${JSON.stringify(app)} is not an application name (lowercase letters, digits and _)`);
    if (seen.has(app)) throw refused(text, term.at, `"${app}" is locked twice`);
    seen.add(app);
    const scm = term.t === 'tuple' && term.items[0]?.t === 'atom' ? term.items[0].v : undefined;
    if (term.t !== 'tuple' || scm === undefined) throw refused(text, term.at, `"${app}": expected a tuple starting with its SCM (:hex or :git)`);
    if (scm === 'hex') return hexEntry(text, app, term as Extract<Term, { t: 'tuple' }>);
    if (scm === 'git') return gitEntry(text, app, term as Extract<Term, { t: 'tuple' }>);
    throw refused(text, term.at, `"${app}": SCM :${scm} is not one this reader knows (:hex, :git)`);
  });
}

/**
 * The project's mix.lock as the build left it in `src` (a real directory under `base`; the lock a
 * regular file of at most MAX_LOCK_BYTES, never read through a link), parsed; undefined when there
 * is none. Anything it refuses is `build_failed`, naming the lock and why.
 */
export async function readProjectLock(base: string, src: string): Promise<LockedDep[] | undefined> {
  await refuseUnlessRealDirectory(base, src, 'source');
  const read = await readCappedFile(join(src, 'mix.lock'), MAX_LOCK_BYTES);
  if (read.kind === 'missing') return undefined;
  if (read.kind === 'refused') throw new XamalError('build_failed', `sbom: mix.lock ${read.why}; it is read only as a regular file of at most ${MAX_LOCK_BYTES} bytes`);
  try {
    return lockEntries(read.data);
  } catch (err) {
    if (!isXamalError(err) || err.code !== 'validation') throw err;
    throw new XamalError('build_failed', `sbom: ${err.message} (the SBOM lists what mix.lock pins: a lock it cannot read stops the build)`);
  }
}

/** A mix.lock's bytes as its entries: strict UTF-8, then `parseMixLock` (a validation error says why not). */
export function lockEntries(bytes: Uint8Array): LockedDep[] {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new XamalError('validation', 'mix.lock is not UTF-8 text');
  }
  return parseMixLock(text);
}
