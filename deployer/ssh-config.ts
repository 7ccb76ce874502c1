import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import SSHConfig, { glob as sshGlob } from 'ssh-config';
import { isMissingFile, XamalError } from '../core/index.ts';
import type { SshConfig } from './config/schema.ts';

/**
 * OpenSSH client config (deploy.yml `ssh.config`, as Kamal's net-ssh reads it): the one reader of
 * ~/.ssh/config and /etc/ssh/ssh_config (the `ssh-config` package), and where each host is reached —
 * deploy.yml's explicit ssh settings, then those files, then root and 22.
 */

/** `~/x` → `<home>/x` (and `~` alone → home). */
export function expandHome(p: string, home: string): string {
  return p === '~' ? home : p.startsWith('~/') ? join(home, p.slice(2)) : p;
}

/** Where and how one host is reached: deploy.yml's explicit ssh settings, then ~/.ssh/config, then defaults. */
export interface HostEndpoint {
  /** The host as deploy.yml names it (an address, or a ~/.ssh/config alias). */
  name: string;
  /** What the TCP connection goes to: ~/.ssh/config's HostName, else the name. */
  address: string;
  user: string;
  port: number;
  /** ~/.ssh/config's IdentityFile (expanded), offered after deploy.yml's keys; unreadable ones skipped, as ssh does. */
  identityFiles: string[];
  /** IdentitiesOnly yes: the agent is not offered (as deploy.yml's keys_only). */
  identitiesOnly: boolean;
  /** The name its key is looked up by in known_hosts: HostKeyAlias, else the address (as ssh). */
  hostKeyName: string;
  /** ~/.ssh/config's UserKnownHostsFile (the first), when deploy.yml sets no ssh.known_hosts. */
  knownHostsPath?: string;
  /** The jump host (deploy.yml ssh.proxy, else ProxyJump); one hop. */
  jump?: HostEndpoint;
}

/** One OpenSSH client config file, parsed, its Include lines inlined. */
export interface SshConfigFile {
  path: string;
  config: SSHConfig;
}

/** Pure: one file's text, parsed (its Includes already inlined). */
export function sshConfigFile(path: string, text: string): SshConfigFile {
  return { path, config: SSHConfig.parse(text) };
}

/** The files `ssh.config: true` reads, in order (the first value found for a setting wins). */
export function defaultSshConfigPaths(home: string): string[] {
  return [join(home, '.ssh', 'config'), '/etc/ssh/ssh_config'];
}

const INCLUDE_RE = /^[ \t]*Include[ \t]*[= \t][ \t]*(.+?)[ \t]*$/gim;

/** Paths an Include names: `~` expanded, relative to `dir` (~/.ssh or /etc/ssh), `*`/`?` in the file name globbed. */
function includePaths(word: string, dir: string, home: string): string[] {
  const expanded = expandHome(word.replace(/^"(.*)"$/, '$1'), home);
  const full = isAbsolute(expanded) ? expanded : join(dir, expanded);
  const name = basename(full);
  if (!/[*?]/.test(name)) return existsSync(full) ? [full] : [];
  let names: string[];
  try {
    names = readdirSync(dirname(full));
  } catch {
    return [];
  }
  return names.filter((n) => sshGlob(name, n)).sort().map((n) => join(dirname(full), n));
}

/** The text with each Include replaced by the files it names (at most 16 deep, as ssh). */
function inlineIncludes(text: string, dir: string, home: string, depth = 0): string {
  return text.replace(INCLUDE_RE, (_line, args: string) => {
    if (depth >= 16) throw new XamalError('validation', `ssh.config: Include nested more than 16 deep (${args})`);
    const files = args.split(/\s+/).flatMap((w) => includePaths(w, dir, home));
    return files.map((f) => inlineIncludes(readFileSync(f, 'utf8'), dir, home, depth + 1)).join('\n');
  });
}

/**
 * Reads the files deploy.yml's `ssh.config` names (as Kamal's, net-ssh's): true → ~/.ssh/config and
 * /etc/ssh/ssh_config, those missing skipped; false → none; paths (`~` expanded, relative to the
 * project) → those, each of which must exist.
 */
