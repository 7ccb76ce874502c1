import { describe, expect, it } from 'vitest';
import { MANIFEST_PAYLOAD_TYPE } from '../../../core/contracts/attestation.ts';
import { keyIdOf, newKeyPair, pae, parsePrivateKey, parsePublicKey, signEnvelope, trustedKeys, verifyEnvelope } from '../../../core/signing.ts';

const payload = Buffer.from('{"schema":1}');

describe('DSSE envelopes signed with ed25519', () => {
  it('encodes PAE as the DSSE spec writes it, lengths in bytes', () => {
    expect(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe('DSSEv1 29 http://example.com/HelloWorld 11 hello world');
    expect(pae('t', Buffer.from('é')).toString()).toBe('DSSEv1 1 t 2 é');
  });

  it('verifies an envelope signed by a trusted key and hands back the exact payload', () => {
    const k = newKeyPair();
    const env = signEnvelope(parsePrivateKey(k.privatePem), MANIFEST_PAYLOAD_TYPE, payload);
    expect(env.signatures[0]!.keyid).toBe(k.keyid);
    const check = verifyEnvelope(JSON.parse(JSON.stringify(env)), MANIFEST_PAYLOAD_TYPE, trustedKeys([k.publicKey], 'test'));
    expect(check).toEqual({ ok: true, payload, keyid: k.keyid });
  });

  it('refuses an edited payload, another key, another payload type and a non-envelope, saying which', () => {
    const k = newKeyPair();
    const other = newKeyPair();
    const env = signEnvelope(parsePrivateKey(k.privatePem), MANIFEST_PAYLOAD_TYPE, payload);
    const trusted = trustedKeys([k.publicKey], 'test');
    const edited = { ...env, payload: Buffer.from('{"schema":2}').toString('base64') };
    expect(verifyEnvelope(edited, MANIFEST_PAYLOAD_TYPE, trusted)).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(verifyEnvelope(env, MANIFEST_PAYLOAD_TYPE, trustedKeys([other.publicKey], 'test'))).toMatchObject({ ok: false, reason: 'unknown-key' });
    expect(verifyEnvelope(env, 'application/vnd.in-toto+json', trusted)).toMatchObject({ ok: false, reason: 'wrong-type' });
    expect(verifyEnvelope({ payload: 'x' }, MANIFEST_PAYLOAD_TYPE, trusted)).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('derives one key id from the private key, the public key object and its text', () => {
    const k = newKeyPair();
    expect(keyIdOf(parsePrivateKey(k.privatePem))).toBe(k.keyid);
    expect(keyIdOf(parsePublicKey(k.publicKey))).toBe(k.keyid);
    expect(keyIdOf(k.publicKey)).toMatch(/^[0-9a-f]{16}$/);
    expect(k.publicKey).toMatch(/^ed25519:[A-Za-z0-9+/]{43}=$/);
  });

  it('names the field when a key text is not a key', () => {
    expect(() => parsePublicKey('ssh-ed25519 AAAA', 'deploy.yml farm.public_key')).toThrow(/deploy\.yml farm\.public_key: expected an ed25519 public key/);
    expect(() => parsePrivateKey('nope', 'XAMAL_SIGNING_KEY_FILE')).toThrow(/XAMAL_SIGNING_KEY_FILE: expected a PEM ed25519 private key/);
  });
});
