import { parseArgs } from 'node:util';
import { isXamalError, XamalError } from '../core/index.ts';
import { deployerEnv } from '../deployer/config.ts';
import { loadDeployConfig } from '../deployer/config/load.ts';
import type { DeployConfig } from '../deployer/config/schema.ts';

/**
 * deploy.yml's `aliases:` as Kamal dispatches them: `xamal NAME [ARGS…]` runs the alias's command
 * words followed by ARGS. An alias expands once (into a command, never another alias). The config
 * is read only for a first word that is no command of the table (and for the built-in `console`).
 */

/** Aliases xamal defines itself; deploy.yml's alias of the same name replaces one. */
export const BUILTIN_ALIASES: Record<string, (config: Pick<DeployConfig, 'release'>) => string> = {
  // The release's remote shell (iex --remsh) attached to the running node: the release script
  // reaches it by RELEASE_NODE and RELEASE_COOKIE, both in the slot's env file app exec reads.
  console: (c) => `app exec --interactive "bin/${c.release.name} remote"`,
};

/**
 * Splits an alias's command into words as a POSIX shell does (Ruby's Shellwords, as Kamal): blanks
 * separate, '…' is literal, "…" keeps its text with \\ escaping \\ " $ `, a backslash outside quotes
 * escapes the next character. No expansion of any kind.
 */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let i = 0;
  const unterminated = (q: string) => new XamalError('validation', `unterminated ${q} in ${JSON.stringify(line)}`);
  while (i < line.length) {
    const c = line[i]!;
    if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
      i++;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw unterminated('single quote');
      word = (word ?? '') + line.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      let text = '';
      for (i++; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === '\\' && i + 1 < line.length && '\\"$`\n'.includes(line[i + 1]!)) i++;
        text += line[i];
      }
      if (i >= line.length) throw unterminated('double quote');
      word = (word ?? '') + text;
      i++;
    } else if (c === '\\') {
      word = (word ?? '') + (line[i + 1] ?? '');
      i += 2;
    } else {
      word = (word ?? '') + c;
      i++;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

export interface Expansion {
  alias: string;
  /** The alias's definition, as written. */
  definition: string;
  argv: string[];
}

/** Pure: `[name, …rest]` → the alias's words then `rest`; undefined when `name` is no alias. */
export function expandAlias(argv: readonly string[], aliases: Readonly<Record<string, string>>, config: Pick<DeployConfig, 'release'>): Expansion | undefined {
  const [name, ...rest] = argv;
  if (name === undefined) return undefined;
  const definition = Object.hasOwn(aliases, name) ? aliases[name] : Object.hasOwn(BUILTIN_ALIASES, name) ? BUILTIN_ALIASES[name]!(config) : undefined;
  if (definition === undefined) return undefined;
  let words: string[];
  try {
    words = splitWords(definition);
  } catch (err) {
    throw new XamalError('validation', `aliases.${name}: ${(err as Error).message}`);
  }
  if (words.length === 0) throw new XamalError('validation', `aliases.${name}: expected a command`);
  return { alias: name, definition, argv: [...words, ...rest] };
}

/** The -d and -c among an alias's arguments: which deploy.yml defines it. */
function configFlags(args: readonly string[]): { destination?: string | undefined; configFile?: string | undefined } {
  const { values } = parseArgs({ args: [...args], options: { destination: { type: 'string', short: 'd' }, 'config-file': { type: 'string', short: 'c' } }, strict: false, allowPositionals: true });
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return { destination: str(values.destination), configFile: str(values['config-file']) };
}

/**
 * Reads deploy.yml (with the -d/-c among `argv`) and expands `argv[0]` if it is an alias, else
 * answers the aliases there are. Without a deploy.yml there are none (a built-in alias needs one:
 * that error is thrown); a deploy.yml that does not load is thrown as it is.
 */
export async function resolveAlias(argv: readonly string[], opts: { builtin: boolean; root?: string }): Promise<Expansion | { aliases: string[] } | undefined> {
  const flags = configFlags(argv.slice(1));
  let config: DeployConfig;
  try {
    config = (await loadDeployConfig({ root: opts.root ?? process.cwd(), configFile: flags.configFile, destination: flags.destination, env: deployerEnv() })).config;
  } catch (err) {
    if (!opts.builtin && isXamalError(err) && err.code === 'not_found') return undefined;
    throw err;
  }
  return expandAlias(argv, config.aliases, config) ?? { aliases: Object.keys(config.aliases) };
}
