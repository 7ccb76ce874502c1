import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import { Client, type AnyAuthMethod, type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { hasSensitive, revealArg, toShellLine, XamalError, type Command, type CommandResult, type Sensitive } from '../core/index.ts';
import { CADDY_ADMIN_SOCKET, caddyAdminCommand, parseCaddyAdminOutput } from './commands/caddy.ts';
import { asRoot } from './commands/files.ts';
import type { SshConfig } from './config/schema.ts';
import type { CaddyRequest, CaddyResponse, HostSession, OutputSink, SessionPool, Terminal } from './remote.ts';
import { expandHome, type HostEndpoint } from './ssh-config.ts';

/**
 * The one module that speaks SSH (ssh2). One pooled connection per host over a TCP no-delay socket
 * (FACTS.md#ssh: ~50 ms → 5–8 ms per command), keepalives, connect timeout, host keys verified against
 * pinned fingerprints or known_hosts before anything runs, optional jump host, SFTP uploads,
 * Caddy's admin API reached on its unix socket with curl on the host, interactive commands on a
 * pty (`app exec -i`, `console`) and streamed ones (`app logs -f`). Where each host is reached
 * (deploy.yml, then OpenSSH client config) is decided by `ssh-config.ts`.
 */

export interface SshOptions {
  user: string;
  port: number;
  /** Private key files. */
  keys: string[];
  /** Private keys given inline (deploy.yml `ssh.key_data`). */
  keyData: Sensitive[];
  /** ssh-agent socket (`SSH_AUTH_SOCK`). */
  agent?: string;
  /** Jump host (`ssh -J`). */
  proxy?: { user?: string; host: string; port?: number };
  connectTimeoutMs: number;
  /** known_hosts file; default `~/.ssh/known_hosts`. */
  knownHostsPath?: string;
  /** host → `SHA256:…` pinned in deploy.yml: checked instead of known_hosts. */
  hostKeys: Record<string, string>;
  /** First contact: accept an unknown host's key and add it to known_hosts (explicit opt-in only). */
  trustNewHosts: boolean;
  /** Per host (as named in deploy.yml): where and how to connect, from `resolveEndpoints`; else user, port and proxy above. */
  endpoints?: Readonly<Record<string, HostEndpoint>>;
  /** ssh.log_level debug: ssh2's protocol messages, one line each. */
  debug?: (line: string) => void;
  /** ssh.log_level debug or info: one line per connection opened. */
  info?: (line: string) => void;
}

export function sshOptionsFromConfig(
  ssh: SshConfig,
  env: { SSH_AUTH_SOCK?: string; HOME?: string },
  trustNewHosts: boolean,
  more: { endpoints?: Readonly<Record<string, HostEndpoint>>; log?: (line: string) => void } = {},
): SshOptions {
  const home = env.HOME ?? '/root';
  const expand = (p: string) => expandHome(p, home);
  const keys = ssh.keys.map(expand);
  const log = more.log;
  return {
    user: ssh.user ?? 'root',
    port: ssh.port ?? 22,
    keys,
    keyData: ssh.keyData,
    // Kamal's keys_only: only the keys given, never the agent.
    ...(env.SSH_AUTH_SOCK && !ssh.keysOnly ? { agent: env.SSH_AUTH_SOCK } : {}),
    ...(ssh.proxy ? { proxy: ssh.proxy } : {}),
    connectTimeoutMs: ssh.connectTimeout * 1000,
    knownHostsPath: expand(ssh.knownHosts ?? '~/.ssh/known_hosts'),
    hostKeys: ssh.hostKeys,
    trustNewHosts,
    ...(more.endpoints ? { endpoints: more.endpoints } : {}),
    ...(log && ssh.logLevel === 'debug' ? { debug: (l: string) => log(`ssh: ${l}`) } : {}),
    ...(log && (ssh.logLevel === 'debug' || ssh.logLevel === 'info') ? { info: (l: string) => log(`ssh: ${l}`) } : {}),
  };
}

// --- host keys -------------------------------------------------------------------------------------

/** `SHA256:<base64, no padding>` of a public key blob, as `ssh-keygen -lf` prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type inside an SSH public key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, …). */
export function keyType(blob: Buffer): string {
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}

export interface KnownHostEntry {
  marker?: 'revoked' | 'cert-authority';
  type: string;
  blob: Buffer;
}

/** known_hosts names a host as `host` (port 22) or `[host]:port`. */
function hostToken(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(name);
}

function patternsMatch(field: string, token: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(token).digest('base64') === hash;
  }
  let matched = false;
  for (const p of field.split(',')) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), token)) return false;
    } else if (globMatch(p, token)) matched = true;
  }
  return matched;
}

