import { ValidationError } from './errors/index.ts';
import { compareVersions } from './tuple/version.ts';

/**
 * What a Mix project says about its toolchain: the `erlang` and `elixir` lines of `.tool-versions`
 * (asdf, mise) and the `elixir:` requirement in `mix.exs`, with Elixir's requirement grammar
 * (`~> 1.15`, `>= 1.14.0 and < 1.18.0`, `or`). Small code of our own: npm's semver ranges give `~`
 * and `~>`-less operators other meanings than Elixir's Version does.
 */

export interface ToolVersions {
  erlang?: string;
  elixir?: string;
}

const RELEASE = /^\d+(?:\.\d+){1,4}$/;

/**
 * Pure: `.tool-versions` → the first version of its `erlang` and `elixir` lines (asdf lists fallbacks
 * after the first). Elixir's `-otp-27` suffix (a precompiled build's OTP) is dropped; `ref:`,
 * `path:` and `system` versions are refused, naming the line.
 */
export function parseToolVersions(text: string, file = '.tool-versions'): ToolVersions {
  const out: ToolVersions = {};
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*$/, '').trim();
    const [tool, first] = line.split(/\s+/);
    if ((tool !== 'erlang' && tool !== 'elixir') || out[tool] !== undefined) continue;
    const version = tool === 'elixir' ? first?.replace(/-otp-\d+$/, '') : first;
    if (!version || !RELEASE.test(version)) {
      throw new ValidationError([{ path: `${file}:${i + 1}`, message: `expected "${tool} <release>" like ${tool === 'erlang' ? '27.3.4.1' : '1.18.3-otp-27'}, got ${JSON.stringify(raw.trim())}` }], `${file}: unusable ${tool} version`);
    }
    out[tool] = version;
  }
  return out;
}

/** Pure: the `elixir:` requirement of a `mix.exs` project definition, if it states one as a string literal. */
export function mixElixirRequirement(mixExs: string): string | undefined {
  return /(?:^|[\s,[{(])elixir:\s*"([^"\n]{1,200})"/m.exec(mixExs)?.[1];
}

type Op = '==' | '!=' | '>' | '>=' | '<' | '<=' | '~>';
interface Clause {
  op: Op;
  version: string;
}

const CLAUSE = /^(==|!=|>=|<=|>|<|~>)?\s*(\d+\.\d+(?:\.\d+)?)$/;

/** `~> 1.15` → >= 1.15.0 and < 2.0.0; `~> 1.15.2` → >= 1.15.2 and < 1.16.0. */
function clauseHolds(c: Clause, v: string): boolean {
  const cmp = compareVersions(v, c.version);
  switch (c.op) {
    case '==':
      return cmp === 0;
    case '!=':
      return cmp !== 0;
    case '>':
      return cmp > 0;
    case '>=':
      return cmp >= 0;
    case '<':
      return cmp < 0;
    case '<=':
      return cmp <= 0;
    case '~>': {
      const parts = c.version.split('.').map(Number);
      const upper = parts.length === 2 ? `${parts[0]! + 1}.0.0` : `${parts[0]}.${parts[1]! + 1}.0`;
      return cmp >= 0 && compareVersions(v, upper) < 0;
    }
  }
}

export interface ElixirRequirement {
  text: string;
  /** Does a release version satisfy it? */
  allows(version: string): boolean;
}

/** Pure: an Elixir version requirement, or a ValidationError naming `path` and what was expected. */
export function parseElixirRequirement(text: string, path = 'elixirRequirement'): ElixirRequirement {
  const alternatives = text.split(/\s+or\s+/).map((alt) =>
    alt.split(/\s+and\s+/).map((part) => {
      const m = CLAUSE.exec(part.trim());
      const op = (m?.[1] ?? '==') as Op;
      // Elixir's Version wants MAJOR.MINOR.PATCH except after ~>.
      if (!m || (op !== '~>' && m[2]!.split('.').length !== 3)) {
        throw new ValidationError([{ path, message: `expected an Elixir requirement like "~> 1.15" or ">= 1.14.0 and < 1.18.0", got ${JSON.stringify(text)}` }], 'invalid Elixir requirement');
      }
      return { op, version: m[2]! };
    }),
  );
  return { text, allows: (version) => alternatives.some((all) => all.every((c) => clauseHolds(c, version))) };
}
