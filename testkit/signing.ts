import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { artifactSigner, type ArtifactSigner } from '../builder/provenance.ts';
import { XAMAL_VERSION } from '../cli/version.ts';
import { newKeyPair, parsePrivateKey } from '../core/signing.ts';
import { loadSigningKeyFile, signingKeyOf, type SigningKey } from '../core/signing-key-file.ts';
import { servicesConfig } from '../localservices/index.ts';

/**
 * The test kit's farm signing key: one key kept in the machine's service cache (0600), shared by every
 * test farm and direct build of every run, so artifacts the suite keeps across runs (the lab's deploy
 * store) stay signed by the key tests pin.
 */
export const testSigningKeyPath = (): string => join(servicesConfig().cacheDir, 'test-signing', 'signing-key.pem');

let kept: SigningKey | undefined;

/** The test kit's key, made on first use (atomically: a link of a complete file, so parallel runs agree on one). */
export function testSigningKey(): SigningKey {
  if (kept) return kept;
  const path = testSigningKeyPath();
  try {
    kept = loadSigningKeyFile(path, 'the test kit signing key');
    return kept;
  } catch {
    // Not there yet (or unreadable: made again below only when missing).
  }
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(6).toString('hex')}`;
  writeFileSync(tmp, newKeyPair().privatePem, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
  kept = loadSigningKeyFile(path, 'the test kit signing key');
  return kept;
}

/** What a test build worker signs with: the test kit's key, this xamal's version, `worker` naming it in provenance. */
export function testSigner(worker = 'test-worker'): ArtifactSigner {
  return artifactSigner(testSigningKey(), XAMAL_VERSION, worker);
}

/** A signer with a key of its own, in memory only (unit tests). */
export function memorySigner(worker = 'unit-worker'): ArtifactSigner {
  return artifactSigner(signingKeyOf(parsePrivateKey(newKeyPair().privatePem)), XAMAL_VERSION, worker);
}
