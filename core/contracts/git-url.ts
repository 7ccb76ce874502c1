/**
 * Which git URLs the farm fetches a build's source from. https:// and ssh (`ssh://` or scp-like
 * `user@host:path`) always; `file://` and absolute paths (repositories on the farm's own disks) and
 * the unencrypted `http://` and `git://` only when the farm is configured for them. Never a URL with
 * credentials in it, nor one git could read as an option.
 */
export interface GitUrlPolicy {
  /** `file://` URLs and absolute paths (XAMAL_GIT_ALLOW_LOCAL). */
  allowLocal: boolean;
  /** `http://` and `git://` (XAMAL_GIT_ALLOW_HTTP). */
  allowHttp: boolean;
}

/** The production default: https and ssh only. */
export const REMOTE_GIT_ONLY: GitUrlPolicy = { allowLocal: false, allowHttp: false };
/** Every transport: what a URL must satisfy whatever the farm allows (the wire contracts check this). */
export const ANY_GIT_TRANSPORT: GitUrlPolicy = { allowLocal: true, allowHttp: true };

type Transport = 'https' | 'ssh' | 'http' | 'git' | 'local';

interface Parsed {
  transport: Transport;
  user: string;
  password: string;
  host: string;
  /** The host with its port when the URL names one (`git.example.com:2222`). */
  hostPort: string;
  /** The repository path as written (scheme URLs: decoded, with its leading `/`). */
  path: string;
}

const SCHEMES: Record<string, Transport> = { https: 'https', http: 'http', ssh: 'ssh', 'git+ssh': 'ssh', 'ssh+git': 'ssh', git: 'git', file: 'local' };
const EXPECTED = 'expected a git URL: https://host/path, ssh://[user@]host/path or user@host:path';
const NO_CREDENTIALS = 'must not carry credentials (user:token@): give the farm a deploy key or a git credential helper instead';

const decoded = (s: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/** `scheme://…` through the WHATWG parser, or scp-like `user@host:path`; a string saying why not. */
function parse(url: string): Parsed | string {
  if (url.startsWith('/')) return { transport: 'local', user: '', password: '', host: '', hostPort: '', path: url };
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    const transport = Object.hasOwn(SCHEMES, scheme) ? SCHEMES[scheme] : undefined;
    if (!transport) return `transport ${scheme}:// is not supported; ${EXPECTED}`;
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return EXPECTED;
    }
    return { transport, user: decoded(u.username), password: decoded(u.password), host: decoded(u.hostname), hostPort: u.host, path: decoded(u.pathname) };
  }
  // git reads `<helper>::<address>` as a remote helper (ext:: runs a command): never scp-like.
  const scp = /^([^@/:]+)@([^@/:]+):(?!:)(.+)$/.exec(url);
  if (!scp) return EXPECTED;
  return { transport: 'ssh', user: scp[1]!, password: '', host: scp[2]!, hostPort: scp[2]!.toLowerCase(), path: scp[3]! };
}

/** A git URL's transport, host (with its port, if any) and repository path; undefined when it is no git URL. */
export function gitRemoteParts(url: string): Pick<Parsed, 'transport' | 'hostPort' | 'path'> | undefined {
  const p = parse(url);
  return typeof p === 'string' ? undefined : { transport: p.transport, hostPort: p.hostPort, path: p.path };
}

/** Problems of the URL itself, whatever the policy. */
function shapeProblem(p: Parsed): string | undefined {
  if (p.transport === 'local') return p.host && p.host !== 'localhost' ? 'file:// URLs name no host (file:///path)' : undefined;
  if (!p.host) return `${EXPECTED} (no host)`;
  if (p.host.startsWith('-') || p.user.startsWith('-')) return 'a host or user starting with "-" is refused (git or ssh would read it as an option)';
  if (p.password || (p.user && p.transport !== 'ssh')) return NO_CREDENTIALS;
  return undefined;
}

/** Problems of the transport under the farm's policy. */
function policyProblem(p: Parsed, policy: GitUrlPolicy): string | undefined {
  if (p.transport === 'local' && !policy.allowLocal) {
    return 'file:// URLs and local paths are refused: this farm builds from https:// or ssh remotes (XAMAL_GIT_ALLOW_LOCAL=1 allows repositories on its own disks)';
  }
  if ((p.transport === 'http' || p.transport === 'git') && !policy.allowHttp) {
    return `${p.transport}:// is unencrypted and refused: use https:// or ssh (XAMAL_GIT_ALLOW_HTTP=1 allows http:// and git:// on a trusted network)`;
  }
  return undefined;
}

/**
 * Pure: why `url` may not be fetched under `policy`, or undefined when it may. The message never
 * repeats the URL (it may hold a token).
 */
export function gitUrlProblem(url: string, policy: GitUrlPolicy): string | undefined {
  if (url.startsWith('-')) return 'a URL starting with "-" is refused (git would read it as an option)';
  if (/[\s\p{Cc}]/u.test(url)) return 'expected a git URL without spaces or control characters';
  const p = parse(url);
  if (typeof p === 'string') return p;
  return shapeProblem(p) ?? policyProblem(p, policy);
}

/** Environment for a git command that reads a remote: it fails rather than wait on a prompt (FACTS.md#git-remote). */
export const GIT_REMOTE_ENV: Readonly<Record<string, string>> = { GIT_TERMINAL_PROMPT: '0', GIT_SSH_COMMAND: 'ssh -o BatchMode=yes' };

/**
 * What a client is told about any remote git could not read (refused, no route, no such host, no
 * access, not found): one answer, so the farm is no port scanner. git's own words go to the server log.
 */
export function unreadableRemote(url: string): string {
  return `could not read the repository at ${gitUrlForDisplay(url)}: unreachable or not found`;
}

/** The URL as errors and logs may show it: any `user:password@` or `token@` of a scheme URL removed. */
export function gitUrlForDisplay(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, '$1');
}
