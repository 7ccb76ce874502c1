import { XamalError } from '../../core/index.ts';
import type { CaddyRequest } from '../remote.ts';

/**
 * Pure: several admin API changes as one. Every config change is a full reload in Caddy 2.6.2, and
 * each reload resets kept-alive connections of every app on the host and opens a window in which a
 * new TLS handshake can find no certificate (the new config serves before it has loaded its
 * certificates: FACTS.md#caddy). So a flow that changes several things (remove: the route, the TLS
 * policy, the access log) applies its requests to a copy of the config here, as Caddy would, and
 * sends the result once: `POST /config/` with `If-Match` (Caddy answers 412 when the config changed
 * since it was read, and the flow reads and plans again).
 *
 * Caddy's semantics, per method, at the last key of the path: POST appends to a list or sets a key;
 * PUT inserts into a list at an index or creates a key (an error if it exists; keys missing on the
 * way are made); PATCH replaces an existing key or list element; DELETE removes one. `/id/<id>/…`
 * starts at the object tagged `@id: <id>`.
 */
export function applyCaddyRequests(config: unknown, requests: readonly CaddyRequest[]): unknown {
  // Caddy keeps the config under the key `config` of a root object; paths start there.
  const root: Record<string, unknown> = { config: structuredClone(config ?? null) };
  for (const req of requests) applyOne(root, req);
  return root.config;
}

/** The object tagged `@id: id` anywhere in the config, with its path. */
export function findById(config: unknown, id: string, path: (string | number)[] = []): { path: (string | number)[]; value: Record<string, unknown> } | undefined {
  if (Array.isArray(config)) {
    for (let i = 0; i < config.length; i++) {
      const f = findById(config[i], id, [...path, i]);
      if (f) return f;
    }
  } else if (isObject(config)) {
    if (config['@id'] === id) return { path, value: config };
    for (const [k, v] of Object.entries(config)) {
      const f = findById(v, id, [...path, k]);
      if (f) return f;
    }
  }
  return undefined;
}

type Container = Record<string, unknown> | unknown[];
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function keysOf(root: Record<string, unknown>, req: CaddyRequest): string[] {
  const [path] = req.path.split('?');
  const parts = path!.split('/').filter((p) => p !== '').map(decodeURIComponent);
  if (parts[0] === 'config') return parts;
  if (parts[0] === 'id' && parts[1] !== undefined) {
    const found = findById(root.config, parts[1]);
    if (!found) throw fail(req, `no object with @id ${JSON.stringify(parts[1])}`);
    return ['config', ...found.path.map(String), ...parts.slice(2)];
  }
  throw fail(req, 'only /config/ and /id/ paths change the config');
}

function applyOne(root: Record<string, unknown>, req: CaddyRequest): void {
  if (req.method === 'GET') return;
  const keys = keysOf(root, req);
  let node: Container = root;
  for (let i = 0; i < keys.length - 1; i++) {
    const k = keys[i]!;
    let next: unknown = Array.isArray(node) ? node[index(req, node, k, false)] : node[k];
    if ((next === undefined || next === null) && req.method === 'PUT' && isObject(node)) next = node[k] = {};
    if (!isObject(next) && !Array.isArray(next)) throw fail(req, `nothing to traverse at ${keys.slice(1, i + 1).join('/') || '/'}`);
    node = next;
  }
  const last = keys[keys.length - 1]!;
  if (Array.isArray(node)) return applyToList(req, node, last);
  const has = Object.prototype.hasOwnProperty.call(node, last);
  const cur = node[last];
  switch (req.method) {
    case 'POST':
      if (Array.isArray(cur)) cur.push(structuredClone(req.body));
      else node[last] = structuredClone(req.body);
      return;
    case 'PUT':
      if (has) throw fail(req, `key already exists: ${last}`);
      node[last] = structuredClone(req.body);
      return;
    case 'PATCH':
      if (!has) throw fail(req, `key does not exist: ${last}`);
      node[last] = structuredClone(req.body);
      return;
    case 'DELETE':
      if (!has) throw fail(req, `key does not exist: ${last}`);
      delete node[last];
      return;
  }
}

function applyToList(req: CaddyRequest, list: unknown[], key: string): void {
  switch (req.method) {
    case 'PUT':
      list.splice(index(req, list, key, true), 0, structuredClone(req.body));
      return;
    case 'PATCH':
      list[index(req, list, key, false)] = structuredClone(req.body);
      return;
    case 'DELETE':
      list.splice(index(req, list, key, false), 1);
      return;
    default:
      throw fail(req, 'POST appends at the list itself, not at an index');
  }
}

function index(req: CaddyRequest, list: unknown[], key: string, insert: boolean): number {
  const i = Number(key);
  if (!/^\d+$/.test(key) || i > list.length || (!insert && i === list.length)) throw fail(req, `no index ${key} in a list of ${list.length}`);
  return i;
}

function fail(req: CaddyRequest, why: string): XamalError {
  return new XamalError('internal', `Caddy change ${req.method} ${req.path}${req.label ? ` (${req.label})` : ''} does not apply to the config read: ${why}`);
}

/**
 * The ETag Caddy 2.6 gives `GET <path>` (sent as a trailer, which the admin command does not read):
 * `"<path> <fnv-1a 32-bit hex of the body>"` — the body is the config's JSON as Caddy encodes it,
 * the same bytes it hashes to check an `If-Match` (measured: equal for GET /config/).
 * FNV-1a is eight lines; no npm package is worth a dependency for it.
 */
export function caddyEtag(path: string, body: string): string {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(body, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `"${path} ${h.toString(16).padStart(8, '0')}"`;
}
