import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deployKeySshArgs, type GitDeployKeys } from '../core/contracts/git-credentials.ts';
import { gitRemoteParts } from '../core/contracts/git-url.ts';

/**
 * Git dependencies over ssh in the deps step (issue 20 item 4), with the farm's deploy keys
 * (XAMAL_GIT_CREDENTIALS_FILE) — and no key ever inside a build container. git in the deps step runs
 * GIT_SSH_COMMAND, a few lines of bash that hand ssh's arguments (port, host, remote command) to
 * RELAY_PORT on the container's loopback and then pass bytes both ways; that port leads (socat in the
 * namespace, builder/egress.ts) to this relay on the worker, which picks the deploy key for that
 * host and repository and runs the worker's own ssh with it: that key only, no agent, no user
 * config, host keys from the entry's known_hosts file only, BatchMode, and through the egress proxy
 * (HTTP CONNECT: the host must be in XAMAL_DEPS_ALLOW). Only `git-upload-pack` (fetching) is relayed,
 * and only of a repository in the build's scope (RelayScope): one its mix.lock names, read before any of
 * the build's code ran, and — on a farm that registers apps — one its app's owner entry lists, so a
 * build never reads another app's private repositories with keys the farm holds for them.
 * The builder images need nothing for it but bash (its /dev/tcp); the key file's path is in the
 * worker's ssh argv, its content nowhere but that ssh.
 */

/** The relay's port on a deps container's loopback (the egress proxy's is 3128). */
export const RELAY_PORT = 3129;

/** First line of a relay request. */
const HELLO = 'xamal-git-ssh 1';

/**
 * What git runs for ssh in the deps step: `ssh [-o opt] [-p port] [-4|-6] host command` (GIT_SSH_VARIANT
 * ssh). Its options are dropped but the port; the request is four lines; then bytes both ways until
 * the worker closes (its ssh ended).
 */
const relayScript = (port: number) => [
  'port=22',
  'while [ $# -gt 2 ]; do case "$1" in -p) port=$2; shift 2;; -o|-l|-i|-F|-J) shift 2;; *) shift;; esac; done',
  `exec 3<>/dev/tcp/127.0.0.1/${port} || { echo "git over ssh: the farm's relay is not reachable (this step has no git over ssh)" >&2; exit 255; }`,
  `printf '${HELLO}\\n%s\\n%s\\n%s\\n' "$port" "$1" "$2" >&3`,
  // git's bytes out in the background; the worker's back in front: once the worker closes (its ssh
  // ended), the writer is stopped too, so git sees the end of ssh's output whether or not it wrote all.
  // (a background command's stdin would be /dev/null: git's input goes through fd 4)
  'exec 4<&0',
  'cat <&4 >&3 &',
  'w=$!',
  'cat <&3',
  'kill $w 2>/dev/null',
  // ssh's own status stays with the worker (its refusals and failures are in the build log); a failed
  // fetch fails in git anyway, with nothing read.
  'exit 0',
].join('\n');

