import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { ValidationError, XamalError } from '../errors/index.ts';
import { shellQuote } from '../exec/command.ts';
import { gitRemoteParts } from './git-url.ts';

/**
 * The farm's own credentials for private repositories (issue 20 item 4): `XAMAL_GIT_CREDENTIALS_FILE`,
 * a JSON map from a git host (`github.com`, `git.example.com:8443`) or one repository on it
 * (`github.com/acme/shop`: GitHub deploy keys are per repository) to an https token and/or an ssh
 * deploy key: `{"github.com": {"username": "x-access-token", "token": "…"}, "github.com/acme/shop":
 * {"ssh_key_file": "/etc/xamal/keys/shop", "known_hosts_file": "/etc/xamal/known_hosts"}}`.
 * Over https git gets an `Authorization` header through its environment (GIT_CONFIG_COUNT/KEY/VALUE,
 * git ≥ 2.31), scoped to that host; over ssh a `GIT_SSH_COMMAND` offering that key only and checking
 * the host key against that file only. Never in a URL, an argv, a log or an error.
 */
const KeySchema = z.string().regex(/^[a-z0-9.-]+(?::\d{1,5})?(?:\/[A-Za-z0-9._~-]+)*$/, 'expected a host name like github.com or git.example.com:8443, or a repository on it like github.com/acme/shop');
const PathSchema = z.string().min(1).max(4096).regex(/^\/\S*$/, 'expected an absolute path without spaces (ssh splits its file options on them)');
const EntrySchema = z
  .object({
    username: z.string().min(1).max(256).regex(/^[^:\s]+$/, 'expected a user name without ":" or spaces').optional(),
    token: z.string().min(8, 'expected a token of at least 8 characters').max(4096).regex(/^\S+$/, 'expected a token without spaces').optional(),
    ssh_key_file: PathSchema.optional(),
    known_hosts_file: PathSchema.optional(),
  })
  .strict()
  .superRefine((e, ctx) => {
    if ((e.username === undefined) !== (e.token === undefined)) ctx.addIssue({ code: 'custom', path: [e.username === undefined ? 'username' : 'token'], message: 'expected username and token together (https)' });
    if ((e.ssh_key_file === undefined) !== (e.known_hosts_file === undefined)) {
      ctx.addIssue({ code: 'custom', path: [e.ssh_key_file === undefined ? 'ssh_key_file' : 'known_hosts_file'], message: 'expected ssh_key_file and known_hosts_file together (ssh: the deploy key and the host keys it may talk to)' });
    }
    if (e.token === undefined && e.ssh_key_file === undefined) ctx.addIssue({ code: 'custom', path: [], message: 'expected username and token (https), ssh_key_file and known_hosts_file (ssh), or both' });
  });
export const GitCredentialsSchema = z.record(z.string(), EntrySchema).superRefine((r, ctx) => {
  for (const k of Object.keys(r)) if (!KeySchema.safeParse(k).success) ctx.addIssue({ code: 'custom', path: [k], message: 'expected a host name like github.com or git.example.com:8443, or a repository on it like github.com/acme/shop' });
});
export type GitCredentials = z.output<typeof GitCredentialsSchema>;
type Entry = GitCredentials[string];

/** Parses the credentials file's text; every problem names its path in the file (never a token). */
export function parseGitCredentials(text: string, file: string): GitCredentials {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ValidationError([{ path: file, message: 'expected JSON: {"host": {"username": "…", "token": "…"}} or {"host/owner/repo": {"ssh_key_file": "…", "known_hosts_file": "…"}}' }], 'invalid XAMAL_GIT_CREDENTIALS_FILE');
  }
  const r = GitCredentialsSchema.safeParse(raw);
  if (!r.success) throw new ValidationError(r.error.issues.map((i) => ({ path: `${file}: ${i.path.join('.')}`, message: i.message })), 'invalid XAMAL_GIT_CREDENTIALS_FILE');
  return r.data;
}

/** The most specific entry for the URL's host and repository that has what `has` asks for. */
function entryFor(creds: GitCredentials, host: string, path: string, has: (e: Entry) => boolean): Entry | undefined {
  const repo = path.replace(/^\/+|\/+$/g, '').replace(/\.git$/, '');
  const keys = Object.keys(creds).filter((k) => {
    if (!has(creds[k]!)) return false;
    if (k === host) return true;
    const slash = k.indexOf('/');
    if (slash < 0 || k.slice(0, slash) !== host) return false;
    const prefix = k.slice(slash + 1);
    return repo === prefix || repo.startsWith(`${prefix}/`);
  });
  const best = keys.sort((a, b) => b.length - a.length)[0];
  return best === undefined ? undefined : creds[best];
}

/** A deploy key as the credentials file names it: the private key's file and the host keys it may talk to. */
export interface DeployKey {
  keyFile: string;
  knownHostsFile: string;
}

/** ssh's options for a deploy key: that key only, no agent, no user config, host keys from that file only. */
export function deployKeySshArgs(key: DeployKey): string[] {
  return [
    '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none',
    '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${key.knownHostsFile}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-i', key.keyFile,
  ];
}

