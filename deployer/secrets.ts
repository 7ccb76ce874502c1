import { isAbsolute, join } from 'node:path';
import { command, readUserFile, REDACTED, sensitive, ValidationError, XamalError, type Executor, type Issue, type Sensitive } from '../core/index.ts';
import type { DeployConfig } from './config/schema.ts';

/**
 * Secrets: `.xamal/secrets-common`, then `.xamal/secrets` (or `.xamal/secrets.<destination>` with
 * -d), later files winning. dotenv format with `$VAR` / `${VAR}` expansion and `$(command)`
 * substitution, as in Kamal. Values are `Sensitive` from the moment they are read.
 */

/** The files read, in order: common first, then the destination's (or the default) file. */
export function secretsFiles(secretsPath: string, destination: string | undefined): string[] {
  return [`${secretsPath}-common`, destination ? `${secretsPath}.${destination}` : secretsPath];
}

// --- parsing (pure) ------------------------------------------------------------------------------

/** A value is literal text, a variable to expand, or a command whose output is substituted. */
export type ValuePart = { text: string } | { variable: string } | { command: string };

export interface DotenvEntry {
  name: string;
  parts: ValuePart[];
  line: number;
}

const NAME_RE = /[A-Za-z_][A-Za-z0-9_]*/y;

/**
 * Splits a dotenv text into entries. Single-quoted values are literal; double-quoted values take
 * `\n`, `\t`, `\"`, `\\`, `\$` escapes and may span lines; unquoted values end at the line (or at
 * ` #`). Every syntax problem is returned with its line.
 */
export function parseDotenv(text: string, file: string): { entries: DotenvEntry[]; issues: Issue[] } {
  const entries: DotenvEntry[] = [];
  const issues: Issue[] = [];
  let i = 0;
  let line = 1;
  const at = () => `${file}:${line}`;
  const skipToEol = () => {
    while (i < text.length && text[i] !== '\n') i++;
  };
  while (i < text.length) {
    // Leading blanks, blank lines and comments.
    if (text[i] === '\n') {
      line++;
      i++;
      continue;
    }
    if (text[i] === ' ' || text[i] === '\t' || text[i] === '\r') {
      i++;
      continue;
    }
    if (text[i] === '#') {
      skipToEol();
      continue;
    }
    if (text.startsWith('export ', i)) i += 7;
    NAME_RE.lastIndex = i;
    const m = NAME_RE.exec(text);
    const startLine = line;
    if (!m || text[i + m[0].length] !== '=') {
      issues.push({ path: at(), message: 'expected NAME=value' });
      skipToEol();
      continue;
    }
    const name = m[0];
    i += name.length + 1;
    const quote = text[i];
    let parts: ValuePart[];
    if (quote === "'" || quote === '"') {
      const end = findClosingQuote(text, i + 1, quote);
      if (end < 0) {
        issues.push({ path: at(), message: `unterminated ${quote === '"' ? 'double' : 'single'}-quoted value of ${name}` });
        break;
      }
      const body = text.slice(i + 1, end);
      line += body.split('\n').length - 1;
      parts = quote === "'" ? [{ text: body }] : expandable(unescapeDouble(body), at, issues);
      i = end + 1;
      // Only a comment may follow a quoted value.
      const restStart = i;
      skipToEol();
      const rest = text.slice(restStart, i).trim();
      if (rest && !rest.startsWith('#')) issues.push({ path: at(), message: `unexpected text after the quoted value of ${name}` });
    } else {
      const start = i;
      skipToEol();
      let raw = text.slice(start, i).replace(/\r$/, '');
      const comment = /\s#/.exec(raw);
      if (comment) raw = raw.slice(0, comment.index);
      parts = expandable(raw.trim(), at, issues);
    }
    entries.push({ name, parts, line: startLine });
  }
  return { entries, issues };
}

function findClosingQuote(text: string, from: number, quote: string): number {
  for (let j = from; j < text.length; j++) {
    if (quote === '"' && text[j] === '\\') {
      j++;
      continue;
    }
    if (text[j] === quote) return j;
  }
  return -1;
}

/** Marks an escaped `$` so expansion leaves it alone. */
const ESCAPED_DOLLAR = '\u0000$';

