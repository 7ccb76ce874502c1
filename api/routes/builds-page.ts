import { readFileSync } from 'node:fs';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';

/** Where the builds page is served: its files are relative to this path, and it finds the API at `..`. */
export const BUILDS_PAGE_PATH = '/builds/';

/** The page's files (api/builds-page/), each with its content type. */
const FILES = {
  '': { file: 'index.html', type: 'text/html; charset=utf-8' },
  'builds.js': { file: 'builds.js', type: 'text/javascript; charset=utf-8' },
  'builds.css': { file: 'builds.css', type: 'text/css; charset=utf-8' },
  'favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
} as const;

/**
 * The page holds no secret and runs only its own files: no inline script or style, no other origin to
 * fetch from, no framing, no form posting anywhere. The token it asks for goes only into fetch headers.
 */
export const BUILDS_PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const HEADERS = {
  'content-security-policy': BUILDS_PAGE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cache-control': 'no-cache',
};

/** The page's files, read once from the folder beside api/routes (shipped with the package). */
function readPageFiles(): Map<string, { body: Buffer; type: string }> {
  const dir = new URL('../builds-page/', import.meta.url);
  return new Map(Object.entries(FILES).map(([name, f]) => [name, { body: readFileSync(new URL(f.file, dir)), type: f.type }]));
}

/**
 * The builds page (static HTML, JS and CSS, no token needed to load it): it asks for a read token
 * once, keeps it in the tab's sessionStorage and calls the JSON API with it as a bearer header.
 */
export const buildsPageRoutes: FastifyPluginAsyncZod = async (app) => {
  const files = readPageFiles();
  const config = { public: true, accessLog: 'debug' as const };
  // Relative, so the page works behind a proxy that mounts the API under a path.
  app.get(BUILDS_PAGE_PATH.slice(0, -1), { config, schema: { hide: true } }, async (_req, reply) => reply.redirect('builds/', 301));
  for (const [name, { body, type }] of files) {
    app.get(`${BUILDS_PAGE_PATH}${name}`, { config, schema: { hide: true } }, async (_req, reply) => reply.headers(HEADERS).type(type).send(body));
  }
};
