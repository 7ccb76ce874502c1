import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builderConfig } from '../../../builder/config.ts';
import { farmConfig } from '../../../api/config.ts';
import { keyIdOf, newKeyPair, parsePrivateKey } from '../../../core/signing.ts';
import { keptSigningKey, loadSigningKeyFile, missingSigningKey, parseRetiredKeys, writeNewSigningKey } from '../../../core/signing-key-file.ts';

describe('the farm\'s signing key file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-keyfile-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('a new key is a 0600 PKCS#8 PEM ed25519 key whose public text and id are what it prints', async () => {
    const path = join(dir, 'keys', 'signing.pem');
    const made = await writeNewSigningKey(path);
    expect(((await stat(path)).mode & 0o777).toString(8)).toBe('600');
    const pem = await readFile(path, 'utf8');
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const loaded = loadSigningKeyFile(path);
    expect(loaded.publicKey).toBe(made.publicKey);
    expect(loaded.keyid).toBe(made.keyid);
    expect(made.keyid).toBe(keyIdOf(made.publicKey));
    expect(made.publicKey).toMatch(/^ed25519:[A-Za-z0-9+/]{43}=$/);
  });

  it('never overwrites an existing file', async () => {
    const path = join(dir, 'signing.pem');
    await writeFile(path, 'precious');
    await expect(writeNewSigningKey(path)).rejects.toThrow(/already exists; a signing key is never overwritten/);
    expect(await readFile(path, 'utf8')).toBe('precious');
  });

  it('refuses, naming XAMAL_SIGNING_KEY_FILE: a file readable by group or others, a missing file, a directory, a key of another kind, text that is no key', async () => {
    const good = join(dir, 'good.pem');
    await writeNewSigningKey(good);
    await chmod(good, 0o640);
    expect(() => loadSigningKeyFile(good)).toThrow(/^XAMAL_SIGNING_KEY_FILE: .*good\.pem is readable by group or others \(mode 640\); chmod 600 it$/);
    expect(() => loadSigningKeyFile(join(dir, 'none.pem'))).toThrow(/^XAMAL_SIGNING_KEY_FILE: cannot read .*none\.pem \(ENOENT\); make one with `xamal farm keys new --out FILE`/);
    await mkdir(join(dir, 'adir'), { mode: 0o700 });
    expect(() => loadSigningKeyFile(join(dir, 'adir'))).toThrow(/^XAMAL_SIGNING_KEY_FILE: .*adir is not a file/);
    const rsa = join(dir, 'rsa.pem');
    await writeFile(rsa, generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    expect(() => loadSigningKeyFile(rsa)).toThrow(/^XAMAL_SIGNING_KEY_FILE \(.*rsa\.pem\): expected an ed25519 key, got rsa$/);
    const junk = join(dir, 'junk.pem');
    await writeFile(junk, 'not a key', { mode: 0o600 });
    expect(() => loadSigningKeyFile(junk)).toThrow(/^XAMAL_SIGNING_KEY_FILE \(.*junk\.pem\): expected a PEM ed25519 private key/);
  });

  it('is read by the worker\'s settings at start-up, so a bad file stops the start naming the setting', async () => {
    const path = join(dir, 'k.pem');
    const made = await writeNewSigningKey(path);
    expect(builderConfig({ XAMAL_SIGNING_KEY_FILE: path }).signingKey?.keyid).toBe(made.keyid);
    expect(builderConfig({}).signingKey).toBeUndefined();
    await chmod(path, 0o644);
    expect(() => builderConfig({ XAMAL_SIGNING_KEY_FILE: path })).toThrow(/XAMAL_SIGNING_KEY_FILE: .* is readable by group or others/);
  });

  it('a worker without a key is told the setting and the command that makes one', () => {
    expect(missingSigningKey().message).toMatch(/^XAMAL_SIGNING_KEY_FILE is not set: a build worker signs every artifact it builds; make one with `xamal farm keys new --out FILE`/);
  });

  it('a farm on embedded defaults makes its key once and keeps it (0600)', async () => {
    const path = join(dir, 'state', 'farm', 'signing-key.pem');
    const first = await keptSigningKey(path, 'the farm\'s signing key');
    const again = await keptSigningKey(path, 'the farm\'s signing key');
    expect(first.created).toBe(true);
    expect(again.created).toBe(false);
    expect(again.key.keyid).toBe(first.key.keyid);
    expect(((await stat(path)).mode & 0o777).toString(8)).toBe('600');
  });
});

describe('XAMAL_SIGNING_KEYS_RETIRED', () => {
  it('takes comma-separated ed25519 public keys (spaces and empty entries ignored)', () => {
    const a = newKeyPair().publicKey;
    const b = newKeyPair().publicKey;
    expect(parseRetiredKeys(` ${a}, ,${b} `)).toEqual([a, b]);
    expect(parseRetiredKeys(undefined)).toEqual([]);
    expect(farmConfig({ XAMAL_SIGNING_KEYS_RETIRED: a }).retiredKeys).toEqual([a]);
  });

  it('refuses an entry that is not an ed25519 public key, naming the setting and its position', () => {
    const a = newKeyPair().publicKey;
    expect(() => parseRetiredKeys(`${a},ed25519:short`)).toThrow(/^XAMAL_SIGNING_KEYS_RETIRED: entry 2 \("ed25519:short"\): expected an ed25519 public key/);
    expect(() => farmConfig({ XAMAL_SIGNING_KEYS_RETIRED: parsePrivateKey(newKeyPair().privatePem).export({ format: 'pem', type: 'pkcs8' }).toString() })).toThrow(/XAMAL_SIGNING_KEYS_RETIRED: entry 1/);
  });
});
