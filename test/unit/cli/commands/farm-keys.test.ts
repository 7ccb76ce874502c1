import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Io } from '../../../../cli/io.ts';
import { main } from '../../../../cli/main.ts';
import { loadSigningKeyFile } from '../../../../core/signing-key-file.ts';

async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => void out.push(t), err: (t) => void err.push(t), interrupted: () => new Promise<string>(() => {}) };
  const code = await main(argv, io, { debug: false });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('xamal farm keys new', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-keys-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('writes a 0600 private key to --out and prints its public key, key id and the deploy.yml lines that pin it', async () => {
    const out = join(dir, 'signing.pem');
    const r = await run(['farm', 'keys', 'new', '--out', out]);
    expect(r.code).toBe(0);
    const key = loadSigningKeyFile(out);
    expect(((await stat(out)).mode & 0o777).toString(8)).toBe('600');
    expect(r.stdout).toBe([
      `private key: ${out} (mode 0600; set XAMAL_SIGNING_KEY_FILE=${out} on every worker)`,
      `public key: ${key.publicKey}`,
      `key id: ${key.keyid}`,
      'config/deploy.yml:',
      'farm:',
      `  public_key: ${key.publicKey}`,
    ].join('\n'));
  });

  it('refuses to overwrite an existing file, which stays as it was', async () => {
    const out = join(dir, 'signing.pem');
    await writeFile(out, 'the old key');
    const r = await run(['farm', 'keys', 'new', '--out', out]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/already exists; a signing key is never overwritten/);
    expect(await readFile(out, 'utf8')).toBe('the old key');
  });

  it('answers a usage error without `new`', async () => {
    const r = await run(['farm', 'keys', 'make']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/expected `new`/);
    expect(r.stderr).toMatch(/xamal farm keys new \[--out FILE\]/);
  });
});
