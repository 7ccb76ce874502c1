import type { Issue } from '../../core/index.ts';

/**
 * `<%= ENV["NAME"] %>` (Kamal) and `<%= env["NAME"] %>` (Xamal), single or double quotes — the only
 * template form understood; this is not Ruby. Any other `<%` tag is an error, as is a variable that
 * is not set. Lines that are YAML comments are left alone, so a commented-out line does not need
 * its variable.
 */
const TAG_RE = /<%(=?)(.*?)%>/g;
const ENV_REF_RE = /^\s*(?:ENV|env)\[\s*(?:"([A-Za-z_][A-Za-z0-9_]*)"|'([A-Za-z_][A-Za-z0-9_]*)')\s*\]\s*$/;

export interface InterpolateResult {
  text: string;
  /** Every problem found, each naming the file, line and variable. */
  issues: Issue[];
  /** Names of the variables used (to tell which values came from the environment). */
  used: string[];
}

export function interpolate(text: string, env: Readonly<Record<string, string | undefined>>, file: string): InterpolateResult {
  const issues: Issue[] = [];
  const used = new Set<string>();
  const lines = text.split('\n').map((line, idx) => {
    if (/^\s*#/.test(line)) return line;
    return line.replace(TAG_RE, (tag: string, eq: string, body: string) => {
      const where = `${file}:${idx + 1}`;
      const m = eq === '=' ? ENV_REF_RE.exec(body) : null;
      if (!m) {
        issues.push({ path: where, message: `unsupported template ${tag}: only <%= ENV["NAME"] %> is understood` });
        return tag;
      }
      const name = (m[1] ?? m[2])!;
      used.add(name);
      const value = Object.hasOwn(env, name) ? env[name] : undefined;
      if (value === undefined) {
        issues.push({ path: where, message: `environment variable ${name} is not set (used in ${file})` });
        return '';
      }
      return value;
    });
  });
  return { text: lines.join('\n'), issues, used: [...used] };
}
