import type { z } from 'zod';
import { joinPath, type Issue } from '../../core/index.ts';

/** Keys of a Kamal deploy.yml that have no meaning without Docker, with what to do instead. */
const KAMAL_ONLY: Readonly<Record<string, string>> = {
  image: 'xamal deploys Elixir releases, not images; the release is named by release.name',
  registry: 'no registry: releases come from the farm (see `xamal docs farm`)',
  builder: 'releases are built by the farm (see `xamal docs farm`)',
  proxy: 'xamal fronts the app with Caddy (see `xamal docs caddy`)',
  accessories: 'accessories are not supported',
  volumes: 'no containers, no volumes',
  labels: 'no containers, no labels',
  logging: 'logs go to the journal of the release unit',
  asset_path: 'not supported',
};

function typeName(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return typeof v;
}

const EXPECTED: Readonly<Record<string, string>> = { array: 'a list', record: 'a map', object: 'a map', int: 'an integer', map: 'a map' };

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

type ZodIssue = z.core.$ZodIssue;

const isShapeMismatch = (errs: readonly ZodIssue[]) => errs.every((e) => e.code === 'invalid_type' && e.path.length === 0);

/**
 * zod issues as `path: message` lines a person can act on: unions resolved to the branch whose
 * shape matches the input (so `servers/web/hosts/0` is reported, not "invalid input" at
 * `servers`), unknown keys one per line with their own path, type errors saying what was given.
 */
export function configIssues(issues: readonly ZodIssue[], input: unknown, prefix: readonly PropertyKey[] = []): Issue[] {
  const out: Issue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    switch (issue.code) {
      case 'invalid_union': {
        const candidates = issue.errors.filter((errs) => !isShapeMismatch(errs));
        if (candidates.length > 0) {
          const best = candidates.reduce((a, b) => (b.length < a.length ? b : a));
          out.push(...configIssues(best, input, path));
        } else {
          const custom = issue.message && issue.message !== 'Invalid input';
          const expected = [...new Set(issue.errors.flat().map((e) => (e.code === 'invalid_type' ? (EXPECTED[e.expected] ?? e.expected) : '')))].filter(Boolean);
          out.push({ path: joinPath(path), message: `${custom ? issue.message : `expected ${expected.join(' or ')}`}, got ${typeName(valueAt(input, path))}` });
        }
        break;
      }
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          const hint = path.length === 0 ? KAMAL_ONLY[key] : undefined;
          out.push({ path: joinPath([...path, key]), message: `unknown key${hint ? ` (${hint})` : ''}` });
        }
        break;
      case 'invalid_type': {
        const got = valueAt(input, path);
        out.push({ path: joinPath(path), message: got === undefined ? 'required' : `expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${typeName(got)}` });
        break;
      }
      case 'invalid_key':
        // The nested issues are about the key itself, so they are checked against the key.
        out.push(...configIssues(issue.issues, path.at(-1)).map((i) => ({ path: joinPath(path), message: `invalid key: ${i.message}` })));
        break;
      case 'invalid_value':
        out.push({ path: joinPath(path), message: `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(valueAt(input, path))}` });
        break;
      case 'invalid_format':
      case 'too_big':
      case 'too_small': {
        // Say what was given, except for values that may be secrets (inline SSH keys).
        const got = valueAt(input, path);
        const show = (typeof got === 'string' && got.length <= 80) || typeof got === 'number';
        out.push({ path: joinPath(path), message: show && !path.includes('key_data') ? `${issue.message}, got ${JSON.stringify(got)}` : issue.message });
        break;
      }
      default:
        out.push({ path: joinPath(path), message: issue.message });
    }
  }
  return out;
}