/** Pure: the environment that sends the deps step's git over ssh to the relay on loopback `port` (no key, no path of one). */
export function gitSshRelayEnv(port: number = RELAY_PORT): Record<string, string> {
  return { GIT_SSH_COMMAND: `bash -c '${relayScript(port).replace(/'/g, `'\\''`)}' xamal-git-ssh`, GIT_SSH_VARIANT: 'ssh' };
}

export interface RelayRequest {
  port: number;
  /** `user@host` as git gave it (user optional). */
  destination: string;
  host: string;
  /** The repository path as in the remote command (`acme/billing.git`, `/acme/billing.git`). */
  path: string;
}

const DESTINATION = /^(?:([A-Za-z0-9._][A-Za-z0-9._-]{0,63})@)?([A-Za-z0-9][A-Za-z0-9.-]{0,252})$/;
const UPLOAD_PACK = /^git-upload-pack '([A-Za-z0-9._~/][A-Za-z0-9._~/-]{0,1023})'$/;

/** Pure: the four lines of a request, or why they are refused (never echoing more than the host). */
export function parseRelayRequest(lines: readonly string[]): RelayRequest | { problem: string } {
  if (lines[0] !== HELLO) return { problem: 'not a git-over-ssh request' };
  const port = /^\d{1,5}$/.test(lines[1] ?? '') ? Number(lines[1]) : NaN;
  if (!(port >= 1 && port <= 65535)) return { problem: 'expected a port from 1 to 65535' };
  const dest = DESTINATION.exec(lines[2] ?? '');
  if (!dest) return { problem: 'expected a host name as [user@]host' };
  const cmd = lines[3] ?? '';
  if (/^git-receive-pack\b/.test(cmd)) return { problem: `${dest[2]}: only fetching (git-upload-pack) is relayed, not pushing` };
  const up = UPLOAD_PACK.exec(cmd);
  if (!up || up[1]!.split('/').includes('..')) return { problem: `${dest[2]}: expected git-upload-pack '<repository path>' (letters, digits, . _ ~ / -)` };
  return { port, destination: lines[2]!, host: dest[2]!.toLowerCase(), path: up[1]! };
}

/** A repository path as compared and named: without leading or trailing `/` or a trailing `.git`. */
const repoKey = (path: string) => path.replace(/^\/+/, '').replace(/\/+$/, '').replace(/\.git$/, '');

/** Pure: `host` or `host:port` as the credentials file and XAMAL_DEPS_ALLOW name it. */
export const hostPortOf = (r: Pick<RelayRequest, 'host' | 'port'>) => (r.port === 22 ? r.host : `${r.host}:${r.port}`);

/**
 * Pure: the worker's ssh for a request, or every reason it is refused: a host outside XAMAL_DEPS_ALLOW,
 * a repository the credentials file has no deploy key for (both named, with the setting to change).
 */
export function relayCommand(r: RelayRequest, keys: GitDeployKeys | undefined, allows: (host: string, port: number) => boolean, proxyCommand: string): { argv: string[] } | { problems: string[] } {
  const where = hostPortOf(r);
  const repo = repoKey(r.path);
  const problems: string[] = [];
  if (!allows(r.host, r.port)) problems.push(`${r.host}:${r.port} is not in XAMAL_DEPS_ALLOW (the deps step reaches only the hosts listed there; add ${r.host}:${r.port})`);
  const key = keys?.(where, r.path);
  if (!key) {
    problems.push(`no ssh deploy key for ${where} (repository ${repo}) in XAMAL_GIT_CREDENTIALS_FILE: add an entry "${where}" or "${where}/${repo}" with ssh_key_file and known_hosts_file`);
  }
  if (problems.length || !key) return { problems };
  const argv = ['ssh', ...deployKeySshArgs(key), '-o', `ProxyCommand=${proxyCommand}`, '-o', 'ConnectTimeout=30', '-p', String(r.port), '--', r.destination, `git-upload-pack '${r.path}'`];
  return { argv };
}

/**
 * The repositories one build's relay fetches. `locked`: the git URLs of the git dependencies the
 * project's mix.lock names (read by the worker before the deps step: what that step's code writes
 * later changes nothing), or why there are none. `registered`: the app's `git_dependencies` in
 * XAMAL_APPS_FILE, set by the API on the job; absent when the farm registers no apps.
 */
export interface RelayScope {
  app: string;
  locked: readonly string[] | { none: string };
  registered?: readonly string[];
}

const sameHostPort = (hostPort: string, r: Pick<RelayRequest, 'host' | 'port'>) => {
  const hp = hostPort.toLowerCase().replace(/:22$/, '');
  return hp === hostPortOf(r);
};

/** Pure: whether a git URL names the repository the request fetches (ssh transport, same host, port and path). */
export function urlNames(url: string, r: RelayRequest): boolean {
  const parts = gitRemoteParts(url);
  return parts?.transport === 'ssh' && sameHostPort(parts.hostPort, r) && repoKey(parts.path) === repoKey(r.path);
}

/** Pure: why the request is outside the build's scope (naming the repository, the file or setting to change), or undefined. */
export function scopeProblem(r: RelayRequest, scope: RelayScope): string | undefined {
  const repo = `${hostPortOf(r)}/${repoKey(r.path)}`;
  if ('none' in scope.locked) return `${repo}: ${scope.locked.none}; the farm fetches over ssh only the git dependencies the project's mix.lock names`;
  if (!scope.locked.some((u) => urlNames(u, r))) return `${repo} is not a git dependency in the project's mix.lock (the farm fetches over ssh only the repositories mix.lock names: commit mix.lock with it)`;
  if (scope.registered && !scope.registered.some((u) => urlNames(u, r))) {
    return `app ${scope.app} may not fetch ${repo} with the farm's deploy keys: an admin adds its URL to "git_dependencies" of app ${scope.app} in XAMAL_APPS_FILE`;
  }
  return undefined;
}

export interface GitSshRelay {
  /** The unix socket RELAY_PORT leads to. */
  socket: string;
  /** Why a request was refused or its ssh failed, each naming the host (for the step's failure message). */
  problems: string[];
  stop(): Promise<void>;
}

export interface GitSshRelayOptions {
  keys: GitDeployKeys | undefined;
  /** The repositories this build may fetch (anything else is refused before a key is looked up). */
  scope: RelayScope;
  allows: (host: string, port: number) => boolean;
  proxyCommand: string;
  /** Writes a line to the build log. */
  say: (line: string) => Promise<void> | void;
  /** Requests served at once (further ones wait in the kernel's backlog). */
  maxConnections?: number;
}

/** The request's four lines, and what came after them (git's first bytes), or undefined when the client never finished them. */
function readRequest(socket: Socket, timeoutMs: number): Promise<{ lines: string[]; rest: Buffer } | undefined> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const done = (v: { lines: string[]; rest: Buffer } | undefined) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      resolve(v);
    };
    const onEnd = () => done(undefined);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      let at = -1;
      for (let i = 0, n = 0; i < buf.length && n < 4; i++) if (buf[i] === 10 && ++n === 4) at = i;
      if (at >= 0) return done({ lines: buf.subarray(0, at).toString('utf8').split('\n'), rest: buf.subarray(at + 1) });
      if (buf.length > 4096) done(undefined);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('data', onData);
    socket.on('end', onEnd);
  });
}

