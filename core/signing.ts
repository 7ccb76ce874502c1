import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { DsseEnvelopeSchema, PublicKeyTextSchema, type DsseEnvelope } from './contracts/attestation.ts';
import { XamalError } from './errors/index.ts';

/**
 * ed25519 signing and DSSE envelopes with node's crypto (no library: DSSE's PAE is one line of the
 * spec, and node's ed25519 is the maintained implementation). Keys: private as PKCS#8 PEM (the file
 * `xamal farm keys new` writes), public as `ed25519:<base64 raw>` (PublicKeyTextSchema).
 */

/** DSSE's pre-authentication encoding: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body (lengths in bytes, decimal). */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new XamalError('validation', 'expected an ed25519 key');
  return Buffer.from(jwk.x, 'base64url');
}

/** A public key in its text form, `ed25519:<base64>`. */
export function publicKeyText(key: KeyObject): string {
  return `ed25519:${rawPublicKey(key.type === 'private' ? createPublicKey(key) : key).toString('base64')}`;
}

/** The key id of a public key: the first 16 hex digits of sha256(raw key). */
export function keyIdOf(key: KeyObject | string): string {
  const raw = typeof key === 'string' ? rawFromText(key, 'public key') : rawPublicKey(key.type === 'private' ? createPublicKey(key) : key);
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

function rawFromText(text: string, field: string): Buffer {
  const parsed = PublicKeyTextSchema.safeParse(text.trim());
  if (!parsed.success) throw new XamalError('validation', `${field}: ${parsed.error.issues[0]?.message ?? 'expected an ed25519 public key'}`);
  return Buffer.from(parsed.data.slice('ed25519:'.length), 'base64');
}

/** Parses `ed25519:<base64>`; `field` names where it came from in the error (e.g. "deploy.yml farm.public_key"). */
export function parsePublicKey(text: string, field = 'public key'): KeyObject {
  const raw = rawFromText(text, field);
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

/** Parses a PKCS#8 PEM ed25519 private key; `field` names where it came from. */
export function parsePrivateKey(pem: string, field = 'private key'): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new XamalError('validation', `${field}: expected a PEM ed25519 private key (from \`xamal farm keys new\`)`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new XamalError('validation', `${field}: expected an ed25519 key, got ${key.asymmetricKeyType ?? 'another kind'}`);
  return key;
}

/** A new key pair: the private key as PKCS#8 PEM, the public key as text, and its id. */
export function newKeyPair(): { privatePem: string; publicKey: string; keyid: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), publicKey: publicKeyText(privateKey), keyid: keyIdOf(privateKey) };
}

/** A DSSE envelope over `payload`, signed with `privateKey`. */
export function signEnvelope(privateKey: KeyObject, payloadType: string, payload: Buffer): DsseEnvelope {
  const sig = sign(null, pae(payloadType, payload), privateKey);
  return { payloadType, payload: payload.toString('base64'), signatures: [{ keyid: keyIdOf(privateKey), sig: sig.toString('base64') }] };
}

export type EnvelopeCheck =
  | { ok: true; payload: Buffer; keyid: string }
  | { ok: false; reason: 'malformed' | 'wrong-type' | 'unknown-key' | 'bad-signature'; message: string };

/**
 * Checks an envelope (parsed JSON, untrusted) against trusted public keys by id: ok when one
 * signature by a trusted key verifies over PAE(payloadType, payload) and the type is `payloadType`.
 */
export function verifyEnvelope(envelope: unknown, payloadType: string, trusted: ReadonlyMap<string, KeyObject>): EnvelopeCheck {
  const parsed = DsseEnvelopeSchema.safeParse(envelope);
  if (!parsed.success) return { ok: false, reason: 'malformed', message: `not a DSSE envelope: ${parsed.error.issues[0]?.path.join('.') || '(root)'}: ${parsed.error.issues[0]?.message}` };
  const env = parsed.data;
  if (env.payloadType !== payloadType) return { ok: false, reason: 'wrong-type', message: `payload type ${JSON.stringify(env.payloadType)}, expected ${JSON.stringify(payloadType)}` };
  const payload = Buffer.from(env.payload, 'base64');
  const known = env.signatures.filter((s) => trusted.has(s.keyid));
  if (known.length === 0) return { ok: false, reason: 'unknown-key', message: `signed by key ${env.signatures.map((s) => s.keyid).join(', ')}, which is not trusted` };
  for (const s of known) {
    if (verify(null, pae(payloadType, payload), trusted.get(s.keyid)!, Buffer.from(s.sig, 'base64'))) return { ok: true, payload, keyid: s.keyid };
  }
  return { ok: false, reason: 'bad-signature', message: `the signature by key ${known.map((s) => s.keyid).join(', ')} does not verify` };
}

/** Trusted keys by id, from their text forms; `field` names where they came from in errors. */
export function trustedKeys(texts: readonly string[], field: string): Map<string, KeyObject> {
  return new Map(texts.map((t) => [keyIdOf(t), parsePublicKey(t, field)] as const));
}