export function readSshConfigFiles(option: boolean | readonly string[], where: { home: string; root: string }): SshConfigFile[] {
  if (option === false) return [];
  const explicit = option !== true;
  const paths = option === true ? defaultSshConfigPaths(where.home) : option.map((p) => resolve(where.root, expandHome(p, where.home)));
  const out: SshConfigFile[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if (!explicit && isMissingFile(err)) continue;
      throw new XamalError(explicit && isMissingFile(err) ? 'not_found' : 'usage', `ssh.config: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const dir = path.startsWith('/etc/ssh/') ? '/etc/ssh' : join(where.home, '.ssh');
    out.push(sshConfigFile(path, inlineIncludes(text, dir, where.home)));
  }
  return out;
}

/** What OpenSSH client config says about one host (values as written, before expansion). */
export interface SshConfigHost {
  hostName?: string;
  user?: string;
  port?: string;
  identityFiles: string[];
  identitiesOnly?: boolean;
  proxyJump?: string;
  userKnownHostsFile?: string;
  hostKeyAlias?: string;
}

/**
 * Pure: the settings for `host` across the files, as ssh reads them: Host patterns (wildcards,
 * negations) matched against the name as given (lower-cased), the first value found wins, across
 * files too; IdentityFile accumulates. `Match exec` is never run.
 */
export function sshConfigFor(files: readonly SshConfigFile[], host: string): SshConfigHost {
  const out: SshConfigHost = { identityFiles: [] };
  for (const f of files) {
    const c = f.config.compute(host.toLowerCase(), { ignoreCase: true, matchExec: false });
    const first = (k: string) => {
      const v = c[k];
      return Array.isArray(v) ? v[0] : v;
    };
    out.hostName ??= first('hostname');
    out.user ??= first('user');
    out.port ??= first('port');
    out.proxyJump ??= first('proxyjump');
    out.userKnownHostsFile ??= first('userknownhostsfile');
    out.hostKeyAlias ??= first('hostkeyalias');
    const only = first('identitiesonly');
    if (out.identitiesOnly === undefined && only !== undefined) out.identitiesOnly = only.toLowerCase() === 'yes';
    const ids = c.identityfile;
    if (ids) out.identityFiles.push(...(Array.isArray(ids) ? ids : [ids]));
  }
  return out;
}

/** ssh's `%` tokens in HostName, IdentityFile and UserKnownHostsFile: %h %n %p %r %d %%. */
function expandTokens(value: string, tokens: Record<string, string>, what: string): string {
  return value.replace(/%(.)/g, (m, t: string) => {
    if (t === '%') return '%';
    const v = tokens[t];
    if (v === undefined) throw new XamalError('validation', `ssh.config: ${what} ${JSON.stringify(value)}: token ${m} is not supported (supported: %h %n %p %r %d %%)`);
    return v;
  });
}

function configPort(value: string | undefined, host: string): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new XamalError('validation', `ssh.config: Port ${JSON.stringify(value)} for host ${host}: expected a port 1-65535`);
  return n;
}

/** `[user@]host[:port]` or `ssh://[user@]host[:port]` (ProxyJump); a list of hops is refused. */
function parseJump(spec: string, host: string): { user?: string; host: string; port?: number } {
  if (spec.includes(',')) throw new XamalError('validation', `ssh.config: ProxyJump ${spec} for host ${host}: only one jump host is supported`);
  const m = /^(?:ssh:\/\/)?(?:([^@\s]+)@)?(\[[0-9A-Fa-f:.]+\]|[^@:\s]+)(?::(\d{1,5}))?$/.exec(spec);
  if (!m) throw new XamalError('validation', `ssh.config: ProxyJump ${JSON.stringify(spec)} for host ${host}: expected [user@]host[:port]`);
  const port = configPort(m[3], host);
  return { ...(m[1] ? { user: m[1] } : {}), host: m[2]!.replace(/^\[|\]$/g, ''), ...(port ? { port } : {}) };
}

interface EndpointInput {
  name: string;
  /** deploy.yml's explicit values: they win over the files. */
  user?: string | undefined;
  port?: number | undefined;
  /** The user when neither deploy.yml nor the files name one. */
  fallbackUser: string;
  home: string;
  knownHostsSet: boolean;
}

/** One host's endpoint without its jump. */
function endpointOf(files: readonly SshConfigFile[], input: EndpointInput): HostEndpoint {
  const c = sshConfigFor(files, input.name);
  const name = input.name.toLowerCase();
  const address = c.hostName ? expandTokens(c.hostName, { h: name, n: input.name }, 'HostName') : input.name;
  const user = input.user ?? c.user ?? input.fallbackUser;
  const port = input.port ?? configPort(c.port, input.name) ?? 22;
  const tokens = { h: address, n: input.name, p: String(port), r: user, d: input.home };
  const expand = (p: string, what: string) => expandHome(expandTokens(p, tokens, what), input.home);
  const knownFile = c.userKnownHostsFile?.split(/\s+/)[0];
  // `none`: no file (as ssh): every host is then unknown, refused unless --trust-new-host-keys.
  const known = !input.knownHostsSet && knownFile ? (knownFile.toLowerCase() === 'none' ? '/dev/null' : expand(knownFile, 'UserKnownHostsFile')) : undefined;
  return {
    name: input.name,
    address,
    user,
    port,
    identityFiles: c.identityFiles.filter((p) => p.toLowerCase() !== 'none').map((p) => expand(p, 'IdentityFile')),
    identitiesOnly: c.identitiesOnly ?? false,
    hostKeyName: c.hostKeyAlias ?? address,
    ...(known ? { knownHostsPath: known } : {}),
  };
}

/**
 * Pure (given the files): each host's endpoint. deploy.yml's explicit ssh settings (user, port,
 * proxy, known_hosts) win over the files, as in Kamal; the files' HostName, User, Port,
 * IdentityFile, IdentitiesOnly, ProxyJump (one hop; the jump host's own settings read from the files
 * too), UserKnownHostsFile and HostKeyAlias apply otherwise. StrictHostKeyChecking is not read:
 * host keys are always checked (a new host only with --trust-new-host-keys).
 */
export function resolveEndpoints(ssh: SshConfig, files: readonly SshConfigFile[], hosts: readonly string[], home: string): Record<string, HostEndpoint> {
  const out: Record<string, HostEndpoint> = {};
  const knownHostsSet = ssh.knownHosts !== undefined;
  for (const host of hosts) {
    const ep = endpointOf(files, { name: host, user: ssh.user, port: ssh.port, fallbackUser: 'root', home, knownHostsSet });
    const c = sshConfigFor(files, host);
    const spec = ssh.proxy ?? (c.proxyJump && c.proxyJump.toLowerCase() !== 'none' ? parseJump(c.proxyJump, host) : undefined);
    if (spec) {
      const jc = sshConfigFor(files, spec.host);
      if (!ssh.proxy && jc.proxyJump && jc.proxyJump.toLowerCase() !== 'none') throw new XamalError('validation', `ssh.config: jump host ${spec.host} of ${host} has a ProxyJump of its own: only one jump host is supported`);
      ep.jump = endpointOf(files, { name: spec.host, user: spec.user, port: spec.port, fallbackUser: ep.user, home, knownHostsSet });
    }
    out[host] = ep;
  }
  return out;
}
