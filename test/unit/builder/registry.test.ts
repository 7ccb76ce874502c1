import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseChallenge, registryReader } from '../../../builder/registry.ts';

/**
 * The registry token flow as Docker Hub runs it (a 401 naming a token realm, an anonymous token, the
 * request again with it), served on loopback: the lab reaches no public registry, and its local
 * registry runs without auth, so the integration test (hexpm-images) cannot take this branch.
 */
const INDEX = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json', manifests: [] }));
const DIGEST = `sha256:${createHash('sha256').update(INDEX).digest('hex')}`;

describe('registryReader', () => {
  let server: Server;
  let base: string;
  const seen: string[] = [];
  let lie = false;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      seen.push(`${req.method} ${url.pathname}${url.search} ${req.headers.authorization ?? '-'}`);
      if (url.pathname === '/token') {
        res.setHeader('content-type', 'application/json');
        return res.end(JSON.stringify({ token: `tok-${url.searchParams.get('scope')}` }));
      }
      if (req.headers.authorization !== 'Bearer tok-repository:hexpm/elixir:pull') {
        res.statusCode = 401;
        res.setHeader('www-authenticate', `Bearer realm="${base}/token",service="registry.test",scope="repository:hexpm/elixir:pull"`);
        return res.end();
      }
      if (url.pathname !== '/v2/hexpm/elixir/manifests/1.18.3-erlang-27.3.4-debian-bookworm-20250520-slim') {
        res.statusCode = 404;
        return res.end();
      }
      res.setHeader('content-type', 'application/vnd.docker.distribution.manifest.list.v2+json');
      res.setHeader('docker-content-digest', lie ? `sha256:${'0'.repeat(64)}` : DIGEST);
      res.end(INDEX);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('answers a 401 challenge with an anonymous token for the repository, keeps the token, and hashes what it got', async () => {
    const reader = registryReader(base);
    const tag = '1.18.3-erlang-27.3.4-debian-bookworm-20250520-slim';
    const first = await reader.manifest('hexpm/elixir', tag);
    expect(first).toMatchObject({ digest: DIGEST, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json' });
    expect(first.raw.equals(INDEX)).toBe(true);
    await reader.manifest('hexpm/elixir', tag);
    expect(seen).toEqual([
      `GET /v2/hexpm/elixir/manifests/${tag} -`,
      'GET /token?service=registry.test&scope=repository%3Ahexpm%2Felixir%3Apull -',
      `GET /v2/hexpm/elixir/manifests/${tag} Bearer tok-repository:hexpm/elixir:pull`,
      `GET /v2/hexpm/elixir/manifests/${tag} Bearer tok-repository:hexpm/elixir:pull`,
    ]);
  });

  it('refuses an answer whose bytes do not hash to the digest the registry reports, and a missing tag', async () => {
    const reader = registryReader(base);
    lie = true;
    try {
      await expect(reader.manifest('hexpm/elixir', '1.18.3-erlang-27.3.4-debian-bookworm-20250520-slim')).rejects.toThrow(`the registry says sha256:${'0'.repeat(64)} but the bytes hash to ${DIGEST}`);
    } finally {
      lie = false;
    }
    await expect(reader.manifest('hexpm/elixir', 'nope')).rejects.toThrow(/no such manifest/);
  });

  it('refuses plain http to anything but loopback', () => {
    expect(() => registryReader('http://registry.example:5000')).toThrow('registry http://registry.example:5000: expected https://, or http:// to a loopback address');
    expect(() => registryReader('https://registry-1.docker.io')).not.toThrow();
  });
});

describe('parseChallenge', () => {
  it('reads Docker Hub’s Bearer challenge and rejects Basic', () => {
    expect(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:hexpm/elixir:pull"')).toEqual({
      realm: 'https://auth.docker.io/token',
      service: 'registry.docker.io',
      scope: 'repository:hexpm/elixir:pull',
    });
    expect(parseChallenge('Basic realm="x"')).toBeUndefined();
    expect(parseChallenge('Bearer service="x"')).toBeUndefined();
  });
});