/** Pure: the known_hosts entries for `host:port` (hashed names, wildcards, negations, markers). */
export function knownHostEntries(text: string, host: string, port: number): KnownHostEntry[] {
  const token = hostToken(host, port);
  const out: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') marker = fields.shift()!.slice(1) as KnownHostEntry['marker'];
    const [patterns, type, b64] = fields;
    if (!patterns || !type || !b64) continue;
    if (!patternsMatch(patterns, token)) continue;
    out.push({ ...(marker ? { marker } : {}), type, blob: Buffer.from(b64, 'base64') });
  }
  return out;
}

export type HostKeyVerdict = { ok: true; learn?: boolean } | { ok: false; reason: string };

/**
 * Pure: may we talk to `host` presenting `blob`? Pinned fingerprint first, else known_hosts; an
 * unknown host only with `trustNewHosts` (then `learn`: add it); a changed or revoked key never.
 */
export function verifyHostKey(input: { host: string; port: number; blob: Buffer; pinned?: string; known: KnownHostEntry[]; trustNewHosts: boolean }): HostKeyVerdict {
  const fp = fingerprint(input.blob);
  const type = keyType(input.blob);
  if (input.known.some((e) => e.marker === 'revoked' && e.blob.equals(input.blob))) return { ok: false, reason: `host key ${fp} of ${input.host} is marked @revoked in known_hosts` };
  if (input.pinned !== undefined) {
    const want = input.pinned.replace(/=+$/, '');
    return fp === want ? { ok: true } : { ok: false, reason: `host key of ${input.host} CHANGED: it presents ${type} ${fp}, deploy.yml ssh.host_keys pins ${want}. Refusing to connect.` };
  }
  const plain = input.known.filter((e) => !e.marker);
  if (plain.some((e) => e.blob.equals(input.blob))) return { ok: true };
  if (plain.length > 0) {
    return { ok: false, reason: `host key of ${input.host} CHANGED: it presents ${type} ${fp}, known_hosts has ${plain.map((e) => `${e.type} ${fingerprint(e.blob)}`).join(', ')}. Refusing to connect (someone may be intercepting; if the host was rebuilt, remove its old entry).` };
  }
  if (input.trustNewHosts) return { ok: true, learn: true };
  return { ok: false, reason: `unknown host ${input.host}: it presents ${type} ${fp}. Check it out of band, then pin it (ssh.host_keys: {${input.host}: "${fp}"}) or run again with --trust-new-host-keys to add it to known_hosts.` };
}

// --- connections -----------------------------------------------------------------------------------

const KEY_ALGOS_PREFERRED = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

/** Host key algorithms to ask for: those known_hosts has for this host first (as OpenSSH does). */
function hostKeyAlgorithms(known: KnownHostEntry[]): string[] | undefined {
  const types = new Set(known.filter((e) => !e.marker).map((e) => e.type));
  if (types.size === 0) return undefined;
  const expand = (t: string) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t]);
  const first = [...types].flatMap(expand);
  return [...first, ...KEY_ALGOS_PREFERRED.filter((a) => !first.includes(a))];
}

