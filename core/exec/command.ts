import { REDACTED, revealArg, Sensitive, type Arg } from './sensitive.ts';

/**
 * A command as data: argv (never a shell string), with optional working directory, environment and
 * stdin. Builders return these; exactly one executor runs them.
 */
export interface Command {
  argv: readonly Arg[];
  cwd?: string;
  env?: Readonly<Record<string, Arg>>;
  stdin?: string | Sensitive;
  /** Milliseconds before the executor gives up and kills the command. */
  timeoutMs?: number;
  /** Human label for logs (`probe host`). */
  label?: string;
}

export function command(argv: readonly Arg[], options: Omit<Command, 'argv'> = {}): Command {
  return { argv, ...options };
}

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * POSIX sh quoting — the only place the project quotes for a shell. Safe words stay bare; anything
 * else is single-quoted with embedded quotes as `'\''`. NUL cannot be passed through a shell and is
 * refused.
 */
export function shellQuote(word: string): string {
  if (word.includes('\0')) throw new TypeError('a shell word cannot contain NUL');
  if (word !== '' && SAFE_WORD.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function envName(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new TypeError(`invalid environment variable name ${JSON.stringify(name)}`);
  return name;
}

/**
 * One shell line for a command, for executors that only take a string (SSH). `reveal` decides
 * whether secrets are written out (to run) or redacted (to print).
 */
export function toShellLine(cmd: Command, { reveal }: { reveal: boolean }): string {
  const word = (a: Arg) => (typeof a === 'string' ? shellQuote(a) : reveal ? shellQuote(a.reveal()) : REDACTED);
  const parts: string[] = [];
  if (cmd.cwd !== undefined) parts.push(`cd ${shellQuote(cmd.cwd)} &&`);
  const env = Object.entries(cmd.env ?? {});
  // Prefix assignments, not `env K=V`: a value never becomes part of a process's argv (`ps` shows
  // argv to every user; a process's environment only to its owner).
  if (env.length) parts.push(...env.map(([k, v]) => `${envName(k)}=${word(v)}`));
  parts.push(...cmd.argv.map(word));
  return parts.join(' ');
}

/** True if any part of the command (argv, env, stdin) is a secret. */
export function hasSensitive(cmd: Command): boolean {
  return [...cmd.argv, ...Object.values(cmd.env ?? {}), ...(cmd.stdin !== undefined ? [cmd.stdin] : [])].some((a) => typeof a !== 'string');
}

/** What to show a person or a log: secrets redacted. */
export function displayCommand(cmd: Command): string {
  return toShellLine(cmd, { reveal: false });
}

export function revealArgv(cmd: Command): string[] {
  return cmd.argv.map(revealArg);
}
