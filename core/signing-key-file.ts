import { constants, readFileSync, statSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { PublicKeyTextSchema } from './contracts/attestation.ts';
import { XamalError } from './errors/index.ts';
import { keyIdOf, newKeyPair, parsePrivateKey, publicKeyText } from './signing.ts';

/**
 * The farm's signing key on disk (issue 23): a PKCS#8 PEM ed25519 private key, readable by its owner
 * only, never in the object store. `xamal farm keys new` writes one; workers read it at start
 * (XAMAL_SIGNING_KEY_FILE); a farm on embedded defaults keeps one in its state directory.
 */

/** The setting that names the current private key. */
export const SIGNING_KEY_SETTING = 'XAMAL_SIGNING_KEY_FILE';
/** The setting that lists rotated-out public keys the API still publishes. */
export const RETIRED_KEYS_SETTING = 'XAMAL_SIGNING_KEYS_RETIRED';

/** A loaded private key with its public text and id. */
export interface SigningKey {
  privateKey: KeyObject;
  /** `ed25519:<base64>` (what deploy.yml's `farm.public_key` pins). */
  publicKey: string;
  keyid: string;
}

export function signingKeyOf(privateKey: KeyObject): SigningKey {
  return { privateKey, publicKey: publicKeyText(privateKey), keyid: keyIdOf(privateKey) };
}

/** The one line that tells where a key comes from. */
const howToMake = `make one with \`xamal farm keys new --out FILE\` and set ${SIGNING_KEY_SETTING}=FILE`;

/**
 * Reads the private key `file` names at start-up: a regular file readable by its owner only, holding an
 * ed25519 key. Anything else is a configuration error naming `setting`.
 */
export function loadSigningKeyFile(file: string, setting = SIGNING_KEY_SETTING): SigningKey {
  let mode: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new XamalError('validation', `${setting}: ${file} is not a file (${howToMake})`);
    mode = st.mode;
  } catch (err) {
    if (err instanceof XamalError) throw err;
    throw new XamalError('validation', `${setting}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}); ${howToMake}`);
  }
  if ((mode & 0o077) !== 0) throw new XamalError('validation', `${setting}: ${file} is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new XamalError('validation', `${setting}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return signingKeyOf(parsePrivateKey(pem, `${setting} (${file})`));
}

/** A worker needs a key: the error when none is configured. */
export function missingSigningKey(): XamalError {
  return new XamalError('validation', `${SIGNING_KEY_SETTING} is not set: a build worker signs every artifact it builds; ${howToMake} (the API publishes its public key at GET /v1/keys)`);
}

/** Writes a new key pair's private key to `path` (mode 0600); refuses a path that exists. */
export async function writeNewSigningKey(path: string): Promise<{ publicKey: string; keyid: string }> {
  const pair = newKeyPair();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let fh;
  try {
    fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new XamalError('conflict', `${path} already exists; a signing key is never overwritten (choose another --out, or remove the old key once no artifact needs it)`);
    throw new XamalError('validation', `cannot create ${path} (${code ?? String(err)})`);
  }
  try {
    await fh.writeFile(pair.privatePem);
  } finally {
    await fh.close();
  }
  return { publicKey: pair.publicKey, keyid: pair.keyid };
}

/**
 * The key kept at `path` (a farm on embedded defaults, the test kit's farms): read when there, else
 * made there first (0600).
 */
export async function keptSigningKey(path: string, setting: string): Promise<{ key: SigningKey; created: boolean }> {
  let created = false;
  try {
    await writeNewSigningKey(path);
    created = true;
  } catch (err) {
    if (!(err instanceof XamalError) || err.code !== 'conflict') throw err;
  }
  return { key: loadSigningKeyFile(path, setting), created };
}

/** `XAMAL_SIGNING_KEYS_RETIRED`: comma-separated `ed25519:…` public keys, each checked (the error names the setting and the entry). */
export function parseRetiredKeys(text: string | undefined, setting = RETIRED_KEYS_SETTING): string[] {
  const entries = (text ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  return entries.map((entry, i) => {
    const r = PublicKeyTextSchema.safeParse(entry);
    if (!r.success) throw new XamalError('validation', `${setting}: entry ${i + 1} (${JSON.stringify(entry.slice(0, 60))}): ${r.error.issues[0]?.message}`);
    return r.data;
  });
}

/** The deploy.yml lines that pin a public key. */
export function deployYmlKeyLines(publicKey: string): string {
  return `farm:\n  public_key: ${publicKey}`;
}