function readKnownHosts(path: string | undefined): string {
  if (!path) return '';
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function authMethods(opts: SshOptions, ep: HostEndpoint): AnyAuthMethod[] {
  const username = ep.user;
  const methods: AnyAuthMethod[] = [];
  for (const k of opts.keyData) methods.push({ type: 'publickey', username, key: k.reveal() });
  for (const path of opts.keys) {
    let key: string;
    try {
      key = readFileSync(path, 'utf8');
    } catch (err) {
      throw new XamalError('usage', `ssh.keys: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    methods.push({ type: 'publickey', username, key });
  }
  // ~/.ssh/config's IdentityFile: one that cannot be read is skipped, as ssh does.
  for (const path of ep.identityFiles) {
    try {
      methods.push({ type: 'publickey', username, key: readFileSync(path, 'utf8') });
    } catch {
      opts.info?.(`${ep.name}: IdentityFile ${path} not readable, skipped`);
    }
  }
  if (opts.agent && !ep.identitiesOnly) methods.push({ type: 'agent', username, agent: opts.agent });
  if (methods.length === 0) throw new XamalError('usage', `no SSH credentials for ${ep.name}: set ssh.keys or ssh.key_data in deploy.yml, IdentityFile in ~/.ssh/config, or run an ssh-agent (SSH_AUTH_SOCK)`);
  return methods;
}

/** A TCP socket with no-delay, connected within the timeout. */
function tcpConnect(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new XamalError('unavailable', `${host}:${port}: no TCP connection after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new XamalError('unavailable', `${host}:${port}: cannot connect (${e.code ?? e.message})`));
    });
  });
}

/** `name (address)` when ~/.ssh/config gave the host another address, for messages. */
function shown(ep: HostEndpoint): string {
  return ep.address === ep.name ? ep.name : `${ep.name} (${ep.address})`;
}

/** SSH handshake + auth over `sock`, host key checked first. */
function handshake(opts: SshOptions, ep: HostEndpoint, sock: Duplex): Promise<Client> {
  const knownHostsPath = ep.knownHostsPath ?? opts.knownHostsPath;
  const known = knownHostEntries(readKnownHosts(knownHostsPath), ep.hostKeyName, ep.port);
  const pinned = opts.hostKeys[ep.name] ?? opts.hostKeys[ep.hostKeyName];
  let refusal: string | undefined;
  const client = new Client();
  const algos = pinned === undefined ? hostKeyAlgorithms(known) : undefined;
  const config: ConnectConfig = {
    sock: sock as unknown as ConnectConfig['sock'],
    username: ep.user,
    readyTimeout: opts.connectTimeoutMs,
    keepaliveInterval: 15_000,
    keepaliveCountMax: 3,
    authHandler: authMethods(opts, ep),
    ...(opts.debug ? { debug: opts.debug } : {}),
    ...(algos ? { algorithms: { serverHostKey: algos as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] } } : {}),
    hostVerifier: (blob: Buffer) => {
      const v = verifyHostKey({ host: ep.name, port: ep.port, blob, ...(pinned !== undefined ? { pinned } : {}), known, trustNewHosts: opts.trustNewHosts });
      if (!v.ok) {
        refusal = v.reason;
        return false;
      }
      if (v.learn && knownHostsPath) {
        mkdirSync(dirname(knownHostsPath), { recursive: true, mode: 0o700 });
        appendFileSync(knownHostsPath, `${hostToken(ep.hostKeyName, ep.port)} ${keyType(blob)} ${blob.toString('base64')}\n`, { mode: 0o600 });
      }
      return true;
    },
  };
  return new Promise((resolve, reject) => {
    const fail = (err: Error & { level?: string }) => {
      client.end();
      if (refusal) reject(new XamalError('forbidden', refusal));
      else if (err.level === 'client-authentication') reject(new XamalError('unauthorized', `${ep.user}@${shown(ep)}: authentication failed (tried ${authMethods(opts, ep).map((m) => m.type).join(', ')})`));
      else if (/Timed out/i.test(err.message)) reject(new XamalError('unavailable', `${shown(ep)}: SSH handshake timed out after ${opts.connectTimeoutMs} ms`));
      else reject(new XamalError('unavailable', `${shown(ep)}: ${err.message}`));
    };
    client.once('ready', () => {
      client.removeListener('error', fail);
      client.on('error', () => {}); // later errors surface on the channel that hits them
      client.once('close', () => closedClients.add(client));
      opts.info?.(`connected to ${ep.name} as ${ep.user}@${ep.address}:${ep.port}${ep.jump ? ` through ${ep.jump.user}@${ep.jump.address}:${ep.jump.port}` : ''}`);
      resolve(client);
    });
    client.once('error', fail);
    client.connect(config);
  });
}

