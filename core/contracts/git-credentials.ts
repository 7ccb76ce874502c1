import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ValidationError, XamalError } from '../errors/index.ts';

/**
 * The farm's own credentials for private repositories over https (issue 20 item 4), per host:
 * `XAMAL_GIT_CREDENTIALS_FILE`, a JSON map `{"github.com": {"username": "x-access-token", "token":
 * "…"}}`. git gets them as an `Authorization` header through its environment (GIT_CONFIG_COUNT/
 * KEY/VALUE, git ≥ 2.31), scoped to that host: never in a URL, an argv, a log or an error.
 */
const HostSchema = z.string().regex(/^[a-z0-9.-]+(?::\d{1,5})?$/, 'expected a host name like github.com or git.example.com:8443');
const EntrySchema = z
  .object({
    username: z.string().min(1).max(256).regex(/^[^:\s]+$/, 'expected a user name without ":" or spaces'),
    token: z.string().min(8, 'expected a token of at least 8 characters').max(4096).regex(/^\S+$/, 'expected a token without spaces'),
  })
  .strict();
export const GitCredentialsSchema = z.record(z.string(), EntrySchema).superRefine((r, ctx) => {
  for (const k of Object.keys(r)) if (!HostSchema.safeParse(k).success) ctx.addIssue({ code: 'custom', path: [k], message: 'expected a host name like github.com or git.example.com:8443' });
});
export type GitCredentials = z.output<typeof GitCredentialsSchema>;

/** Parses the credentials file's text; every problem names its path in the file (never a token). */
export function parseGitCredentials(text: string, file: string): GitCredentials {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ValidationError([{ path: file, message: 'expected JSON: {"host": {"username": "…", "token": "…"}}' }], 'invalid XAMAL_GIT_CREDENTIALS_FILE');
  }
  const r = GitCredentialsSchema.safeParse(raw);
  if (!r.success) throw new ValidationError(r.error.issues.map((i) => ({ path: `${file}: ${i.path.join('.')}`, message: i.message })), 'invalid XAMAL_GIT_CREDENTIALS_FILE');
  return r.data;
}

/**
 * Pure: the environment that gives git the credentials for `url`'s host, or none: over https, or
 * over http only on a farm that fetches http:// at all (`allowHttp`, XAMAL_GIT_ALLOW_HTTP: a token
 * there travels in clear).
 */
export function gitCredentialEnv(url: string, creds: GitCredentials | undefined, allowHttp = false): Record<string, string> {
  if (!creds) return {};
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return {};
  }
  if (u.protocol !== 'https:' && !(allowHttp && u.protocol === 'http:')) return {};
  const entry = creds[u.host];
  if (!entry) return {};
  const basic = Buffer.from(`${entry.username}:${entry.token}`).toString('base64');
  return { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: `http.${u.protocol}//${u.host}/.extraHeader`, GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}` };
}

/** Reads XAMAL_GIT_CREDENTIALS_FILE at start-up (a missing or unreadable file is a configuration error naming it). */
export function loadGitCredentials(file: string): GitCredentials {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new XamalError('validation', `XAMAL_GIT_CREDENTIALS_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseGitCredentials(text, file);
}

/** How git reaching a remote gets the farm's credentials: the environment for a URL (none for hosts it has none for). */
export type GitRemoteEnv = (url: string) => Record<string, string>;

export const gitRemoteEnvFor = (creds: GitCredentials | undefined, allowHttp: boolean): GitRemoteEnv => (url) => gitCredentialEnv(url, creds, allowHttp);

/** The settings as the API and the workers read them: XAMAL_GIT_CREDENTIALS_FILE (if set) and whether the farm fetches http. */
export const gitRemoteEnvFromFile = (file: string | undefined, allowHttp: boolean): GitRemoteEnv => gitRemoteEnvFor(file ? loadGitCredentials(file) : undefined, allowHttp);
