/**
 * Help a person reads: a command's usage, description, each flag (from the same table parseArgs
 * parses with) and examples, wrapped to the terminal's width. Pure: text in, lines out.
 *
 * Wrapping is the small `wrapText` below: wrap-ansi is here only as a transitive dependency of
 * dockerode (through yargs), and package.json may not gain one; help text has no escape codes.
 */

/** One flag: what node:util parseArgs needs, and what --help says of it. */
export interface FlagSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** One line for --help: what the flag does. */
  description: string;
  /** The value's name in help (`--hosts HOSTS`); string flags only. */
  valueName?: string;
  /** The default as help says it (`50`, `config/deploy.yml`), when the flag has one. */
  defaultText?: string;
}

/** A command's flags, by long name: the one table parseArgs and --help both read. */
export type FlagTable = Readonly<Record<string, FlagSpec>>;

/** One example: the command line and what it does. */
export type Example = readonly [command: string, does: string];

/** What `xamal COMMAND --help` prints besides the table's one-line summary. */
export interface CommandHelp {
  /** The synopsis (also the `usage:` line of usage errors). */
  usage: string;
  /** Paragraphs after the summary (blank lines separate them). */
  description?: string;
  flags: FlagTable;
  examples?: readonly Example[];
  /**
   * The words after the first one that is not a flag are a command run elsewhere (`server exec`):
   * a `--help` among them is that command's.
   */
  passThrough?: boolean;
}

/** The narrowest width help wraps to (a narrower terminal still gets this). */
export const MIN_HELP_WIDTH = 40;

/**
 * `text` wrapped at spaces to `width` columns: the first line starts with `first`, the others with
 * `rest`. Each `\n` in the text starts a new line (indented as a continuation); a word longer than
 * the room left gets a line of its own and is not broken.
 */
export function wrapText(text: string, width: number, first = '', rest = first): string[] {
  return wrapWords(text.split('\n').map((p) => p.split(/ +/).filter(Boolean)), width, first, rest);
}

/** Lines of words (each inner array one line of the text) wrapped as `wrapText` says. */
function wrapWords(lines: readonly (readonly string[])[], width: number, first: string, rest: string): string[] {
  const out: string[] = [];
  let line = first;
  let empty = true;
  const flush = () => {
    out.push(line.trimEnd());
    line = rest;
    empty = true;
  };
  for (const [i, words] of lines.entries()) {
    if (i > 0) flush();
    for (const word of words) {
      if (!empty && line.length + 1 + word.length > width) flush();
      line += empty ? word : ` ${word}`;
      empty = false;
    }
  }
  out.push(line.trimEnd());
  return out;
}

/** A usage line's words: a bracketed group (`[-d DESTINATION]`, `(--commit SHA | --ref REF)`) is one word, so wrapping never splits it. */
export function usageWords(usage: string): string[] {
  const words: string[] = [];
  let depth = 0;
  let word = '';
  for (const ch of usage) {
    if (ch === ' ' && depth === 0) {
      if (word) words.push(word);
      word = '';
      continue;
    }
    if (ch === '[' || ch === '(') depth++;
    if ((ch === ']' || ch === ')') && depth > 0) depth--;
    word += ch;
  }
  if (word) words.push(word);
  return words;
}

/** The narrowest right column beside a left one; narrower than this, each right cell goes below its left cell. */
const MIN_RIGHT = 32;

/**
 * Two columns: each left cell padded to one width (at most `maxLeft`), each right cell wrapped beside
 * it (or below a left cell too wide, and below every left cell when the terminal leaves too little room).
 */
export function twoColumns(rows: readonly (readonly [string, string])[], width: number, { indent = 2, maxLeft = 30 } = {}): string[] {
  const pad = ' '.repeat(indent);
  const widest = Math.min(maxLeft, Math.max(0, ...rows.map(([l]) => l.length)));
  // Too narrow for both side by side: a left column of width 0 puts every right cell below, indented.
  const left = width - indent - widest - 2 >= MIN_RIGHT ? widest : 0;
  const hang = ' '.repeat(left ? indent + left + 2 : indent + 4);
  return rows.flatMap(([l, r]) => {
    if (l.length > left) return [`${pad}${l}`, ...wrapText(r, width, hang)];
    return wrapText(r, width, `${pad}${l.padEnd(left)}  `, hang);
  });
}