/** ssh as git runs it for a deploy key (deployKeySshArgs, as one shell command line). */
export function deployKeySshCommand(keyFile: string, knownHostsFile: string): string {
  return ['ssh', ...deployKeySshArgs({ keyFile, knownHostsFile })].map(shellQuote).join(' ');
}

/** Pure: the deploy key for a repository (`path`) on an ssh host (`host` or `host:port`), the repository's entry before its host's. */
export function deployKeyFor(creds: GitCredentials | undefined, hostPort: string, path: string): DeployKey | undefined {
  const e = creds ? entryFor(creds, hostPort.toLowerCase(), path, (x) => x.ssh_key_file !== undefined) : undefined;
  return e ? { keyFile: e.ssh_key_file!, knownHostsFile: e.known_hosts_file! } : undefined;
}

/** How the deps step's git over ssh finds the farm's deploy key for a repository on a host (none for hosts it has none for). */
export type GitDeployKeys = (hostPort: string, path: string) => DeployKey | undefined;

export const gitDeployKeysFor = (creds: GitCredentials | undefined): GitDeployKeys => (hostPort, path) => deployKeyFor(creds, hostPort, path);

/**
 * Pure: the environment that gives git the credentials for `url`, or none: a token over https (over
 * http only on a farm that fetches http:// at all, `allowHttp`: a token there travels in clear), a
 * deploy key over ssh; the entry for the repository before the one for its host.
 */
export function gitCredentialEnv(url: string, creds: GitCredentials | undefined, allowHttp = false): Record<string, string> {
  if (!creds) return {};
  const r = gitRemoteParts(url);
  if (!r) return {};
  if (r.transport === 'ssh') {
    const key = deployKeyFor(creds, r.hostPort, r.path);
    return key ? { GIT_SSH_COMMAND: deployKeySshCommand(key.keyFile, key.knownHostsFile), GIT_SSH_VARIANT: 'ssh' } : {};
  }
  if (r.transport !== 'https' && !(allowHttp && r.transport === 'http')) return {};
  const entry = entryFor(creds, r.hostPort, r.path, (x) => x.token !== undefined);
  if (!entry) return {};
  const basic = Buffer.from(`${entry.username}:${entry.token}`).toString('base64');
  return { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: `http.${r.transport}://${r.hostPort}/.extraHeader`, GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}` };
}

/** Files an ssh entry names: each readable, and a deploy key readable by its owner only (ssh refuses others). */
function checkFiles(creds: GitCredentials, file: string): void {
  const issues: { path: string; message: string }[] = [];
  for (const [key, e] of Object.entries(creds)) {
    for (const field of ['ssh_key_file', 'known_hosts_file'] as const) {
      const path = e[field];
      if (path === undefined) continue;
      try {
        const st = statSync(path);
        if (!st.isFile()) issues.push({ path: `${file}: ${key}.${field}`, message: `${path} is not a file` });
        else if (field === 'ssh_key_file' && (st.mode & 0o077) !== 0) issues.push({ path: `${file}: ${key}.${field}`, message: `${path} is readable by group or others (chmod 600 it: ssh refuses such keys)` });
      } catch (err) {
        issues.push({ path: `${file}: ${key}.${field}`, message: `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})` });
      }
    }
  }
  if (issues.length) throw new ValidationError(issues, 'invalid XAMAL_GIT_CREDENTIALS_FILE');
}

/** Reads XAMAL_GIT_CREDENTIALS_FILE at start-up (a missing or unreadable file is a configuration error naming it). */
export function loadGitCredentials(file: string): GitCredentials {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new XamalError('validation', `XAMAL_GIT_CREDENTIALS_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const creds = parseGitCredentials(text, file);
  checkFiles(creds, file);
  return creds;
}

/** How git reaching a remote gets the farm's credentials: the environment for a URL (none for hosts it has none for). */
export type GitRemoteEnv = (url: string) => Record<string, string>;

export const gitRemoteEnvFor = (creds: GitCredentials | undefined, allowHttp: boolean): GitRemoteEnv => (url) => gitCredentialEnv(url, creds, allowHttp);

/** The settings as the API and the workers read them: XAMAL_GIT_CREDENTIALS_FILE (if set) and whether the farm fetches http. */
export const gitRemoteEnvFromFile = (file: string | undefined, allowHttp: boolean): GitRemoteEnv => gitRemoteEnvFor(file ? loadGitCredentials(file) : undefined, allowHttp);

/** The worker's view of XAMAL_GIT_CREDENTIALS_FILE (read once): git's environment for its own fetches, and the deploy keys the deps step's git over ssh uses. */
export function gitCredentialsFromFile(file: string | undefined, allowHttp: boolean): { gitRemoteEnv: GitRemoteEnv; gitDeployKeys: GitDeployKeys } {
  const creds = file ? loadGitCredentials(file) : undefined;
  return { gitRemoteEnv: gitRemoteEnvFor(creds, allowHttp), gitDeployKeys: gitDeployKeysFor(creds) };
}