/** Runs a channel to completion: stdout, stderr, exit code (128+n for a signal). */
function exec(client: Client, line: string, stdin: string | undefined, timeoutMs: number | undefined, label: string): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const run = (cb: (err: Error | undefined, ch: ClientChannel) => void) => {
      try {
        client.exec(line, cb);
      } catch (err) {
        // ssh2 throws "Not connected" once the connection is gone.
        reject(new XamalError('unavailable', `${label}: SSH connection lost; not run (${(err as Error).message})`));
      }
    };
    run((err, ch: ClientChannel) => {
      if (err) {
        // A refused channel ("Unable to exec", "Channel open failure") is often the first sign of a
        // connection being torn down: name it as lost when the connection closes right after.
        void closesSoon(client, 2_000).then((gone) => reject(new XamalError('unavailable', gone ? `${label}: SSH connection lost; not run (${err.message})` : `${label}: ${err.message}`)));
        return;
      }
      const out: Buffer[] = [];
      const errOut: Buffer[] = [];
      let code: number | undefined;
      let timer: NodeJS.Timeout | undefined;
      if (timeoutMs) {
        timer = setTimeout(() => {
          ch.signal('KILL');
          ch.close();
          reject(new XamalError('external', `timed out after ${timeoutMs} ms: ${label}`));
        }, timeoutMs);
      }
      ch.on('data', (b: Buffer) => out.push(b));
      ch.stderr.on('data', (b: Buffer) => errOut.push(b));
      ch.on('exit', (c: number | null, signal?: string) => {
        code = c ?? (signal ? 128 + (SIGNALS[signal] ?? 15) : 255);
      });
      ch.on('close', () => {
        clearTimeout(timer);
        // sshd always reports an exit status or signal; a channel closed without one is a lost connection.
        if (code === undefined) return reject(new XamalError('unavailable', `${label}: SSH connection lost before it finished; its outcome on the host is unknown`));
        resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errOut).toString('utf8') });
      });
      ch.end(stdin);
    });
  });
}

/**
 * Runs `line` attached to the local terminal until it exits: with a pty (as `ssh -t`) when the
 * terminal has a size, the local terminal in raw mode and the window size kept in sync; otherwise
 * plain pipes, stdin's end sent as EOF. The terminal is put back however the channel ends. A signal
 * to xamal is passed to the remote command and ends the session. Resolves with the exit status.
 */
function interactiveExec(client: Client, line: string, terminal: Terminal, label: string): Promise<number> {
  const size = terminal.size();
  const options = size ? { pty: { rows: size.rows, cols: size.cols, width: 0, height: 0, term: terminal.term } } : {};
  return new Promise((resolve, reject) => {
    try {
      client.exec(line, options, (err, ch) => {
        if (err) return reject(new XamalError('unavailable', `${label}: ${err.message}`));
        resolve(attachTerminal(ch, terminal, size !== undefined, label));
      });
    } catch (err) {
      reject(new XamalError('unavailable', `${label}: SSH connection lost; not run (${(err as Error).message})`));
    }
  });
}

