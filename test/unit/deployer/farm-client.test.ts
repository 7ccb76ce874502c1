import { describe, expect, it } from 'vitest';
import { farmClient } from '../../../deployer/farm-client.ts';

const B = `b${'0'.repeat(32)}`;
const SHA = 'e'.repeat(64);

/** A farm that answers every request with `res`. */
const answering = (res: () => Response): typeof fetch => async () => res();
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

describe('the farm client against a farm that answers otherwise', () => {
  it('rejects a build status without its state, naming the request, the field and what it expected', async () => {
    const client = farmClient('http://farm.test', 't', answering(() => json({ id: B, arch: 'x86_64', attemptsMade: 0, createdAt: 0 })));
    await expect(client.status(B)).rejects.toThrow(new RegExp(`GET /v1/builds/${B}: the answer does not fit the farm API's schema:\\nstate: .*expected string`));
  });

  it('rejects a submission answer whose builds are not a list, naming builds', async () => {
    const client = farmClient('http://farm.test', 't', answering(() => json({ buildSet: 's', builds: 'none', unresolved: [] }, 202)));
    await expect(client.submit({ app: 'hello', source: { git: 'https://x/y.git', commit: 'a'.repeat(40) }, targets: ['t'] })).rejects.toThrow(/POST \/v1\/builds: [^\n]*\nbuilds: .*expected array/);
  });

  it('rejects a resolve answer whose artifact has no sha256, naming artifact/sha256', async () => {
    const client = farmClient('http://farm.test', 't', answering(() => json({ artifact: { tuple: 'x', manifestKey: 'k' }, others: [] })));
    await expect(client.resolve({ app: 'hello', version: 'a'.repeat(40), host: { os: 'linux', arch: 'x86_64', libc: 'gnu', libcVersion: '2.36', distro: 'debian', distroVersion: '12', libraries: [] } })).rejects.toThrow(
      /POST \/v1\/resolve: [^\n]*\nartifact\/sha256: .*expected string/,
    );
  });

  it('rejects a download redirect without the sha256 header, naming the headers it reads', async () => {
    const client = farmClient('http://farm.test', 't', answering(() => new Response(null, { status: 302, headers: { location: '/v1/downloads/x.y' } })));
    await expect(client.downloadLink('hello', 'a'.repeat(40), 't')).rejects.toThrow(/x-xamal-sha256[^\n]*\nsha256: .*expected string/);
  });

  it('takes a download redirect with its headers, the link made absolute against the farm', async () => {
    const headers = { location: '/v1/downloads/x.y', 'x-xamal-sha256': SHA, 'x-xamal-expires': '2030-01-01T00:00:00.000Z' };
    const client = farmClient('http://farm.test/', 't', answering(() => new Response(null, { status: 302, headers })));
    expect(await client.downloadLink('hello', 'a'.repeat(40), 't')).toEqual({ url: 'http://farm.test/v1/downloads/x.y', sha256: SHA, expires: '2030-01-01T00:00:00.000Z' });
  });

  it('says so when the answer is not JSON at all (a proxy page), quoting its start', async () => {
    const client = farmClient('http://farm.test', 't', answering(() => new Response('<html>bad gateway</html>', { status: 200 })));
    await expect(client.status(B)).rejects.toThrow(/expected a JSON answer, got "<html>bad gateway/);
  });

  it("turns an error answer into an error carrying the farm's message and a code for its status", async () => {
    const client = farmClient('http://farm.test', 't', answering(() => json({ statusCode: 403, error: 'forbidden', message: 'token ci lacks the build scope' }, 403)));
    await expect(client.status(B)).rejects.toMatchObject({ code: 'forbidden', message: `farm: GET /v1/builds/${B}: 403: token ci lacks the build scope` });
  });

  it('reads an artifact\'s attestations as exact text from its route, with the variant in the query', async () => {
    const urls: string[] = [];
    const body = { manifestKey: 'artifacts/hello/x/manifest.json', manifest: '{"schema": 1}\n', signature: null, provenance: '{}', sbom: null };
    const client = farmClient('http://farm.test', 't', async (url) => (urls.push(String(url)), json(body)));
    expect(await client.attestations('hello', 'a'.repeat(40), 'linux-x', { mixEnv: 'staging' })).toEqual(body);
    expect(urls).toEqual([`http://farm.test/v1/artifacts/hello/${'a'.repeat(40)}/linux-x/attestations?mixEnv=staging`]);
  });

  it('reads the farm\'s keys, and names the field of a key answer that does not fit', async () => {
    const key = { keyid: '0123456789abcdef', publicKey: 'ed25519:E04TLiElgloJUfASIuQ2alelYfpbwkpIlhzB0aNsBtw=', current: true };
    expect(await farmClient('http://farm.test', 't', answering(() => json({ keys: [key] }))).keys()).toEqual([key]);
    await expect(farmClient('http://farm.test', 't', answering(() => json({ keys: [{ ...key, publicKey: 'rsa:x' }] }))).keys()).rejects.toThrow(/GET \/v1\/keys: [^\n]*\nkeys\/0\/publicKey: expected an ed25519 public key/);
  });
});
