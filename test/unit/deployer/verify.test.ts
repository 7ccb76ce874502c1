import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { IN_TOTO_PAYLOAD_TYPE } from '../../../core/contracts/attestation.ts';
import { newKeyPair, parsePrivateKey, signEnvelope, trustedKeys } from '../../../core/signing.ts';
import { firstFailure, verifyArtifact, type AttestationTexts, type VerifyInput } from '../../../deployer/verify.ts';
import { provenanceStatement, resign, signedArtifact, TEST_COMMIT, TEST_TUPLE } from '../../../testkit/attestations.ts';

const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const claim = { app: 'shop', version: TEST_COMMIT, tuple: TEST_TUPLE };

function input(texts: AttestationTexts, keys: string[], over: Partial<VerifyInput> = {}): VerifyInput {
  return { texts, trusted: trustedKeys(keys, 'test'), keysFrom: 'deploy.yml farm.public_key', artifact: claim, ...over };
}

const failedChecks = (v: ReturnType<typeof verifyArtifact>) => v.checks.filter((c) => !c.ok).map((c) => `${c.check}: ${c.detail}`);

describe('verifying an artifact', () => {
  it('passes a signed artifact, listing every check, and hands back the signed manifest', () => {
    const a = signedArtifact();
    const v = verifyArtifact(input(a.texts, [a.key.publicKey], { tarballSha256: sha256(a.tarball) }));
    expect(failedChecks(v)).toEqual([]);
    expect(v.ok).toBe(true);
    expect(v.checks.map((c) => c.check)).toEqual(['signature', 'signed manifest', 'artifact', 'provenance', 'provenance signature', 'provenance statement', 'provenance subject', 'provenance commit', 'sbom', 'tarball']);
    expect(v.checks[0]!.detail).toBe(`signed by trusted key ${a.key.keyid} (deploy.yml farm.public_key)`);
    expect(v.checks.find((c) => c.check === 'provenance commit')!.detail).toBe(`built from commit ${TEST_COMMIT}`);
    expect(v.manifest?.tarball.sha256).toBe(sha256(a.tarball));
    expect(v.keyid).toBe(a.key.keyid);
  });

  it('refuses manifest.json with one byte edited: it differs from what was signed', () => {
    const a = signedArtifact();
    const edited = a.texts.manifest.replace('"size": ', '"size": 1');
    const v = verifyArtifact(input({ ...a.texts, manifest: edited }, [a.key.publicKey]));
    expect(v.ok).toBe(false);
    expect(v.manifest).toBeUndefined();
    expect(failedChecks(v)).toEqual(['signed manifest: manifest.json differs from what was signed']);
  });

  it('takes the same manifest written with other whitespace (parsed JSON is compared)', () => {
    const a = signedArtifact();
    const v = verifyArtifact(input({ ...a.texts, manifest: JSON.stringify(JSON.parse(a.texts.manifest)) }, [a.key.publicKey]));
    expect(v.ok).toBe(true);
  });

  describe('a tarball swapped together with a re-hashed manifest', () => {
    const a = signedArtifact();
    const evil = Buffer.from('a tarball with a backdoor');
    const rehashed = JSON.stringify({ ...a.manifest, tarball: { ...a.manifest.tarball, sha256: sha256(evil), size: evil.length } }, null, 2);

    it('with the old signature kept: the manifest differs from what was signed, and the local tarball from the signed sha256', () => {
      const v = verifyArtifact(input({ ...a.texts, manifest: rehashed }, [a.key.publicKey], { tarballSha256: sha256(evil) }));
      expect(v.ok).toBe(false);
      expect(failedChecks(v)).toContain('signed manifest: manifest.json differs from what was signed');
      expect(failedChecks(v)).toContain(`tarball: the tarball has sha256 ${sha256(evil)}, the manifest says ${sha256(a.tarball)}`);
    });

    it('signed again with a key of its own: unknown key, naming the trusted ones', () => {
      const mallory = newKeyPair();
      const v = verifyArtifact(input({ ...a.texts, manifest: rehashed, signature: resign(rehashed, mallory) }, [a.key.publicKey]));
      expect(v.signatureFailure).toBe('unknown-key');
      expect(firstFailure(v)).toBe(`signature: unknown key: signed by key ${mallory.keyid}, which is not trusted (trusted: ${a.key.keyid}, from deploy.yml farm.public_key)`);
    });

    it("the new manifest put in the envelope under the farm's signature: bad signature", () => {
      const env = JSON.parse(a.texts.signature!);
      const forged = JSON.stringify({ ...env, payload: Buffer.from(rehashed).toString('base64') });
      const v = verifyArtifact(input({ ...a.texts, manifest: rehashed, signature: forged }, [a.key.publicKey]));
      expect(v.signatureFailure).toBe('bad-signature');
      expect(firstFailure(v)).toMatch(new RegExp(`^signature: bad signature: the signature by key ${a.key.keyid} does not verify`));
      expect(v.manifest).toBeUndefined();
    });
  });

  it('refuses an artifact signed by a rotated-out key unless that key is listed too', () => {
    const old = newKeyPair();
    const current = newKeyPair();
    const a = signedArtifact({ key: old });
    const refused = verifyArtifact(input(a.texts, [current.publicKey]));
    expect(refused.signatureFailure).toBe('unknown-key');
    expect(refused.ok).toBe(false);
    expect(verifyArtifact(input(a.texts, [current.publicKey, old.publicKey])).ok).toBe(true);
  });

  it('says the signature is missing apart from a bad one, and checks nothing against an unsigned manifest', () => {
    const a = signedArtifact();
    const v = verifyArtifact(input({ ...a.texts, signature: null }, [a.key.publicKey]));
    expect(v.signatureFailure).toBe('missing');
    expect(firstFailure(v)).toBe('signature: missing: no manifest.dsse.json next to the manifest (built before signing, or removed)');
    expect(failedChecks(v)).toContain('signed manifest: no signed manifest to compare manifest.json with');
  });

  it('refuses a signature file that is not an envelope of a manifest', () => {
    const a = signedArtifact();
    expect(verifyArtifact(input({ ...a.texts, signature: 'not json' }, [a.key.publicKey])).signatureFailure).toBe('malformed');
    const asProvenance = JSON.stringify(signEnvelope(parsePrivateKey(a.key.privatePem), IN_TOTO_PAYLOAD_TYPE, Buffer.from(a.texts.manifest)));
    expect(verifyArtifact(input({ ...a.texts, signature: asProvenance }, [a.key.publicKey])).signatureFailure).toBe('wrong-type');
  });

  it('refuses provenance whose commit is not the version being deployed, naming both', () => {
    const a = signedArtifact({ provenanceCommit: 'bad0000000000000000000000000000000000bad' });
    const v = verifyArtifact(input(a.texts, [a.key.publicKey]));
    expect(failedChecks(v)).toEqual([`provenance commit: the provenance says commit bad0000000000000000000000000000000000bad, not ${TEST_COMMIT}, the version being deployed`]);
  });

  it('takes an uploaded archive with no known commit as its source when the version is its sha256 prefix, and nothing else in its place', () => {
    const archiveSha = '9'.repeat(64);
    const a = signedArtifact({ version: archiveSha.slice(0, 40), manifest: { commit: undefined } });
    const st = provenanceStatement(a.manifest, 'x.tar.gz', a.manifest.tarball.sha256, 'unused');
    const sourceAs = (deps: NonNullable<typeof st.predicate.buildDefinition.resolvedDependencies>) => {
      const s2 = { ...st, predicate: { ...st.predicate, buildDefinition: { ...st.predicate.buildDefinition, resolvedDependencies: deps } } };
      const provenance = JSON.stringify(signEnvelope(parsePrivateKey(a.key.privatePem), IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(s2))));
      const manifest = JSON.stringify({ ...a.manifest, attestations: { provenance: { ...a.manifest.attestations!.provenance!, sha256: sha256(provenance) } } });
      return verifyArtifact(input({ manifest, provenance, sbom: null, signature: resign(manifest, a.key) }, [a.key.publicKey], { artifact: { ...claim, version: archiveSha.slice(0, 40) } }));
    };
    expect(failedChecks(sourceAs([{ name: 'source', uri: `sources/${archiveSha}.tar.gz`, digest: { sha256: archiveSha } }]))).toEqual([]);
    expect(failedChecks(sourceAs([{ name: 'mix.lock', digest: { sha256: archiveSha } }]))).toEqual(['provenance commit: the provenance names no source commit (no resolvedDependencies entry with digest.gitCommit)']);
  });

  it('refuses provenance edited after signing (its sha256 is pinned), missing, or not pinned at all', () => {
    const a = signedArtifact();
    // Even an envelope whose signature still verifies: the manifest pins these exact bytes.
    const edited = JSON.stringify(JSON.parse(a.texts.provenance!), null, 1);
    expect(failedChecks(verifyArtifact(input({ ...a.texts, provenance: edited }, [a.key.publicKey])))).toEqual([`provenance: provenance.dsse.json has sha256 ${sha256(edited)}, the manifest pins ${a.manifest.attestations!.provenance!.sha256}`]);
    expect(firstFailure(verifyArtifact(input({ ...a.texts, provenance: null }, [a.key.publicKey])))).toMatch(/^provenance: missing: no provenance\.dsse\.json/);
    const unpinned = signedArtifact({ key: a.key, noSbom: true, manifest: { attestations: {} } });
    expect(failedChecks(verifyArtifact(input(unpinned.texts, [a.key.publicKey])))).toEqual(['provenance: the manifest pins no provenance (attestations.provenance)']);
  });

  it('refuses provenance about another tarball, or signed by a key not trusted', () => {
    const a = signedArtifact();
    const other = newKeyPair();
    const st = provenanceStatement(a.manifest, 'x.tar.gz', 'e'.repeat(64), TEST_COMMIT);
    const provenance = JSON.stringify(signEnvelope(parsePrivateKey(other.privatePem), IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(st))));
    const manifest = JSON.stringify({ ...a.manifest, attestations: { ...a.manifest.attestations, provenance: { ...a.manifest.attestations!.provenance!, sha256: sha256(provenance) } } });
    const texts = { ...a.texts, manifest, provenance, signature: resign(manifest, a.key) };
    const v = verifyArtifact(input(texts, [a.key.publicKey]));
    expect(failedChecks(v)).toEqual([
      `provenance signature: signed by key ${other.keyid}, which is not trusted`,
      `provenance subject: the provenance is about sha256 ${'e'.repeat(64)}, not the manifest's tarball ${a.manifest.tarball.sha256}`,
    ]);
  });

  it('refuses a provenance payload that is not an SLSA v1 statement, naming the field', () => {
    const a = signedArtifact();
    const provenance = JSON.stringify(signEnvelope(parsePrivateKey(a.key.privatePem), IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [], predicateType: 'x', predicate: {} }))));
    const manifest = JSON.stringify({ ...a.manifest, attestations: { provenance: { ...a.manifest.attestations!.provenance!, sha256: sha256(provenance) } } });
    const v = verifyArtifact(input({ ...a.texts, manifest, provenance, sbom: null, signature: resign(manifest, a.key) }, [a.key.publicKey]));
    expect(failedChecks(v)).toEqual([expect.stringMatching(/^provenance statement: not an in-toto SLSA v1 provenance statement: subject: /)]);
  });

  it('checks the SBOM against the sha256 the manifest pins: edited, missing, or given with no pin', () => {
    const a = signedArtifact();
    expect(failedChecks(verifyArtifact(input({ ...a.texts, sbom: `${a.texts.sbom} ` }, [a.key.publicKey])))).toEqual([expect.stringMatching(/^sbom: sbom\.cdx\.json has sha256 [0-9a-f]{64}, the manifest pins /)]);
    expect(failedChecks(verifyArtifact(input({ ...a.texts, sbom: null }, [a.key.publicKey])))).toEqual([expect.stringMatching(/^sbom: missing: no sbom\.cdx\.json/)]);
    const none = signedArtifact({ noSbom: true });
    expect(verifyArtifact(input(none.texts, [none.key.publicKey])).checks.some((c) => c.check === 'sbom')).toBe(false);
    expect(failedChecks(verifyArtifact(input({ ...none.texts, sbom: '{}' }, [none.key.publicKey])))).toEqual(['sbom: an SBOM was given, but the manifest pins none (attestations.sbom) to check it against']);
  });

  it('refuses a signed manifest of another app, version or tuple (a genuine artifact served for the wrong request)', () => {
    const a = signedArtifact();
    const v = verifyArtifact(input(a.texts, [a.key.publicKey], { artifact: { app: 'blog', version: 'deadbeef00', tuple: 'linux-aarch64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3', mixEnv: 'staging' } }));
    expect(failedChecks(v)).toContain(
      `artifact: the manifest is of app shop, not blog; version ${TEST_COMMIT} (release 0.1.0), not deadbeef00; tuple ${TEST_TUPLE}, not linux-aarch64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3; MIX_ENV prod, not staging`,
    );
  });

  it('takes the version as the artifact routes do: a commit prefix, the mix.exs version or latest; the provenance then matches the signed commit', () => {
    const a = signedArtifact();
    for (const version of [TEST_COMMIT.slice(0, 7), '0.1.0', 'latest']) expect(verifyArtifact(input(a.texts, [a.key.publicKey], { artifact: { ...claim, version } })).ok, version).toBe(true);
    expect(verifyArtifact(input(a.texts, [a.key.publicKey], { artifact: { ...claim, version: '0.2.0' } })).ok).toBe(false);
  });
});