/** Wires a started channel to the terminal; every listener and the raw mode are undone when it closes (exported for tests). */
export function attachTerminal(ch: ClientChannel, terminal: Terminal, pty: boolean, label: string): Promise<number> {
  const { input, output, errors } = terminal;
  const undo: (() => void)[] = [];
  let code: number | undefined;
  let signalled: number | undefined;
  if (pty) {
    terminal.setRaw(true);
    undo.push(() => terminal.setRaw(false));
    undo.push(terminal.onResize(() => {
      const s = terminal.size();
      if (s) ch.setWindow(s.rows, s.cols, 0, 0);
    }));
  }
  const onInput = (b: Buffer | string) => ch.write(b);
  const onEnd = () => ch.end();
  input.on('data', onInput);
  if (!pty) input.on('end', onEnd);
  input.resume();
  undo.push(() => {
    input.removeListener('data', onInput);
    input.removeListener('end', onEnd);
    input.pause();
  });
  undo.push(terminal.onSignal((sig) => {
    signalled = 128 + (SIGNALS[sig.slice(3)] ?? 15);
    ch.signal(sig.slice(3));
    ch.close();
  }));
  ch.on('data', (b: Buffer) => output.write(b));
  ch.stderr.on('data', (b: Buffer) => errors.write(b));
  ch.on('exit', (c: number | null, signal?: string) => {
    code = c ?? (signal ? 128 + (SIGNALS[signal] ?? 15) : 255);
  });
  return new Promise((resolve, reject) => {
    ch.on('close', () => {
      for (const u of undo.reverse()) u();
      const status = code ?? signalled;
      if (status === undefined) reject(new XamalError('unavailable', `${label}: SSH connection lost before it finished`));
      else resolve(status);
    });
  });
}

/** Connections that have closed (ssh2's Client says so only by its 'close' event). */
const closedClients = new WeakSet<Client>();

/** Whether the connection is closed, or closes within `ms`. */
function closesSoon(client: Client, ms: number): Promise<boolean> {
  if (closedClients.has(client)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (gone: boolean) => {
      clearTimeout(timer);
      client.removeListener('close', onClose);
      resolve(gone);
    };
    const onClose = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    client.once('close', onClose);
  });
}

const SIGNALS: Record<string, number> = { HUP: 1, INT: 2, QUIT: 3, KILL: 9, PIPE: 13, TERM: 15 };

/**
 * Secrets never travel in the command line (sshd hands it to `sh -c`, visible in `ps`): such a
 * command is sent base64-encoded as the first line of stdin and run by `eval`; its own stdin follows.
 */
const EVAL_FROM_STDIN = `sh -c 'IFS= read -r x && eval "$(printf %s "$x" | base64 -d)"'`;

/** What sshd is asked to run and what goes to its stdin; a command with a secret travels whole in stdin. */
export function remoteInvocation(cmd: Command): { line: string; stdin: string | undefined } {
  const stdin = cmd.stdin === undefined ? undefined : revealArg(cmd.stdin);
  const line = toShellLine(cmd, { reveal: true });
  if (!hasSensitive(cmd)) return { line, stdin };
  return { line: EVAL_FROM_STDIN, stdin: `${Buffer.from(line).toString('base64')}\n${stdin ?? ''}` };
}

class SshSession implements HostSession {
  #sftp: Promise<SFTPWrapper> | undefined;
  #lost = false;

  constructor(
    readonly host: string,
    private readonly client: Client,
    private readonly user: string,
    onClose: () => void,
  ) {
    client.once('close', () => {
      this.#lost = true;
      onClose();
    });
  }

