import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveFiles } from '../../../testkit/static-files.ts';

/** A raw GET (no URL normalisation by the client), resolving with the status and body. */
function get(url: string, path: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the suite’s loopback file server (toolchain mirror)', () => {
  let dir: string;
  let server: Awaited<ReturnType<typeof serveFiles>>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-static-'));
    await mkdir(join(dir, 'root', 'debian', 'pool'), { recursive: true });
    await writeFile(join(dir, 'root', 'debian', 'pool', 'otp.tar.xz'), 'otp bytes');
    await writeFile(join(dir, 'secret'), 'outside');
    server = await serveFiles(join(dir, 'root'));
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves a file under its root, on loopback only', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await get(server.url, '/debian/pool/otp.tar.xz')).toEqual({ status: 200, body: 'otp bytes' });
  });

  it('answers 404 for a missing file, a directory, and any way out of its root', async () => {
    for (const path of ['/debian/pool/nope.tar.xz', '/debian/pool', '/../secret', '/debian/..%2f..%2fsecret', '/%2e%2e/secret']) {
      expect((await get(server.url, path)).status, path).toBe(404);
    }
  });
});
