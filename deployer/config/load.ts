import { existsSync } from 'node:fs';
import { extname, isAbsolute, join, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { readUserFile, ValidationError, XamalError, type Issue } from '../../core/index.ts';
import { interpolate } from './interpolate.ts';
import { configIssues } from './issues.ts';
import { DeployFileSchema, DestinationNameSchema, type DeployConfig } from './schema.ts';
import type { BuildAssets } from '../../core/contracts/build-settings.ts';

export const DEFAULT_CONFIG_FILE = 'config/deploy.yml';

export interface LoadOptions {
  /** The project directory; relative paths (config file, hooks, secrets) are resolved from it. */
  root: string;
  /** `-c`: defaults to config/deploy.yml. */
  configFile?: string;
  /** `-d`: merges config/deploy.<destination>.yml over the base file. */
  destination?: string;
  /** The environment `<%= ENV["NAME"] %>` reads (passed in; only config.ts files read process.env). */
  env: Readonly<Record<string, string | undefined>>;
}

export interface LoadedConfig {
  config: DeployConfig;
  destination: string | undefined;
  /** Files read, base first. */
  files: string[];
  root: string;
}

/** `config/deploy.yml` + `-d staging` → `config/deploy.staging.yml`. */
export function destinationFile(configFile: string, destination: string): string {
  const ext = extname(configFile);
  return `${configFile.slice(0, configFile.length - ext.length)}.${destination}${ext}`;
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Maps merge key by key; anything else (lists included) is replaced by the override, as in Kamal. */
export function deepMerge(base: unknown, override: unknown): unknown {
  if (!isPlain(base) || !isPlain(override)) return override;
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(override)) out[k] = Object.hasOwn(out, k) ? deepMerge(out[k], v) : v;
  return out;
}

/** Reads, interpolates and parses one YAML file; problems are returned, not thrown. */
async function readYaml(path: string, shown: string, env: LoadOptions['env']): Promise<{ value: unknown; issues: Issue[] }> {
  const text = await readUserFile(path, shown);
  if (text === undefined) throw new XamalError('not_found', `configuration file not found: ${shown} (run \`xamal init\` to create one)`);
  const interpolated = interpolate(text, env, shown);
  const lines = new LineCounter();
  const doc = parseDocument(interpolated.text, { merge: true, uniqueKeys: true, prettyErrors: false, lineCounter: lines });
  const issues = [...interpolated.issues];
  for (const e of doc.errors) {
    const pos = lines.linePos(e.pos[0]);
    issues.push({ path: pos ? `${shown}:${pos.line}:${pos.col}` : shown, message: e.message.split('\n')[0]! });
  }
  if (issues.length) return { value: undefined, issues };
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    // An alias to no anchor (`*x`) or an alias bomb is found only here, and thrown, not collected.
    return { value: undefined, issues: [{ path: shown, message: `invalid YAML: ${(err as Error).message}` }] };
  }
  if (value !== null && value !== undefined && !isPlain(value)) return { value: undefined, issues: [{ path: shown, message: `expected a map at the top level, got ${Array.isArray(value) ? 'a list' : typeof value}` }] };
  // Kamal convention: top-level keys starting with x- hold YAML anchors and are otherwise ignored.
  const plain = { ...((value as Plain | null) ?? {}) };
  for (const k of Object.keys(plain)) if (k.startsWith('x-')) delete plain[k];
  return { value: plain, issues: [] };
}

/**
 * Loads the deploy configuration: the base file, the destination's file deep-merged over it,
 * `<%= ENV["NAME"] %>` filled in, then validated. Every problem (template, YAML, schema) is
 * reported at once in one ValidationError, each line with its path.
 */