  #connectionLost(what: string): XamalError {
    return new XamalError('unavailable', `${this.host}: ${what}: SSH connection lost; not run`);
  }

  run(cmd: Command): Promise<CommandResult> {
    const { line, stdin } = remoteInvocation(cmd);
    return exec(this.client, line, stdin, cmd.timeoutMs, `${this.host}: ${cmd.label ?? String(cmd.argv[0])}`);
  }

  /** Commands with secrets travel in stdin (remoteInvocation), which a pty would echo: refused here. */
  interactive(cmd: Command, terminal: Terminal): Promise<number> {
    if (this.#lost) return Promise.reject(this.#connectionLost(cmd.label ?? String(cmd.argv[0])));
    if (hasSensitive(cmd) || cmd.stdin !== undefined) return Promise.reject(new XamalError('internal', `${this.host}: an interactive command takes no stdin or secrets of its own`));
    return interactiveExec(this.client, toShellLine(cmd, { reveal: true }), terminal, `${this.host}: ${cmd.label ?? String(cmd.argv[0])}`);
  }

  /**
   * Caddy's admin API is a unix socket only root can open: each call is curl on the host (as root:
   * `sudo -n` for another SSH user), the body on stdin, over the pooled connection — one exec, the
   * cost of the forwarded TCP channel it replaces. A deploy's switch makes no call at all.
   */
  async caddy(req: CaddyRequest): Promise<CaddyResponse> {
    const r = await this.run(asRoot(caddyAdminCommand(req), this.user));
    if (r.code !== 0) {
      throw new XamalError('unavailable', `${this.host}: Caddy admin API unreachable (${CADDY_ADMIN_SOCKET}; \`xamal server bootstrap\` moves it there): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join('; ')}`);
    }
    return parseCaddyAdminOutput(r.stdout);
  }

  /**
   * SFTP `fastPut` with 1 MiB in flight (8 × 128 KiB). Measured on a test host, 6 MiB uploads over
   * one connection: with 4 MiB in flight (16 × 256 KiB, before) about one in ten stalled 0.4–1.3 s,
   * and with 1.5–2 MiB the first took ~0.6 s (OpenSSH's channel window is 2 MiB); with 1 MiB none
   * stalled, at the same median (~45 ms). The cost: at most 1 MiB per round trip (~20 MB/s to a host
   * 50 ms away); hosts pulling from the farm (the default) do not go through here. BENCHMARKS P7.
   */
  upload(localPath: string, remotePath: string, mode = 0o644): Promise<void> {
    if (this.#lost) return Promise.reject(this.#connectionLost(`upload to ${remotePath}`));
    this.#sftp ??= new Promise((resolve, reject) => this.client.sftp((err, sftp) => (err ? reject(new XamalError('unavailable', `${this.host}: SFTP: ${err.message}`)) : resolve(sftp))));
    return this.#sftp.then(
      (sftp) =>
        new Promise<void>((resolve, reject) =>
          sftp.fastPut(localPath, remotePath, { chunkSize: 131_072, concurrency: 8, mode }, (err) => (err ? reject(new XamalError('external', `${this.host}: upload to ${remotePath}: ${err.message}`)) : resolve())),
        ),
    );
  }

  stream(cmd: Command, sink: OutputSink, stop?: AbortSignal): Promise<number> {
    const { line, stdin } = remoteInvocation(cmd);
    return streamChannel(this.client, line, stdin, sink, stop, `${this.host}: ${cmd.label ?? String(cmd.argv[0])}`);
  }

  end(): void {
    this.client.end();
  }
}

/**
 * Runs a channel whose output goes to `sink` as it comes. Its stdin stays open until `stop` aborts:
 * then it ends (the remote command, watching its stdin, stops itself) and the channel is closed a
 * moment later whatever the command does. Resolves with the exit code (0 when stopped).
 */
