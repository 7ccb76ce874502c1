import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { XamalError } from '../core/index.ts';

/**
 * The egress proxy: the only way a build step reaches the network (FACTS.md#egress).
 * tinyproxy (Debian `tinyproxy-bin`) listens on 127.0.0.1 and forwards only to the hosts of the allow
 * list; this worker bridges a unix socket to it; a build container's network namespace holds nothing
 * but its loopback, where `socat` (entered with `nsenter --net`) listens on EGRESS_PORT and forwards to
 * that unix socket. The farm's own services listen on the machine's loopback, which the container's
 * namespace does not have, and no address outside the allow list has a route.
 */

/** One allowed destination: a host name or IPv4 address, and a port. */
export interface AllowEntry {
  host: string;
  port: number;
}

/**
 * What a Mix project needs from the internet: Hex, git over https from GitHub and GitLab, the asset
 * bundlers Phoenix downloads (npm registry, GitHub releases), and Debian's archive over http (apt
 * verifies what it fetches by the archive's signatures) for a build's extra packages (builder/derived-image.ts).
 */
export const DEFAULT_DEPS_ALLOW = 'hex.pm:443,repo.hex.pm:443,builds.hex.pm:443,github.com:443,codeload.github.com:443,objects.githubusercontent.com:443,release-assets.githubusercontent.com:443,gitlab.com:443,registry.npmjs.org:443,deb.debian.org:80';

/** The proxy's port inside a build container's own network namespace. */
export const EGRESS_PORT = 3128;

/**
 * Debian packages the egress needs on the worker's machine (nsenter is in util-linux; ssh carries
 * the deps step's git over ssh, builder/git-ssh-relay.ts).
 */
export const EGRESS_PACKAGES = ['tinyproxy-bin', 'socat', 'util-linux', 'openssh-client'];

/** A port on a build container's loopback that leads to a unix socket of the worker's (builder/git-ssh-relay.ts). */
export interface LoopbackRelay {
  port: number;
  socket: string;
}

const HOSTNAME_RE = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Why a host may never be allowed: the farm's own loopback services and the link-local range. */
function forbiddenHost(host: string): string | undefined {
  if (host === 'localhost' || host.endsWith('.localhost')) return 'the farm\'s own loopback';
  const ip = IPV4_RE.exec(host);
  if (!ip) return undefined;
  const [a, b] = [Number(ip[1]), Number(ip[2])];
  if (ip.slice(1).some((o) => Number(o) > 255)) return 'not an IPv4 address';
  if (a === 127 || a === 0) return 'the farm\'s own loopback';
  if (a === 169 && b === 254) return 'link-local';
  return undefined;
}

/**
 * Pure: `host[:port],…` (XAMAL_DEPS_ALLOW) → entries; the port defaults to 443. Loopback, link-local
 * and IPv6 literals are refused: the farm's services and cloud metadata endpoints stay unreachable.
 */
export function parseAllowList(text: string): AllowEntry[] {
  const entries: AllowEntry[] = [];
  for (const raw of text.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)) {
    const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(raw);
    const host = m?.[1] ?? '';
    const port = m?.[2] === undefined ? 443 : Number(m[2]);
    if (!m || !HOSTNAME_RE.test(host)) throw new XamalError('validation', `XAMAL_DEPS_ALLOW: expected host[:port] (a DNS name or IPv4 address), got ${JSON.stringify(raw)}`);
    if (port < 1 || port > 65535) throw new XamalError('validation', `XAMAL_DEPS_ALLOW: ${JSON.stringify(raw)}: expected a port from 1 to 65535`);
    const why = forbiddenHost(host);
    if (why) throw new XamalError('validation', `XAMAL_DEPS_ALLOW: ${JSON.stringify(raw)} is never allowed (${why})`);
    entries.push({ host, port });
  }
  return entries;
}

/**
 * Pure: tinyproxy's filter (extended regular expressions matched against the whole URL with
 * `FilterURLs On`: `http://host[:port]/…` for plain HTTP, `host:port` for CONNECT; FACTS.md#egress).
 */
export function proxyFilter(allow: readonly AllowEntry[]): string {
  const lines = allow.flatMap(({ host, port }) => {
    const h = host.replace(/\./g, '\\.');
    return [port === 80 ? `^http://${h}(:80)?/` : `^http://${h}:${port}/`, `^${h}:${port}$`];
  });
  return `${lines.join('\n')}\n`;
}

/** Pure: tinyproxy's configuration. Everything not in the filter is refused with 403. */
export function proxyConfig(o: { port: number; filterPath: string }): string {
  return [
    `Port ${o.port}`,
    'Listen 127.0.0.1',
    'Timeout 600',
    'MaxClients 200',
    'LogLevel Connect',
    'FilterDefaultDeny Yes',
    'FilterURLs On',
    'FilterType ere',
    `Filter "${o.filterPath}"`,
    'DisableViaHeader Yes',
    '',
  ].join('\n');
}

/** Pure: the variables that send Mix, Hex, git and curl through the proxy inside a container. */
export function proxyEnv(): Record<string, string> {
  const url = `http://127.0.0.1:${EGRESS_PORT}`;
  return { http_proxy: url, https_proxy: url, HTTP_PROXY: url, HTTPS_PROXY: url, HEX_HTTP_PROXY: url, HEX_HTTPS_PROXY: url, no_proxy: '', NO_PROXY: '' };
}