function unescapeDouble(body: string): string {
  return body.replace(/\\(.)/gs, (_, c: string) => ({ n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\', $: ESCAPED_DOLLAR })[c] ?? `\\${c}`);
}

/** `$VAR`, `${VAR}` and `$(command)` (parentheses may nest) into parts; `\$` stays literal. */
function expandable(value: string, at: () => string, issues: Issue[]): ValuePart[] {
  const parts: ValuePart[] = [];
  let text = '';
  const flush = () => {
    if (text) parts.push({ text });
    text = '';
  };
  let i = 0;
  while (i < value.length) {
    const c = value[i]!;
    // ESCAPED_DOLLAR (from double quotes) or `\$`: a literal `$`.
    if ((c === '\u0000' || c === '\\') && value[i + 1] === '$') {
      text += '$';
      i += 2;
      continue;
    }
    if (c !== '$') {
      text += c;
      i++;
      continue;
    }
    const next = value[i + 1];
    if (next === '(') {
      let depth = 0;
      let j = i + 1;
      for (; j < value.length; j++) {
        if (value[j] === '(') depth++;
        else if (value[j] === ')' && --depth === 0) break;
      }
      if (j >= value.length) {
        issues.push({ path: at(), message: 'unterminated $(command)' });
        return parts;
      }
      flush();
      parts.push({ command: value.slice(i + 2, j) });
      i = j + 1;
      continue;
    }
    if (next === '{') {
      const close = value.indexOf('}', i);
      const name = close < 0 ? '' : value.slice(i + 2, close);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        issues.push({ path: at(), message: `expected \${NAME}, got ${JSON.stringify(value.slice(i, close < 0 ? undefined : close + 1))}` });
        return parts;
      }
      flush();
      parts.push({ variable: name });
      i = close + 1;
      continue;
    }
    NAME_RE.lastIndex = i + 1;
    const m = NAME_RE.exec(value);
    if (!m) {
      text += '$';
      i++;
      continue;
    }
    flush();
    parts.push({ variable: m[0] });
    i += 1 + m[0].length;
  }
  flush();
  return parts;
}

// --- the secrets ---------------------------------------------------------------------------------

/** Shorter values are not scrubbed from free text (they would mangle it); they are still Sensitive. */
const MIN_REDACT_LENGTH = 4;

export class Secrets {
  constructor(
    private readonly values: ReadonlyMap<string, Sensitive>,
    /** The files that were read (existing ones only), in order. */
    readonly files: readonly string[],
  ) {}

  static empty(): Secrets {
    return new Secrets(new Map(), []);
  }

  names(): string[] {
    return [...this.values.keys()];
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  get(name: string): Sensitive | undefined {
    return this.values.get(name);
  }

  /** The secret, or a not_found error naming it and the files searched. */
  require(name: string): Sensitive {
    const v = this.values.get(name);
    if (!v) throw new XamalError('not_found', `secret ${name} not found (${this.files.length ? `read ${this.files.join(', ')}` : 'no secrets file exists'})`);
    return v;
  }

  /** Every secret as an environment variable (values stay Sensitive). */
  asEnv(): Record<string, Sensitive> {
    return Object.fromEntries(this.values);
  }

  /** `text` with every secret value (of 4+ characters) replaced by [REDACTED]: for output of commands. */
  redact(text: string): string {
    const values = [...this.values.values()].map((s) => s.reveal()).filter((v) => v.length >= MIN_REDACT_LENGTH);
    values.sort((a, b) => b.length - a.length);
    let out = text;
    for (const v of values) out = out.split(v).join(REDACTED);
    return out;
  }

  toJSON(): Record<string, string> {
    return Object.fromEntries([...this.values.keys()].map((k) => [k, REDACTED]));
  }
}

export interface LoadSecretsOptions {
  root: string;
  secretsPath: string;
  destination: string | undefined;
  /** The environment `$VAR` falls back to and `$(command)` runs with. */
  env: Readonly<Record<string, string | undefined>>;
  /** Runs `$(command)` substitutions (`sh -c`), normally a LocalExecutor over `env`. */
  executor: Executor;
  /** Seconds one substitution may take. Default 60. */
  commandTimeout?: number;
}

/**
 * Reads the secrets files and resolves every value. Every problem (syntax, unset variable, failed
 * command) is reported at once with its file and line; no value appears in an error.
 */
export async function loadSecrets(opts: LoadSecretsOptions): Promise<Secrets> {
  const values = new Map<string, Sensitive>();
  const read: string[] = [];
  const issues: Issue[] = [];
  const resolved = (p: string) => (isAbsolute(p) ? p : join(opts.root, p));
  for (const file of secretsFiles(opts.secretsPath, opts.destination)) {
    const text = await readUserFile(resolved(file), file);
    if (text === undefined) continue;
    read.push(file);
    const parsed = parseDotenv(text, file);
    issues.push(...parsed.issues);
    for (const entry of parsed.entries) {
      const where = `${file}:${entry.line}`;
      let value = '';
      let ok = true;
      for (const part of entry.parts) {
        if ('text' in part) value += part.text;
        else if ('variable' in part) {
          const v = values.get(part.variable)?.reveal() ?? (Object.hasOwn(opts.env, part.variable) ? opts.env[part.variable] : undefined);
          if (v === undefined) {
            issues.push({ path: where, message: `${entry.name}: variable ${part.variable} is not set (neither earlier in the secrets nor in the environment)` });
            ok = false;
          } else value += v;
        } else {
          const r = await opts.executor.run(
            command(['sh', '-c', part.command], {
              cwd: opts.root,
              env: Object.fromEntries(values),
              timeoutMs: (opts.commandTimeout ?? 60) * 1000,
              label: `${entry.name} substitution`,
            }),
          );
          if (r.code !== 0) {
            const partial = new Secrets(values, read);
            const tail = partial.redact(r.stderr.trim().split('\n').slice(-3).join('\n'));
            issues.push({ path: where, message: `${entry.name}: $(${part.command}) exited ${r.code}${tail ? `: ${tail}` : ''}` });
            ok = false;
          } else value += r.stdout.replace(/\n+$/, '');
        }
      }
      if (ok) values.set(entry.name, sensitive(value));
    }
  }
  if (issues.length) {
    // A command's output may echo a value read later; scrub with everything known.
    const all = new Secrets(values, read);
    throw new ValidationError(
      issues.map((i) => ({ path: i.path, message: all.redact(i.message) })),
      'invalid secrets',
    );
  }
  return new Secrets(values, read);
}

// --- the release's environment -------------------------------------------------------------------

export interface ReleaseEnv {
  clear: Record<string, string>;
  secret: Record<string, Sensitive>;
}

/**
 * The environment of a role's release on one host: top-level env, then the role's, then each of
 * the host's tags (in order); secrets looked up by their source name. Every missing secret is
 * reported at once.
 */
export function releaseEnv(config: DeployConfig, secrets: Secrets, roleName: string, hostTags: readonly string[] = []): ReleaseEnv {
  const role = config.roles.find((r) => r.name === roleName);
  if (!role) throw new XamalError('not_found', `no role ${JSON.stringify(roleName)} (roles: ${config.roles.map((r) => r.name).join(', ')})`);
  const layers = [
    { where: 'env', ...config.env },
    { where: `servers/${roleName}/env`, ...role.env },
    ...[...role.tags, ...hostTags].flatMap((t) => (config.env.tags[t] ? [{ where: `env/tags/${t}`, ...config.env.tags[t]! }] : [])),
  ];
  const out: ReleaseEnv = { clear: {}, secret: {} };
  const issues: Issue[] = [];
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer.clear)) {
      out.clear[k] = v;
      delete out.secret[k];
    }
    for (const ref of layer.secret) {
      const v = secrets.get(ref.from);
      if (!v) {
        issues.push({ path: `${layer.where}/secret/${ref.name}`, message: `secret ${ref.from} not found (${secrets.files.length ? `read ${secrets.files.join(', ')}` : 'no secrets file exists'})` });
        continue;
      }
      out.secret[ref.name] = v;
      delete out.clear[ref.name];
    }
  }
  if (issues.length) throw new ValidationError(issues, 'missing secrets');
  return out;
}
