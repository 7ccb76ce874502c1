import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { isMissingFile, XamalError } from '../../core/index.ts';
import { interpolate } from './interpolate.ts';
import { deepMerge, validateDeployConfig } from './load.ts';
import type { DeployConfig } from './schema.ts';

/**
 * `xamal docs`: one annotated example per section of deploy.yml. The example shown to the user is
 * the one the unit tests validate, so the documentation cannot drift from the schema.
 */
export const EXAMPLES_DIR = fileURLToPath(new URL('./examples/', import.meta.url));

export interface DocSection {
  name: string;
  /** The first comment line: `Servers: the hosts to deploy to, …`. */
  summary: string;
}

export function docSections(): DocSection[] {
  return readdirSync(EXAMPLES_DIR)
    .filter((f) => f.endsWith('.yml'))
    .map((f) => f.slice(0, -4))
    .sort((a, b) => (a === 'overview' ? -1 : b === 'overview' ? 1 : a.localeCompare(b)))
    .map((name) => ({ name, summary: (/^#\s*(.*)$/m.exec(docText(name))?.[1] ?? '').trim() }));
}

export function docText(section: string): string {
  if (!/^[a-z_]+$/.test(section)) throw unknownSection(section);
  try {
    return readFileSync(`${EXAMPLES_DIR}${section}.yml`, 'utf8');
  } catch (err) {
    if (isMissingFile(err)) throw unknownSection(section);
    throw err;
  }
}

function unknownSection(section: string): XamalError {
  const names = readdirSync(EXAMPLES_DIR)
    .filter((f) => f.endsWith('.yml'))
    .map((f) => f.slice(0, -4));
  return new XamalError('not_found', `no docs section ${JSON.stringify(section)}; sections: ${names.sort().join(', ')}`);
}

/** What a section's example is validated on top of when it does not name servers itself. */
const EXAMPLE_BASE = { service: 'my-app', servers: ['192.168.0.1'] };

/** Validates a section's example as a deploy.yml (over a minimal service + servers). */
export function parseExample(section: string, env: Readonly<Record<string, string | undefined>>): { raw: Record<string, unknown>; config: DeployConfig } {
  const file = `examples/${section}.yml`;
  const interpolated = interpolate(docText(section), env, file);
  if (interpolated.issues.length) throw new XamalError('validation', interpolated.issues.map((i) => `${i.path}: ${i.message}`).join('\n'));
  const raw = parse(interpolated.text) as Record<string, unknown>;
  return { raw, config: validateDeployConfig(deepMerge(EXAMPLE_BASE, raw), `invalid example ${file}`) };
}
