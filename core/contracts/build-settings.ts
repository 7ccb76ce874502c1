import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { XamalError } from '../errors/index.ts';

/**
 * A build's own settings (issue 20 item 2): environment for its steps, and secrets only the steps
 * that fetch (deps, assets) get — sealed with the farm's key in the job (never at rest in clear),
 * given to those steps through a file on tmpfs (never argv nor the container's config), and cut
 * out of everything the build prints.
 */

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** What the farm sets itself in every step: a build may not replace it. */
export const RESERVED_BUILD_ENV = ['HOME', 'PATH', 'MIX_ENV', 'MIX_HOME', 'HEX_HOME', 'MIX_ARCHIVES', 'MIX_REBAR3', 'LANG', 'LC_ALL', 'ERL_AFLAGS', 'RELEASE_TMP', 'RELEASE_DISTRIBUTION'];

/** Why a variable name cannot be a build setting, or undefined. */
function nameProblem(n: string): string | undefined {
  if (!NAME.test(n)) return 'expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*, at most 64 characters)';
  if (RESERVED_BUILD_ENV.includes(n) || /^(?:https?|no)_proxy$/i.test(n) || n.startsWith('XAMAL_')) return 'set by the farm itself (HOME, PATH, MIX_*, proxies, XAMAL_*): not a build setting';
  return undefined;
}

/** A map of variables whose names are checked one by one (each problem names its key), at most `max` of them. */
const variables = (value: z.ZodString, max: number, what: string) =>
  z.record(z.string(), value).superRefine((r, ctx) => {
    for (const k of Object.keys(r)) {
      const problem = nameProblem(k);
      if (problem) ctx.addIssue({ code: 'custom', path: [k], message: problem });
    }
    if (Object.keys(r).length > max) ctx.addIssue({ code: 'custom', message: `expected at most ${max} ${what}` });
  });

/** Environment every step of the build gets (not secret: it is in the job and the log may show it). */
export const BuildEnvSchema = variables(z.string().max(4096, 'expected at most 4096 characters'), 64, 'variables');

/** Secrets the deps and assets steps get as environment (a private Hex org key, a git token). */
export const BuildSecretsSchema = variables(z.string().min(4, 'expected at least 4 characters (shorter values cannot be cut from logs reliably)').max(8192, 'expected at most 8192 characters'), 16, 'secrets');
export type BuildSecrets = z.output<typeof BuildSecretsSchema>;

/** Debian policy's package name: lower-case letters, digits, `+ - .`, starting alphanumeric, at least two characters. */
export const DebianPackageSchema = z.string().regex(/^[a-z0-9][a-z0-9+.-]{1,62}$/, 'expected a Debian package name (lower-case letters, digits, "+", "-", "."; 2 to 63 characters)');

/**
 * Debian packages a build needs beyond its builder's (a library a NIF links, an image tool): the
 * worker installs them into a derived image, made once per builder digest and list (builder/derived-image.ts).
 */
export const BuildPackagesSchema = z
  .array(DebianPackageSchema)
  .max(32, 'expected at most 32 packages')
  .transform((xs) => [...new Set(xs)].sort());

/** A sealed set of secrets as a job holds it: `v1.<iv>.<tag>.<ciphertext>`, base64url. */
export const SealedSecretsSchema = z.string().regex(/^v1\.[\w-]{16}\.[\w-]{22}\.[\w-]{4,20000}$/, 'expected sealed secrets (v1.…)');

/** The farm's key for build secrets: 32 bytes (XAMAL_BUILD_SECRETS_KEY, 64 hex characters). */
export function secretsKeyFrom(hex: string): Buffer {
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new XamalError('validation', 'XAMAL_BUILD_SECRETS_KEY: expected 64 hex characters (32 bytes; e.g. `openssl rand -hex 32`)');
  return Buffer.from(hex, 'hex');
}

/** Seals secrets with the farm's key (AES-256-GCM). */
export function sealSecrets(key: Buffer, secrets: BuildSecrets): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([cipher.update(JSON.stringify(secrets), 'utf8'), cipher.final()]);
  return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
}

/** Opens sealed secrets; another key (or altered data) is an error naming the setting. */
export function openSecrets(key: Buffer | undefined, sealed: string): BuildSecrets {
  const hint = 'the API and every worker of a farm must share XAMAL_BUILD_SECRETS_KEY';
  if (!key) throw new XamalError('validation', `this build has secrets but the worker has no key to open them: ${hint}`);
  const [v, iv, tag, ct] = sealed.split('.');
  try {
    if (v !== 'v1') throw new Error('version');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv!, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag!, 'base64url'));
    const json = Buffer.concat([decipher.update(Buffer.from(ct!, 'base64url')), decipher.final()]).toString('utf8');
    return BuildSecretsSchema.parse(JSON.parse(json));
  } catch {
    throw new XamalError('validation', `this build's secrets were sealed with another key (or altered): ${hint}`);
  }
}

/** Pure: a function replacing every secret's value by `[secret NAME]` (longest first, so no value is cut in part), prepared once. */
export function secretRedactor(secrets: BuildSecrets | undefined): (text: string) => string {
  const pairs = Object.entries(secrets ?? {}).sort((a, b) => b[1].length - a[1].length);
  if (!pairs.length) return (text) => text;
  return (text) => pairs.reduce((out, [name, value]) => out.split(value).join(`[secret ${name}]`), text);
}

/** Pure: `text` with every secret's value replaced by `[secret NAME]`. */
export function redactSecrets(text: string, secrets: BuildSecrets | undefined): string {
  return secretRedactor(secrets)(text);
}

/**
 * One input of a project's assets step, as a path pattern relative to the project's root: `*` and
 * `?` within one name, `**` for any number of directories (`assets/**`, `lib/**\/*.heex`).
 */
export const AssetsInputPatternSchema = z
  .string()
  .min(1, 'expected a path pattern like assets/**')
  .max(256, 'expected at most 256 characters')
  .regex(/^[A-Za-z0-9_.@+*?/-]+$/, 'expected a path pattern of letters, digits and _ . @ + - / * ? (like assets/** or lib/**/*.heex)')
  .refine((p) => !p.startsWith('/') && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..'), 'expected a path relative to the project root, without empty, "." or ".." parts');

/**
 * What a project's assets step (`mix assets.deploy`) reads, declared by the project (deploy.yml
 * `builder.assets`): with it, the worker skips the step when those files (and the command, builder
 * image, mix.lock, config, MIX_ENV and environment) are what an earlier build of the app had, and
 * restores that build's priv/static instead (builder/assets-cache.ts). Sorted and deduplicated.
 */
export const BuildAssetsSchema = z
  .object({
    inputs: z
      .array(AssetsInputPatternSchema)
      .min(1, 'expected at least one path pattern (or leave assets out: the step then always runs)')
      .max(64, 'expected at most 64 path patterns')
      .transform((xs) => [...new Set(xs)].sort()),
  })
  .strict();
export type BuildAssets = z.output<typeof BuildAssetsSchema>;