/** Runs the worker's ssh for one request, bytes both ways; its complaints (ssh's stderr) go to the build log. */
function runSsh(socket: Socket, argv: string[], rest: Buffer, where: string, o: GitSshRelayOptions, problems: string[], children: Set<ChildProcess>): void {
  const ssh = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(ssh);
  let stderr = '';
  ssh.stderr.on('data', (b: Buffer) => void (stderr = (stderr + b.toString('utf8')).slice(-4096)));
  ssh.stdin.on('error', () => {});
  ssh.on('error', (err) => void (stderr += `cannot run ssh (Debian package openssh-client): ${err.message}`));
  if (rest.length) ssh.stdin.write(rest);
  socket.pipe(ssh.stdin);
  ssh.stdout.pipe(socket, { end: false });
  ssh.on('close', (code) => {
    children.delete(ssh);
    const said = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
    for (const line of said) void o.say(`git over ssh (${where}): ${line}`);
    if (code !== 0) problems.push(`git over ssh to ${where} failed: ${said.at(-1) ?? `ssh exited ${code}`}`);
    ssh.stdout.once('end', () => socket.end());
    if (ssh.stdout.readableEnded) socket.end();
  });
}

/** Serves one connection: the request, then the worker's ssh for it, or a refusal in the log and a closed connection. */
async function serve(socket: Socket, o: GitSshRelayOptions, problems: string[], children: Set<ChildProcess>): Promise<void> {
  socket.on('error', () => socket.destroy());
  const req = await readRequest(socket, 10_000);
  const parsed = req ? parseRelayRequest(req.lines) : { problem: 'the request was incomplete' };
  if ('problem' in parsed) {
    problems.push(`git over ssh: ${parsed.problem}`);
    await o.say(`git over ssh: refused: ${parsed.problem}`);
    socket.end();
    return;
  }
  const where = hostPortOf(parsed);
  const outside = scopeProblem(parsed, o.scope);
  if (outside) {
    problems.push(`git over ssh to ${where}: ${outside}`);
    await o.say(`git over ssh to ${where}: refused: ${outside}`);
    socket.end();
    return;
  }
  const cmd = relayCommand(parsed, o.keys, o.allows, o.proxyCommand);
  if ('problems' in cmd) {
    for (const p of cmd.problems) {
      problems.push(`git over ssh to ${where}: ${p}`);
      await o.say(`git over ssh to ${where}: ${p}`);
    }
    socket.end();
    return;
  }
  await o.say(`git over ssh: fetching ${parsed.path} from ${where} with the farm's deploy key`);
  runSsh(socket, cmd.argv, req!.rest, where, o, problems, children);
  socket.resume();
}

/** Starts a relay for one deps step (a unix socket in a directory of its own); `stop()` ends its ssh processes and removes it. */
export async function startGitSshRelay(o: GitSshRelayOptions): Promise<GitSshRelay> {
  const dir = await mkdtemp(join(tmpdir(), 'xamal-gitssh-'));
  const socket = join(dir, 'relay.sock');
  const problems: string[] = [];
  const children = new Set<ChildProcess>();
  const server: Server = createServer((s) => void serve(s, o, problems, children).catch(() => s.destroy()));
  server.maxConnections = o.maxConnections ?? 16;
  await new Promise<void>((r) => server.listen(socket, r));
  return {
    socket,
    problems,
    async stop() {
      for (const c of children) c.kill('SIGKILL');
      await new Promise((r) => server.close(r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