export async function loadDeployConfig(opts: LoadOptions): Promise<LoadedConfig> {
  const configFile = opts.configFile ?? DEFAULT_CONFIG_FILE;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(opts.root, p));
  if (opts.destination !== undefined) {
    const d = DestinationNameSchema.safeParse(opts.destination);
    if (!d.success) throw new ValidationError([{ path: 'destination', message: `${d.error.issues[0]!.message}, got ${JSON.stringify(opts.destination)}` }]);
  }
  const files = [configFile, ...(opts.destination ? [destinationFile(configFile, opts.destination)] : [])];
  const issues: Issue[] = [];
  let merged: unknown = {};
  for (const file of files) {
    const r = await readYaml(abs(file), file, opts.env);
    issues.push(...r.issues);
    merged = deepMerge(merged, r.value ?? {});
  }
  if (issues.length) throw new ValidationError(issues, `invalid configuration (${files.join(' + ')})`);
  const parsed = DeployFileSchema.safeParse(merged);
  if (!parsed.success) throw new ValidationError(configIssues(parsed.error.issues, merged), `invalid configuration (${files.join(' + ')})`);
  if (parsed.data.requireDestination && opts.destination === undefined) {
    throw new ValidationError([{ path: 'require_destination', message: 'this configuration requires a destination: pass -d DESTINATION' }], `invalid configuration (${configFile})`);
  }
  return { config: parsed.data, destination: opts.destination, files, root: opts.root };
}

/** What `xamal build` takes from a project's deploy.yml: the builder section, release.mix_env, and for its pre-build hook the service and hooks_path. */
export interface BuilderSettings {
  env: Record<string, string>;
  secrets: string[];
  packages: string[];
  /** What the assets step reads (builder.assets), when declared. */
  assets: BuildAssets | undefined;
  mixEnv: string | undefined;
  service: string | undefined;
  hooksPath: string;
}

/**
 * The `builder:` section, `release.mix_env`, `service` and `hooks_path` of `<root>/config/deploy.yml`,
 * validated alone (a build needs no servers, hosts or destinations); undefined when the project has
 * no deploy.yml.
 */
export async function loadBuilderSettings(root: string, env: LoadOptions['env']): Promise<BuilderSettings | undefined> {
  const path = join(root, DEFAULT_CONFIG_FILE);
  if (!existsSync(path)) return undefined;
  const r = await readYaml(path, DEFAULT_CONFIG_FILE, env);
  if (r.issues.length) throw new ValidationError(r.issues, `invalid configuration (${DEFAULT_CONFIG_FILE})`);
  const doc = (r.value ?? {}) as { builder?: unknown; release?: { mix_env?: unknown }; service?: unknown; hooks_path?: unknown };
  const shape = DeployFileSchema.in.shape;
  const parsed = shape.builder.safeParse(doc.builder);
  const mixEnv = shape.release.safeParse(doc.release ?? {});
  const service = doc.service === undefined ? undefined : shape.service.safeParse(doc.service);
  const hooksPath = shape.hooks_path.safeParse(doc.hooks_path);
  const issues = [
    ...(parsed.success ? [] : configIssues(parsed.error.issues, doc.builder, ['builder'])),
    ...(mixEnv.success ? [] : configIssues(mixEnv.error.issues, doc.release, ['release'])),
    ...(!service || service.success ? [] : configIssues(service.error.issues, doc.service, ['service'])),
    ...(hooksPath.success ? [] : configIssues(hooksPath.error.issues, doc.hooks_path, ['hooks_path'])),
  ];
  if (!parsed.success || !mixEnv.success || !hooksPath.success || (service && !service.success)) throw new ValidationError(issues, `invalid configuration (${DEFAULT_CONFIG_FILE})`);
  const release = doc.release as { mix_env?: string } | undefined;
  return { env: parsed.data.env, secrets: parsed.data.secrets, packages: parsed.data.packages, assets: parsed.data.assets, mixEnv: release?.mix_env, service: service?.data, hooksPath: hooksPath.data };
}

/** A path from the config (hooks_path, secrets_path) resolved against the project root. */
export function projectPath(root: string, path: string): string {
  return isAbsolute(path) ? path : join(root, path);
}

/** Validates a parsed value (e.g. a documented example) without reading files. */
export function validateDeployConfig(value: unknown, heading = 'invalid configuration'): DeployConfig {
  const parsed = DeployFileSchema.safeParse(value);
  if (!parsed.success) throw new ValidationError(configIssues(parsed.error.issues, value), heading);
  return parsed.data;
}
