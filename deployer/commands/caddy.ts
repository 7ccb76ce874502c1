import { command, XamalError, type Command } from '../../core/index.ts';
import type { DeployConfig } from '../config/schema.ts';
import type { CaddyRequest } from '../remote.ts';
import { applyCaddyRequests, findById } from './caddy-draft.ts';
import { tryDurationS } from './rollout.ts';
import { slotPort, SLOTS, type AppLayout } from './layout.ts';

export { findById };

/**
 * Caddy, driven only through its admin API (never the Caddyfile): apps share one HTTPS server
 * (`xamal`, :443; `xamal_http`, :80, for apps without TLS or host names) and each app owns one
 * route, `@id: xamal-<app>`, and with `ssl: internal` one TLS policy, `@id: xamal-<app>-tls`.
 * Other apps' routes and other servers are never touched.
 *
 * The route lists both slots of the primary role permanently, in order [blue, green], with the
 * `first` policy and fast active health checks: a deploy switches by health (new slot healthy,
 * old slot stopped gracefully) with no config change, i.e. no reload (FACTS.md#caddy: 0 errors that way).
 */

export const HTTPS_SERVER = { name: 'xamal', listen: [':443'] } as const;
export const HTTP_SERVER = { name: 'xamal_http', listen: [':80'] } as const;

export const routeId = (app: string) => `xamal-${app}`;
export const proxyId = (app: string) => `xamal-${app}-proxy`;
export const maintenanceId = (app: string) => `xamal-${app}-maintenance`;
export const tlsPolicyId = (app: string) => `xamal-${app}-tls`;

/** What Caddy needs to know about one app. */
export interface AppSite {
  app: string;
  hosts: string[];
  ssl: boolean | 'internal';
  /** Loopback ports of the primary role's slots, [blue, green]. */
  ports: number[];
  healthPath: string;
  /** A JSON access log of the app's host names (`rollout.max_5xx_percent`, commands/access-log.ts). */
  accessLog?: boolean;
  /** How long Caddy holds a request while no slot is healthy, s (`tryDurationS`; default 5). */
  tryDurationS?: number;
}

export function appSite(config: Pick<DeployConfig, 'caddy' | 'roles' | 'primaryRole' | 'healthCheck'> & { rollout?: DeployConfig['rollout'] }, layout: AppLayout): AppSite {
  const tryS = config.rollout ? tryDurationS(config.rollout) : 5;
  return {
    app: layout.app,
    hosts: config.caddy.hosts,
    ssl: config.caddy.ssl,
    ports: SLOTS.map((s) => slotPort(config, config.primaryRole, s)),
    healthPath: config.healthCheck.path,
    ...(config.rollout?.max5xxPercent !== undefined && config.caddy.hosts.length ? { accessLog: true } : {}),
    ...(tryS !== 5 ? { tryDurationS: tryS } : {}),
  };
}

/** HTTPS when there are host names to get certificates for and ssl is not off. */
export function serverFor(site: AppSite): { name: string; listen: readonly string[] } {
  return site.ssl !== false && site.hosts.length > 0 ? HTTPS_SERVER : HTTP_SERVER;
}

export function proxyHandler(site: AppSite): Record<string, unknown> {
  return {
    '@id': proxyId(site.app),
    handler: 'reverse_proxy',
    upstreams: site.ports.map((p) => ({ dial: `127.0.0.1:${p}` })),
    // try_duration: a request waits this long for a healthy slot (a switch, a rollback) before Caddy's 503.
    // try_interval: Caddy waits it after every failed dial, even when the other slot is up. When the
    // old slot is blue (first), its stop refuses the reconnects its own 1001 closes set off, each then
    // waits this long before the new slot: kept short.
    load_balancing: { selection_policy: { policy: 'first' }, try_duration: `${site.tryDurationS ?? 5}s`, try_interval: '10ms' },
    health_checks: {
      active: { uri: site.healthPath, interval: '100ms', timeout: '1s' },
      passive: { fail_duration: '1s' },
    },
  };
}

export const DEFAULT_MAINTENANCE_PAGE =
  '<!doctype html><html><head><meta charset="utf-8"><title>Maintenance</title></head><body><h1>Down for maintenance</h1><p>Please try again in a few minutes.</p></body></html>\n';

export function maintenanceHandler(app: string, html = DEFAULT_MAINTENANCE_PAGE): Record<string, unknown> {
  return {
    '@id': maintenanceId(app),
    handler: 'static_response',
    status_code: 503,
    headers: { 'Content-Type': ['text/html; charset=utf-8'], 'Retry-After': ['60'], 'Cache-Control': ['no-store'] },
    body: html,
  };
}

