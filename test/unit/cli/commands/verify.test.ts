import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Io } from '../../../../cli/io.ts';
import { main } from '../../../../cli/main.ts';
import { keyIdOf, newKeyPair } from '../../../../core/signing.ts';
import type { AttestationTexts } from '../../../../deployer/verify.ts';
import { resign, signedArtifact, TEST_COMMIT, TEST_TUPLE } from '../../../../testkit/attestations.ts';
import { xamalCli } from '../../../../testkit/cli.ts';

/** `xamal verify`: local files, and the farm's artifact (a loopback farm answering the attestation routes). */

const TOKEN = 'verify-token-0123456789abcdef';
const startDir = process.cwd();
let dir: string;

async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => void out.push(t), err: (t) => void err.push(t), interrupted: () => new Promise<string>(() => {}) };
  const code = await main(argv, io, { debug: false });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

/** The artifact's files written to `dir`; the flags naming them. */
async function files(texts: AttestationTexts, tarball?: Buffer): Promise<string[]> {
  const flags: string[] = [];
  for (const [flag, name, text] of [['--manifest', 'manifest.json', texts.manifest], ['--signature', 'manifest.dsse.json', texts.signature], ['--provenance', 'provenance.dsse.json', texts.provenance], ['--sbom', 'sbom.cdx.json', texts.sbom]] as const) {
    if (text === null) continue;
    await writeFile(join(dir, name), text);
    flags.push(flag, join(dir, name));
  }
  if (tarball) {
    await writeFile(join(dir, 'shop.tar.gz'), tarball);
    flags.push('--tarball', join(dir, 'shop.tar.gz'));
  }
  return flags;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xamal-verify-'));
  process.chdir(dir);
});
afterEach(async () => {
  process.chdir(startDir);
  vi.unstubAllEnvs();
  await rm(dir, { recursive: true, force: true });
});

describe('xamal verify --manifest … (local files)', () => {
  it('prints one ✓ line per check and exits 0 when every check passes', async () => {
    const a = signedArtifact();
    const r = await run(['verify', ...(await files(a.texts, a.tarball)), '--key', a.key.publicKey]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, -1).every((l) => l.startsWith('✓ '))).toBe(true);
    expect(lines[0]).toBe(`✓ signature: signed by trusted key ${a.key.keyid} (--key)`);
    expect(lines).toContain(`✓ provenance commit: built from commit ${TEST_COMMIT}`);
    expect(lines).toContain(`✓ tarball: sha256 ${a.manifest.tarball.sha256}, as the manifest says`);
    expect(lines.at(-1)).toBe(`verified: shop ${TEST_COMMIT} ${TEST_TUPLE}, 10 checks passed`);
  });

  it('exits 12 on a manifest edited by one byte, saying which check failed and why', async () => {
    const a = signedArtifact();
    const r = await run(['verify', ...(await files({ ...a.texts, manifest: a.texts.manifest.replace('"size": ', '"size": 9') })), '--key', a.key.publicKey]);
    expect(r.code).toBe(12);
    expect(r.stdout.split('\n')).toContain('✗ signed manifest: manifest.json differs from what was signed');
    expect(r.stdout.split('\n').at(-1)).toMatch(/^NOT verified: shop .*: 1 of 9 checks failed$/);
  });

  it('exits 12 on a swapped tarball, and on a rotated-out key unless it is given too', async () => {
    const old = newKeyPair();
    const a = signedArtifact({ key: old });
    const swapped = await run(['verify', ...(await files(a.texts, Buffer.from('another tarball'))), '--key', old.publicKey]);
    expect(swapped.code).toBe(12);
    expect(swapped.stdout).toMatch(/^✗ tarball: the tarball has sha256 [0-9a-f]{64}, the manifest says /m);
    const current = newKeyPair();
    const rotated = await run(['verify', ...(await files(a.texts)), '--key', current.publicKey]);
    expect(rotated.code).toBe(12);
    expect(rotated.stdout.split('\n')[0]).toBe(`✗ signature: unknown key: signed by key ${old.keyid}, which is not trusted (trusted: ${current.keyid}, from --key)`);
    expect((await run(['verify', ...(await files(a.texts)), '--key', current.publicKey, '--key', old.publicKey])).code).toBe(0);
  });

  it("takes the keys from deploy.yml's farm.public_key(s), and checks APP VERSION TUPLE when given", async () => {
    const a = signedArtifact();
    await mkdir(join(dir, 'config'));
    await writeFile(join(dir, 'config/deploy.yml'), `service: shop\nservers: [web1]\nfarm:\n  url: http://127.0.0.1:1\n  public_keys:\n    - ${a.key.publicKey}\n`);
    expect((await run(['verify', ...(await files(a.texts))])).code).toBe(0);
    const other = await run(['verify', ...(await files(a.texts)), 'blog', TEST_COMMIT, TEST_TUPLE, '--json']);
    expect(other.code).toBe(12);
    const report = JSON.parse(other.stdout);
    expect(report).toMatchObject({ ok: false, artifact: { app: 'blog', version: TEST_COMMIT, tuple: TEST_TUPLE }, keys: { from: 'deploy.yml farm.public_key', keyids: [a.key.keyid] } });
    expect(report.checks.filter((c: { ok: boolean }) => !c.ok)).toEqual([{ check: 'artifact', ok: false, detail: 'the manifest is of app shop, not blog' }]);
  });

  it('refuses to verify with no trusted key, a missing file, or arguments that are not an artifact, naming what is wrong', async () => {
    const a = signedArtifact();
    await expect(run(['verify', ...(await files(a.texts))])).resolves.toMatchObject({ code: 2, stderr: expect.stringContaining('no trusted key: give --key ed25519:… or set farm.public_key in config/deploy.yml') });
    await expect(run(['verify', '--manifest', join(dir, 'nope.json'), '--key', a.key.publicKey])).resolves.toMatchObject({ code: 4, stderr: expect.stringContaining(`--manifest ${join(dir, 'nope.json')}: no such file`) });
    await expect(run(['verify', 'shop', 'v1', TEST_TUPLE, '--key', a.key.publicKey, '--farm', 'http://127.0.0.1:1'])).resolves.toMatchObject({ code: 2, stderr: expect.stringContaining('VERSION: expected a commit SHA') });
    await expect(run(['verify', '--manifest', 'm.json', '--farm', 'http://x'])).resolves.toMatchObject({ code: 2, stderr: expect.stringContaining('--farm, --mix-env, --release: only when verifying the farm') });
    await expect(run(['verify', ...(await files(a.texts)), '--key', 'ssh-ed25519 AAAA'])).resolves.toMatchObject({ code: 2, stderr: expect.stringContaining('--key: expected an ed25519 public key') });
  });
});