/** `-n, --lines LINES` (or `    --json` without a short form): a flag's left cell. */
export function flagLabel(long: string, f: Pick<FlagSpec, 'type' | 'short' | 'valueName'>): string {
  const value = f.type === 'string' ? ` ${f.valueName ?? 'VALUE'}` : '';
  return `${f.short ? `-${f.short}, ` : '    '}--${long}${value}`;
}

/** A flag's right cell: its description, then `repeatable` and its default. */
export function flagDescription(f: FlagSpec): string {
  const notes = [f.multiple ? 'repeatable' : '', f.defaultText !== undefined ? `default: ${f.defaultText}` : ''].filter(Boolean);
  return `${f.description}${notes.length ? ` [${notes.join('; ')}]` : ''}`;
}

/** True when `-h` is free on this command (no flag takes it): there it means --help. */
export function hIsHelp(flags: FlagTable): boolean {
  return !Object.values(flags).some((f) => f.short === 'h');
}

/** The flags most commands share (config, host selection, output): help lists them after a command's own. */
const SHARED_FLAGS = ['destination', 'config-file', 'hosts', 'roles', 'dry-run', 'trust-new-host-keys', 'json', 'verbose', 'quiet'];

/** A command's own flags first, then the shared ones, each in table order. */
export function orderedFlags(flags: FlagTable): [string, FlagSpec][] {
  const all = Object.entries(flags);
  return [...all.filter(([n]) => !SHARED_FLAGS.includes(n)), ...all.filter(([n]) => SHARED_FLAGS.includes(n))];
}

/** A line wrapped keeping its indentation; its continuation lines two columns further in. */
const indentedLine = (width: number) => (line: string) => {
  const lead = /^ */.exec(line)![0];
  return wrapText(line.trim(), width, lead, lead ? `${lead}  ` : '');
};

/** A command line's words for wrapping: a quoted part stays whole (a line break in it would be part of the argument), and a flag stays with its value. */
export function shellWords(cmd: string): string[] {
  const words = cmd.match(/(?:[^\s'"]+|'[^']*'|"[^"]*")+/g) ?? [];
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const next = words[i + 1];
    if (w.startsWith('-') && next !== undefined && !next.startsWith('-')) out.push(`${w} ${words[++i]}`);
    else out.push(w);
  }
  return out;
}

/** An example command line, wrapped as a shell continues a line (` \\` at the end of each but the last), so it can be copied. */
function exampleLines(cmd: string, width: number): string[] {
  const paired = wrapWords([shellWords(cmd)], width - 2, '    ', '      ');
  // A flag and its value too long for one line together go on lines of their own.
  const lines = paired.some((l) => l.length > width - 2) ? wrapWords([shellWords(cmd).flatMap((w) => (w.startsWith('-') ? w.split(' ') : [w]))], width - 2, '    ', '      ') : paired;
  return lines.map((l, i) => (i < lines.length - 1 ? `${l} \\` : l));
}

/** The help of one command: usage, summary and description, flags (with --help), examples. */
export function commandHelpText(summary: string, help: CommandHelp, width: number): string {
  const w = Math.max(MIN_HELP_WIDTH, width);
  // A group too long for a line of its own is split at its spaces after all.
  const words = (l: string) => usageWords(l.trim()).flatMap((word) => (word.length > w - 9 ? word.split(' ') : [word]));
  const usage = help.usage.split('\n').flatMap((l, i) => wrapWords([words(l)], w, i === 0 ? 'Usage: ' : '       ', '         '));
  const paragraphs = [summary, ...(help.description ?? '').split(/\n\s*\n/)].map((p) => p.trim()).filter(Boolean);
  const rows: [string, string][] = orderedFlags(help.flags).map(([long, f]) => [flagLabel(long, f), flagDescription(f)]);
  rows.push([hIsHelp(help.flags) ? '-h, --help' : '    --help', `Print this help${hIsHelp(help.flags) ? '' : ' (-h is --hosts here)'}`]);
  const examples = (help.examples ?? []).flatMap(([cmd, does], i) => [...(i ? [''] : []), ...wrapText(`${does}:`, w, '  '), ...exampleLines(cmd, w)]);
  return [
    ...usage,
    '',
    ...paragraphs.flatMap((p, i) => [...(i ? [''] : []), ...p.split('\n').flatMap(indentedLine(w))]),
    '',
    'Flags:',
    ...twoColumns(rows, w),
    ...(examples.length ? ['', 'Examples:', ...examples] : []),
  ].join('\n');
}