function streamChannel(client: Client, line: string, stdin: string | undefined, sink: OutputSink, stop: AbortSignal | undefined, label: string): Promise<number> {
  return new Promise((resolve, reject) => {
    if (stop?.aborted) return resolve(0);
    let ch: ClientChannel | undefined;
    let stopped = false;
    const onStop = () => {
      stopped = true;
      if (!ch) return;
      ch.end();
      setTimeout(() => ch!.close(), 2_000).unref();
    };
    stop?.addEventListener('abort', onStop, { once: true });
    const done = (f: () => void) => {
      stop?.removeEventListener('abort', onStop);
      f();
    };
    try {
      client.exec(line, (err, channel) => {
        if (err) return done(() => reject(new XamalError('unavailable', `${label}: ${err.message}`)));
        ch = channel;
        let code: number | undefined;
        const out = new TextDecoder();
        const errOut = new TextDecoder();
        channel.on('data', (b: Buffer) => sink.stdout(out.decode(b, { stream: true })));
        channel.stderr.on('data', (b: Buffer) => sink.stderr(errOut.decode(b, { stream: true })));
        channel.on('exit', (c: number | null, signal?: string) => (code = c ?? (signal ? 128 + (SIGNALS[signal] ?? 15) : 255)));
        channel.on('close', () => {
          if (stopped) return done(() => resolve(0));
          if (code === undefined) return done(() => reject(new XamalError('unavailable', `${label}: SSH connection lost`)));
          done(() => resolve(code!));
        });
        if (stdin !== undefined) channel.write(stdin);
        if (stopped) onStop();
      });
    } catch (err) {
      done(() => reject(new XamalError('unavailable', `${label}: SSH connection lost; not run (${(err as Error).message})`)));
    }
  });
}

/** Where a host is reached when no endpoint was resolved for it: deploy.yml's user, port and proxy. */
function defaultEndpoint(opts: SshOptions, host: string): HostEndpoint {
  const base = { identityFiles: [], identitiesOnly: false };
  const p = opts.proxy;
  const jump = p ? { ...base, name: p.host, address: p.host, hostKeyName: p.host, user: p.user ?? opts.user, port: p.port ?? 22 } : undefined;
  return { ...base, name: host, address: host, hostKeyName: host, user: opts.user, port: opts.port, ...(jump ? { jump } : {}) };
}

/** Connects to the host directly or through its jump host, returning the authenticated client. */
async function connectHost(opts: SshOptions, ep: HostEndpoint, jump: (j: HostEndpoint) => Promise<Client>): Promise<Client> {
  if (!ep.jump) return handshake(opts, ep, await tcpConnect(ep.address, ep.port, opts.connectTimeoutMs));
  const via = await jump(ep.jump);
  const j = ep.jump;
  const stream = await new Promise<ClientChannel>((resolve, reject) =>
    via.forwardOut('127.0.0.1', 0, ep.address, ep.port, (err, s) => (err ? reject(new XamalError('unavailable', `${shown(ep)}: through jump host ${j.name}: ${err.message}`)) : resolve(s))),
  );
  return handshake(opts, ep, stream);
}

/** One pooled connection per host (and per jump host); a closed connection is reopened on the next `session`. */
export function sshPool(opts: SshOptions): SessionPool {
  const sessions = new Map<string, Promise<SshSession>>();
  const jumps = new Map<string, Promise<Client>>();
  const jump = (j: HostEndpoint) => {
    const key = `${j.user}@${j.address}:${j.port}`;
    let c = jumps.get(key);
    if (!c) {
      c = (async () => {
        const client = await handshake(opts, j, await tcpConnect(j.address, j.port, opts.connectTimeoutMs));
        client.once('close', () => jumps.delete(key));
        return client;
      })();
      c.catch(() => jumps.delete(key));
      jumps.set(key, c);
    }
    return c;
  };
  return {
    session(host) {
      let s = sessions.get(host);
      if (!s) {
        const ep = opts.endpoints?.[host] ?? defaultEndpoint(opts, host);
        s = connectHost(opts, ep, jump).then((client) => new SshSession(host, client, ep.user, () => sessions.delete(host)));
        s.catch(() => sessions.delete(host));
        sessions.set(host, s);
      }
      return s;
    },
    async close() {
      const all = [...sessions.values()];
      sessions.clear();
      for (const s of await Promise.allSettled(all)) if (s.status === 'fulfilled') s.value.end();
      const js = [...jumps.values()];
      jumps.clear();
      for (const j of await Promise.allSettled(js)) if (j.status === 'fulfilled') j.value.end();
    },
  };
}