describe("xamal verify APP VERSION TUPLE (the farm's artifact)", () => {
  let server: Server;
  let farm = '';
  let answer: AttestationTexts;
  let farmKeys: string[] = [];
  const seen: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
      const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.url === '/v1/keys') return send(200, { keys: farmKeys.map((publicKey, i) => ({ keyid: keyIdOf(publicKey), publicKey, current: i === 0 })) });
      if (req.url?.startsWith(`/v1/artifacts/shop/`) && req.url.includes('/attestations')) return send(200, { manifestKey: 'artifacts/shop/m/manifest.json', ...answer });
      return send(404, { statusCode: 404, error: 'Not Found', message: `no ${req.url}` });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    farm = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('fetches the attestations with the token and the variant, and verifies them against the pinned key', async () => {
    const a = signedArtifact();
    answer = a.texts;
    vi.stubEnv('XAMAL_FARM_TOKEN', TOKEN);
    seen.length = 0;
    const r = await run(['verify', 'shop', TEST_COMMIT.slice(0, 7), TEST_TUPLE, '--farm', farm, '--key', a.key.publicKey, '--mix-env', 'prod']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(seen).toEqual([`GET /v1/artifacts/shop/${TEST_COMMIT.slice(0, 7)}/${TEST_TUPLE}/attestations?mixEnv=prod Bearer ${TOKEN}`]);
  });

  it("with no key pinned: the farm's keys, one warning with the deploy.yml line, and a key the farm does not serve refused", async () => {
    const a = signedArtifact();
    answer = a.texts;
    farmKeys = [a.key.publicKey];
    vi.stubEnv('XAMAL_FARM_TOKEN', TOKEN);
    const ok = await run(['verify', 'shop', TEST_COMMIT, TEST_TUPLE, '--farm', farm]);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toBe(`warning: deploy.yml pins no farm key, so artifacts are checked against the keys the farm itself serves (GET /v1/keys); pin the farm's key in config/deploy.yml:\nfarm:\n  public_key: ${a.key.publicKey}`);
    const mallory = newKeyPair();
    answer = { ...a.texts, signature: resign(a.texts.manifest, mallory) };
    const refused = await run(['verify', 'shop', TEST_COMMIT, TEST_TUPLE, '--farm', farm]);
    expect(refused.code).toBe(12);
    expect(refused.stdout.split('\n')[0]).toContain(`✗ signature: unknown key: signed by key ${mallory.keyid}`);
  });

  it('an unsigned artifact fails verification even with no key pinned', async () => {
    const a = signedArtifact();
    answer = { ...a.texts, signature: null };
    farmKeys = [a.key.publicKey];
    vi.stubEnv('XAMAL_FARM_TOKEN', TOKEN);
    const r = await run(['verify', 'shop', TEST_COMMIT, TEST_TUPLE, '--farm', farm]);
    expect(r.code).toBe(12);
    expect(r.stdout.split('\n')[0]).toBe('✗ signature: missing: no manifest.dsse.json next to the manifest (built before signing, or removed)');
  });

  it('as a process: exit 12 and the failing check on stdout', async () => {
    const a = signedArtifact({ provenanceCommit: 'bad0000000000000000000000000000000000bad' });
    answer = a.texts;
    const r = await xamalCli(dir, ['verify', 'shop', TEST_COMMIT, TEST_TUPLE, '--farm', farm, '--key', a.key.publicKey], { XAMAL_FARM_TOKEN: TOKEN });
    expect(r.code).toBe(12);
    expect(r.stdout).toContain(`✗ provenance commit: the provenance says commit bad0000000000000000000000000000000000bad, not ${TEST_COMMIT}, the version being deployed`);
  }, 30_000);
});