/** The app's route; `handle` defaults to the proxy. */
export function appRoute(site: AppSite, handle: unknown[] = [proxyHandler(site)]): Record<string, unknown> {
  return {
    '@id': routeId(site.app),
    ...(site.hosts.length ? { match: [{ host: site.hosts }] } : {}),
    handle,
    terminal: true,
  };
}

export function tlsPolicy(site: AppSite): Record<string, unknown> {
  return { '@id': tlsPolicyId(site.app), subjects: site.hosts, issuers: [{ module: 'internal' }] };
}

// --- requests ------------------------------------------------------------------------------------

export const configRequest = (): CaddyRequest => ({ method: 'GET', path: '/config/', label: 'read Caddy config' });
export const routeRequest = (app: string): CaddyRequest => ({ method: 'GET', path: `/id/${routeId(app)}`, label: 'read app route' });
export const upstreamsRequest = (): CaddyRequest => ({ method: 'GET', path: '/reverse_proxy/upstreams', label: 'read upstream health' });

/** Serve a static 503 page for this app only (its route's handler, nothing else). */
export function maintenanceRequest(app: string, html?: string): CaddyRequest {
  return { method: 'PATCH', path: `/id/${routeId(app)}/handle`, body: [maintenanceHandler(app, html)], label: 'maintenance on' };
}

/** Back to the proxy after maintenance. */
export function liveRequest(site: AppSite): CaddyRequest {
  return { method: 'PATCH', path: `/id/${routeId(site.app)}/handle`, body: [proxyHandler(site)], label: 'maintenance off' };
}

