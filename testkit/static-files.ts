import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve, sep } from 'node:path';

/**
 * Serves the files under `root` over HTTP on loopback (GET only; no listings; nothing outside
 * `root`): the test suite's toolchain source mirror, and a private git host over dumb HTTP. Small on purpose: no npm package here does
 * only this, and the API's fastify is owned by `api/`.
 */
export async function serveFiles(root: string, opts: { basicAuth?: { username: string; password: string } } = {}): Promise<{ url: string; close: () => Promise<void>; requests: { path: string; authorized: boolean }[] }> {
  const base = resolve(root);
  const requests: { path: string; authorized: boolean }[] = [];
  const expected = opts.basicAuth ? `Basic ${Buffer.from(`${opts.basicAuth.username}:${opts.basicAuth.password}`).toString('base64')}` : undefined;
  const server = createServer((req, res) => {
    // With `basicAuth`, as a private git host over dumb HTTP answers: 401 without the credentials.
    if (expected && req.headers.authorization !== expected) {
      requests.push({ path: req.url ?? '', authorized: false });
      return void res.writeHead(401, { 'www-authenticate': 'Basic realm="private"' }).end();
    }
    requests.push({ path: req.url ?? '', authorized: true });
    void (async () => {
      const path = resolve(base, `.${decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)}`);
      const st = req.method === 'GET' && path.startsWith(base + sep) ? await stat(path).catch(() => undefined) : undefined;
      if (!st?.isFile()) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': st.size, 'content-type': 'application/octet-stream' });
      createReadStream(path).pipe(res);
    })().catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => server.close(() => r())), requests };
}