/** Pure: the line `/proc/<pid>/net/tcp` shows for a socket listening on 127.0.0.1:port. */
export function listensOn(procNetTcp: string, port: number): boolean {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return procNetTcp.split('\n').some((l) => {
    const f = l.trim().split(/\s+/);
    return f[1] === local && f[3] === '0A';
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(what: string, ok: () => Promise<boolean>, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child && child.exitCode !== null) throw new XamalError('internal', `egress: ${what}: the process exited with ${child.exitCode}`);
    if (await ok()) return;
    await sleep(10);
  }
  throw new XamalError('internal', `egress: ${what} did not come up within ${timeoutMs} ms`);
}

const canConnect = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });

async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** Unix socket → tinyproxy's loopback port. Kept in-process: ten lines, no extra process to supervise. */
async function unixBridge(path: string, port: number): Promise<Server> {
  await rm(path, { force: true });
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port });
    client.pipe(upstream).pipe(client);
    const close = () => (client.destroy(), upstream.destroy());
    client.on('error', close);
    upstream.on('error', close);
  });
  await new Promise<void>((r) => server.listen(path, r));
  return server;
}

function kill(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (!child?.pid || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

/** A build container's way out, held while its step runs. */
export interface EgressJoin {
  stop(): void;
}

export interface EgressProxy {
  /** Starts the proxy when first needed; later calls reuse it. */
  start(): Promise<void>;
  /** Makes EGRESS_PORT on the loopback of the network namespace of process `pid` reach the proxy, and each relay's port its socket. */
  join(pid: number, relays?: readonly LoopbackRelay[]): Promise<EgressJoin>;
  /** Makes each relay's port on the loopback of `pid`'s network namespace reach its socket (a namespace already joined, for one step). */
  relay(pid: number, relays: readonly LoopbackRelay[]): Promise<EgressJoin>;
  /** Whether the allow list (XAMAL_DEPS_ALLOW) has `host:port`. */
  allows(host: string, port: number): boolean;
  /** An ssh ProxyCommand reaching `%h:%p` through the proxy (HTTP CONNECT; so the allow list applies), for the worker's own ssh. */
  sshProxyCommand(): Promise<string>;
  /** The proxy's log (refusals included), for tests and operators. */
  logPath: string;
  stop(): Promise<void>;
}

/** socat in `pid`'s network namespace for each relay (kept in `joined` until stopped): its loopback port leads to its unix socket. */
async function listenIn(joined: Set<ChildProcess>, pid: number, relays: readonly LoopbackRelay[]): Promise<EgressJoin> {
  const children = relays.map(({ port, socket }) => {
    const argv = [`--net=/proc/${pid}/ns/net`, 'setpriv', '--pdeathsig', 'KILL', 'socat', `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `UNIX-CONNECT:${socket}`];
    const child = spawn('nsenter', argv, { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    joined.add(child);
    return { port, child };
  });
  const stop = () => {
    for (const { child } of children) {
      kill(child);
      joined.delete(child);
    }
  };
  try {
    for (const { port, child } of children) {
      await until('socat in the build container\'s namespace (Debian packages socat, util-linux)', async () => listensOn(await readFile(`/proc/${pid}/net/tcp`, 'utf8').catch(() => ''), port), 10_000, child);
    }
  } catch (err) {
    stop();
    throw err;
  }
  return { stop: () => void stop() };
}

/** The worker's egress proxy, in `dir` (keep it short: unix socket paths are limited to 107 bytes). */
export function egressProxy(o: { dir: string; allow: readonly AllowEntry[] }): EgressProxy {
  const socketPath = join(o.dir, 'egress.sock');
  const logPath = join(o.dir, 'tinyproxy.log');
  let started: Promise<{ proxy: ChildProcess; bridge: Server; port: number }> | undefined;
  const joined = new Set<ChildProcess>();

  const startOnce = async () => {
    await mkdir(o.dir, { recursive: true, mode: 0o700 });
    const port = await freeLoopbackPort();
    const filterPath = join(o.dir, 'allow.filter');
    const confPath = join(o.dir, 'tinyproxy.conf');
    await writeFile(filterPath, proxyFilter(o.allow));
    await writeFile(confPath, proxyConfig({ port, filterPath }));
    const log = createWriteStream(logPath, { flags: 'a' });
    // --pdeathsig: the proxy ends with the worker, however the worker ends.
    const proxy = spawn('setpriv', ['--pdeathsig', 'TERM', 'tinyproxy', '-d', '-c', confPath], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    proxy.stdout?.pipe(log);
    proxy.stderr?.pipe(log);
    proxy.on('error', () => {});
    await until('tinyproxy (Debian package tinyproxy-bin)', () => canConnect(port), 10_000, proxy);
    return { proxy, bridge: await unixBridge(socketPath, port), port };
  };

  return {
    logPath,
    start: async () => {
      started ??= startOnce().catch((err: unknown) => {
        started = undefined;
        throw err instanceof XamalError ? err : new XamalError('internal', `egress: cannot start tinyproxy (Debian package tinyproxy-bin): ${(err as Error).message}`);
      });
      await started;
    },
    async join(pid, relays = []) {
      await this.start();
      return listenIn(joined, pid, [{ port: EGRESS_PORT, socket: socketPath }, ...relays]);
    },
    relay: (pid, relays) => listenIn(joined, pid, relays),
    allows: (host, port) => o.allow.some((a) => a.host === host.toLowerCase() && a.port === port),
    async sshProxyCommand() {
      await this.start();
      const s = await started!;
      return `socat - PROXY:127.0.0.1:%h:%p,proxyport=${s.port}`;
    },
    async stop() {
      for (const child of joined) kill(child);
      joined.clear();
      const s = await started?.catch(() => undefined);
      started = undefined;
      if (!s) return;
      await new Promise((r) => s.bridge.close(r));
      kill(s.proxy);
      await rm(socketPath, { force: true });
    },
  };
}