// --- plan ----------------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Path = (string | number)[];
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** JSON text with object keys sorted: equal values, equal text. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isObject(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

const at = (config: unknown, path: Path): unknown => path.reduce<unknown>((v, k) => (isObject(v) || Array.isArray(v) ? (v as Record<string | number, unknown>)[k] : undefined), config);
const configPath = (path: Path) => `/config/${path.map((p) => encodeURIComponent(String(p))).join('/')}`;

/**
 * Puts `value` at `path`, creating what is missing above it in one request: PUT at the first missing
 * key (Caddy's PUT creates), or POST /config/ when there is no config at all.
 */
function create(config: unknown, path: Path, value: unknown, label: string): CaddyRequest {
  // A POST /config/ replaces everything, the admin listener too: it keeps the unix socket.
  if (!isObject(config)) return { method: 'POST', path: '/config/', body: { admin: { listen: CADDY_ADMIN_LISTEN }, ...(nest(path, value) as Record<string, unknown>) }, label };
  let i = 0;
  while (i < path.length - 1 && isObject(at(config, path.slice(0, i + 1)))) i++;
  return { method: 'PUT', path: configPath(path.slice(0, i + 1)), body: nest(path.slice(i + 1), value), label };
}

const nest = (path: Path, value: unknown): unknown => path.reduceRight<unknown>((v, k) => ({ [k]: v }), value);

function listenPorts(listen: unknown): string[] {
  return (Array.isArray(listen) ? listen : []).map((a) => String(a).replace(/^[a-z0-9]+\//, '').replace(/^.*:/, ''));
}

/**
 * Maintenance is a state of the route, not a difference: setup leaves it on. So is a canary's split
 * (commands/canary.ts): promote or abort ends it. The handle to keep, if any, with a warning saying why.
 */
function keptHandle(current: unknown, app: string, warnings: string[]): unknown[] | undefined {
  const id = Array.isArray(current) && isObject(current[0]) ? String(current[0]['@id']) : undefined;
  if (id === maintenanceId(app)) warnings.push(`${app} is in maintenance mode: its route keeps serving the maintenance page`);
  else if (id?.startsWith(`${routeId(app)}-canary`)) warnings.push(`${app} runs a canary: its route keeps the split until xamal canary promote or abort`);
  else return undefined;
  return current as unknown[];
}

export interface CaddyPlan {
  requests: CaddyRequest[];
  /** What the requests change, in words (empty: nothing to do). */
  changes: string[];
  warnings: string[];
}

/**
 * The admin API requests that bring `current` (GET /config/) to serve `site`, touching only this
 * app's route and TLS policy (and creating the shared server if it is missing). Nothing when equal.
 */
export function planCaddy(current: unknown, site: AppSite): CaddyPlan {
  const plan: CaddyPlan = { requests: [], changes: [], warnings: [] };
  const server = serverFor(site);
  const serverPath: Path = ['apps', 'http', 'servers', server.name];
  const existing = findById(current, routeId(site.app));

  const route = appRoute(site, keptHandle(existing?.value.handle, site.app, plan.warnings));
  const inRightServer = existing !== undefined && canonicalJson(existing.path.slice(0, 4)) === canonicalJson(serverPath) && existing.path[4] === 'routes';

  if (existing && inRightServer) {
    if (canonicalJson(existing.value) !== canonicalJson(route)) {
      plan.requests.push({ method: 'PATCH', path: `/id/${routeId(site.app)}`, body: route, label: 'update app route' });
      plan.changes.push(`caddy route ${routeId(site.app)} updated`);
    }
  } else {
    if (existing) {
      plan.requests.push({ method: 'DELETE', path: `/id/${routeId(site.app)}`, label: 'move app route' });
      plan.changes.push(`caddy route ${routeId(site.app)} removed from ${String(existing.path[3])}`);
    }
    const srv = at(current, serverPath);
    if (!isObject(srv)) {
      const servers = at(current, ['apps', 'http', 'servers']);
      const port = listenPorts(server.listen)[0]!;
      if (isObject(servers)) {
        for (const [name, s] of Object.entries(servers)) {
          if (isObject(s) && listenPorts(s.listen).includes(port)) {
            throw new XamalError('conflict', `Caddy server ${JSON.stringify(name)} already listens on :${port}; xamal keeps its apps' routes in a server named ${JSON.stringify(server.name)} (move that server's routes there, or give it another port)`);
          }
        }
      }
      plan.requests.push(create(current, serverPath, { listen: [...server.listen], routes: [route] }, `create Caddy server ${server.name}`));
      plan.changes.push(`caddy server ${server.name} created`, `caddy route ${routeId(site.app)} added`);
    } else if (!Array.isArray(srv.routes)) {
      plan.requests.push({ method: 'PUT', path: configPath([...serverPath, 'routes']), body: [route], label: 'add app route' });
      plan.changes.push(`caddy route ${routeId(site.app)} added`);
    } else {
      // Routes with host matchers go first so no catch-all route (of any app) shadows them.
      plan.requests.push(
        site.hosts.length
          ? { method: 'PUT', path: configPath([...serverPath, 'routes', 0]), body: route, label: 'add app route' }
          : { method: 'POST', path: configPath([...serverPath, 'routes']), body: route, label: 'add app route' },
      );
      plan.changes.push(`caddy route ${routeId(site.app)} added`);
    }
  }

  const policy = findById(current, tlsPolicyId(site.app));
  const wantPolicy = site.ssl === 'internal' && site.hosts.length > 0;
  if (wantPolicy) {
    const desired = tlsPolicy(site);
    if (policy) {
      if (canonicalJson(policy.value) !== canonicalJson(desired)) {
        plan.requests.push({ method: 'PATCH', path: `/id/${tlsPolicyId(site.app)}`, body: desired, label: 'update TLS policy' });
        plan.changes.push(`caddy TLS policy ${tlsPolicyId(site.app)} updated`);
      }
    } else {
      const policiesPath: Path = ['apps', 'tls', 'automation', 'policies'];
      // A request of this plan creating a key above the policies (`/config/`, `/config/apps`) carries them.
      const creating = plan.requests.find((r) => (r.method === 'POST' || r.method === 'PUT') && r.label?.startsWith('create Caddy server'));
      const nested = creating ? nestInto(creating, policiesPath, desired) : false;
      if (!nested) {
        // Policies with subjects go first: Caddy uses the first policy that matches a name.
        plan.requests.push(Array.isArray(at(current, policiesPath)) ? { method: 'PUT', path: configPath([...policiesPath, 0]), body: desired, label: 'add TLS policy' } : create(current, policiesPath, [desired], 'add TLS policy'));
      }
      plan.changes.push(`caddy TLS policy ${tlsPolicyId(site.app)} added`);
    }
  } else if (policy) {
    plan.requests.push({ method: 'DELETE', path: `/id/${tlsPolicyId(site.app)}`, label: 'remove TLS policy' });
    plan.changes.push(`caddy TLS policy ${tlsPolicyId(site.app)} removed`);
  }
  const loaded = serverFor(site) === HTTPS_SERVER ? site.hosts : [];
  const automate = automateRequest(applyCaddyRequests(current, plan.requests), routeHosts(existing?.value), loaded);
  if (automate) {
    // Carried by a request of this plan that creates a key above the list, as the TLS policy is.
    const creating = plan.requests.find((r) => (r.method === 'POST' || r.method === 'PUT') && r.label?.startsWith('create Caddy server'));
    if (!(automate.method !== 'PATCH' && creating && nestInto(creating, AUTOMATE_PATH, loaded, false))) plan.requests.push(automate);
    plan.changes.push(loaded.length ? `caddy loads the certificates of ${loaded.join(', ')} as a config starts` : `caddy no longer loads certificates for ${site.app} as a config starts`);
  }
  return plan;
}

/** The host names a route of ours matches (none for a route without host matchers, or no route). */
export function routeHosts(route: unknown): string[] {
  const match = isObject(route) && Array.isArray(route.match) ? route.match : [];
  return match.flatMap((m) => (isObject(m) && Array.isArray(m.host) ? m.host.filter((h): h is string => typeof h === 'string') : []));
}

export const AUTOMATE_PATH: Path = ['apps', 'tls', 'certificates', 'automate'];

/**
 * The request that makes Caddy's `tls.certificates.automate` list hold `now` instead of `before`
 * (this app's host names, then and now), other apps' names kept in place; none when it already does.
 * Listed names have their certificates loaded by the TLS app as a config starts: with them, no new
 * handshake failed across 400 reloads where 11 did without (Caddy 2.6.2 serves a new config before
 * its HTTP app loads certificates into the config's new cache; BENCHMARKS.md, bench/caddy-reloads.ts).
 */
export function automateRequest(config: unknown, before: readonly string[], now: readonly string[]): CaddyRequest | undefined {
  const listed = at(config, AUTOMATE_PATH);
  const names = Array.isArray(listed) ? listed.filter((n): n is string => typeof n === 'string') : [];
  const ours = new Set([...before, ...now]);
  const wanted = [...names.filter((n) => !ours.has(n)), ...now];
  if (canonicalJson(wanted) === canonicalJson(names) && (Array.isArray(listed) || wanted.length === 0)) return undefined;
  return Array.isArray(listed) ? { method: 'PATCH', path: configPath(AUTOMATE_PATH), body: wanted, label: 'certificates loaded at start' } : create(config, AUTOMATE_PATH, wanted, 'certificates loaded at start');
}

/**
 * Adds `value` (as a one-element list, unless `asList` is false) at `path` inside the body of `req`, a request creating the
 * key it names (`POST /config/` or `PUT /config/<key>`), when `path` lies under that key.
 */
function nestInto(req: CaddyRequest, path: Path, value: unknown, asList = true): boolean {
  const at = req.path === '/config/' ? [] : req.path.slice('/config/'.length).split('/').map(decodeURIComponent);
  if (at.length >= path.length || at.some((k, i) => String(path[i]) !== k)) return false;
  let node = req.body as Record<string, unknown>;
  for (const k of path.slice(at.length, -1)) {
    if (!isObject(node[k as string])) node[k as string] = {};
    node = node[k as string] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = asList ? [value] : value;
  return true;
}

/** Caddy's GET answer as JSON (`null` for an empty config or an empty body). */
export function parseCaddyJson(body: string): Json {
  const t = body.trim();
  if (!t) return null;
  try {
    return JSON.parse(t) as Json;
  } catch {
    throw new XamalError('external', `Caddy answered with something that is not JSON: ${t.slice(0, 200)}`);
  }
}

// --- the Caddy service on the host ---------------------------------------------------------------

/**
 * Caddy's admin API listens on a unix socket only root can open (FACTS.md#caddy): the socket's
 * directory is systemd's RuntimeDirectory for caddy-api (0700, the caddy user's) and the socket is
 * made under UMask 0077. Never 127.0.0.1:2019, where every local user (every app) could rewrite it.
 */
export const CADDY_ADMIN_SOCKET = '/run/caddy/admin.sock';
export const CADDY_ADMIN_LISTEN = `unix/${CADDY_ADMIN_SOCKET}`;
/** Where Debian's (and Caddy's own) packages listen until xamal moves the API. */
export const CADDY_TCP_ADMIN = 'http://127.0.0.1:2019';
export const CADDY_DROP_IN = '/etc/systemd/system/caddy-api.service.d/xamal-admin.conf';
/** The config caddy-api starts from when it has no autosave to resume: only the admin socket. */
export const CADDY_BOOT_CONFIG = '/etc/caddy/xamal-admin.json';

export function caddyBootConfig(): string {
  return `${JSON.stringify({ admin: { listen: CADDY_ADMIN_LISTEN } })}\n`;
}

/**
 * A drop-in for caddy-api.service: the socket's directory, a umask that keeps the socket root's
 * and caddy's, and `--config` naming the socket for a start with no autosave (`--resume` prefers
 * the autosave, which keeps the admin address the API last set).
 */
export function caddyDropIn(): string {
  return [
    '# Managed by xamal: the admin API on a unix socket only root can open.',
    '[Service]',
    'RuntimeDirectory=caddy',
    'RuntimeDirectoryMode=0700',
    'UMask=0077',
    'ExecStart=',
    `ExecStart=/usr/bin/caddy run --environ --resume --config ${CADDY_BOOT_CONFIG}`,
    '',
  ].join('\n');
}

/**
 * Root step: one admin API request with curl on the host, over the socket (default) or the old TCP
 * address (only to move the API off it). The body travels on stdin; the status is the last line.
 * Over the socket the Host header is empty: Caddy 2.6 allows only that there (FACTS.md#caddy).
 */
export function caddyAdminCommand(req: CaddyRequest, via: 'socket' | 'tcp' = 'socket'): Command {
  const body = req.body === undefined ? undefined : JSON.stringify(req.body);
  const target = via === 'socket' ? ['--unix-socket', CADDY_ADMIN_SOCKET, '-H', 'Host;', `http://localhost${req.path}`] : [`${CADDY_TCP_ADMIN}${req.path}`];
  return command(
    ['curl', '-sS', '--max-time', '30', '-X', req.method, ...(req.ifMatch !== undefined ? ['-H', `If-Match: ${req.ifMatch}`] : []), ...(body !== undefined ? ['-H', 'Content-Type: application/json', '--data-binary', '@-'] : []), '-w', '\n%{http_code}', ...target],
    { ...(body !== undefined ? { stdin: body } : {}), label: `Caddy ${req.method} ${req.path}${req.label ? ` (${req.label})` : ''}`, timeoutMs: 35_000 },
  );
}

/** Pure: `caddyAdminCommand`'s output as a response (the status is the line curl appends). */
export function parseCaddyAdminOutput(stdout: string): { status: number; body: string } {
  const i = stdout.lastIndexOf('\n');
  const status = Number(stdout.slice(i + 1).trim());
  if (i < 0 || !Number.isInteger(status)) throw new XamalError('external', `Caddy admin API: no HTTP status in curl's output: ${stdout.slice(-200)}`);
  return { status, body: stdout.slice(0, i) };
}

const CADDY_FACTS_SCRIPT = [
  'printf "bin=%s\\n" "$(command -v caddy)"',
  'for u in caddy-api caddy; do printf "%s=%s/%s\\n" "$u" "$(systemctl is-enabled "$u.service" 2>/dev/null)" "$(systemctl is-active "$u.service" 2>/dev/null)"; done',
  'printf "dropin=%s\\n" "$(sha256sum "$1" 2>/dev/null | cut -c1-64)"',
  'printf "boot=%s\\n" "$(sha256sum "$2" 2>/dev/null | cut -c1-64)"',
  'printf "socket=%s\\n" "$(test -S "$3" && echo yes)"',
  'exit 0',
].join('; ');

/**
 * Root step (the socket's directory is caddy's, 0700): is Caddy installed, which of its units
 * (caddy-api: admin API + --resume; caddy: Caddyfile) runs, and is the admin API on the socket.
 */
export function caddyFactsCommand(): Command {
  return command(['sh', '-c', CADDY_FACTS_SCRIPT, 'sh', CADDY_DROP_IN, CADDY_BOOT_CONFIG, CADDY_ADMIN_SOCKET], { label: 'check Caddy' });
}

/** Root step: is the admin socket there (exit 0)? */
export function caddySocketCommand(): Command {
  return command(['test', '-S', CADDY_ADMIN_SOCKET], { label: 'check Caddy admin socket' });
}

export interface CaddyFacts {
  installed: boolean;
  api: { enabled: boolean; active: boolean; exists: boolean };
  caddyfile: { enabled: boolean; active: boolean };
  /** sha256 of the drop-in and of the boot config ('' when missing). */
  dropIn: string;
  bootConfig: string;
  adminSocket: boolean;
}

export function parseCaddyFacts(stdout: string): CaddyFacts {
  const kv = new Map(stdout.split('\n').flatMap((l) => (l.includes('=') ? [[l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()] as const] : [])));
  const unit = (u: string) => {
    const [enabled = '', active = ''] = (kv.get(u) ?? '/').split('/');
    return { enabled: enabled === 'enabled', active: active === 'active', exists: enabled !== '' && enabled !== 'not-found' };
  };
  const api = unit('caddy-api');
  const file = unit('caddy');
  return {
    installed: (kv.get('bin') ?? '') !== '',
    api,
    caddyfile: { enabled: file.enabled, active: file.active },
    dropIn: kv.get('dropin') ?? '',
    bootConfig: kv.get('boot') ?? '',
    adminSocket: kv.get('socket') === 'yes',
  };
}
