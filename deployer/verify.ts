import { createHash, type KeyObject } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { DsseEnvelopeSchema, IN_TOTO_PAYLOAD_TYPE, MANIFEST_PAYLOAD_TYPE, ProvenanceStatementSchema, type ProvenanceStatement } from '../core/contracts/attestation.ts';
import { ManifestSchema, type Manifest } from '../core/contracts/manifest.ts';
import { LATEST_VERSION } from '../core/index.ts';
import { verifyEnvelope } from '../core/signing.ts';

/**
 * Verifying an artifact before anything runs it (issue 23), pure: the stored files as their exact
 * text (api/schemas/artifacts.ts ArtifactAttestationsSchema, or local files), the trusted public keys,
 * and what is being deployed in; the list of checks out, each passed or failed with its reason. The
 * manifest's signature is the root: it covers the tarball's sha256 and pins the provenance envelope
 * and the SBOM by their sha256 (core/contracts/attestation.ts).
 */

/** The files next to an artifact's manifest, as their exact text; null when absent. */
export interface AttestationTexts {
  manifest: string;
  /** manifest.dsse.json */
  signature: string | null;
  /** provenance.dsse.json */
  provenance: string | null;
  /** sbom.cdx.json */
  sbom: string | null;
}

/** What is being deployed (or verified): the manifest must name it. */
export interface ArtifactClaim {
  app: string;
  /** A full commit, a prefix of ≥ 7, a mix.exs version or `latest` (as the artifact routes take it). */
  version: string;
  tuple: string;
  mixEnv?: string | undefined;
  release?: string | undefined;
}

export interface VerifyInput {
  texts: AttestationTexts;
  /** Trusted keys by key id (core/signing.ts trustedKeys). */
  trusted: ReadonlyMap<string, KeyObject>;
  /** Where the trusted keys came from, for the reasons (`deploy.yml farm.public_key`, `the farm's GET /v1/keys`). */
  keysFrom: string;
  artifact: ArtifactClaim;
  /** The sha256 of a local tarball (computed by the caller), checked against the signed manifest. */
  tarballSha256?: string | undefined;
}

export type CheckName =
  | 'signature'
  | 'signed manifest'
  | 'artifact'
  | 'provenance'
  | 'provenance signature'
  | 'provenance statement'
  | 'provenance subject'
  | 'provenance commit'
  | 'sbom'
  | 'tarball';

/** Why the manifest's signature failed: absent, by a key not trusted, not verifying, or not an envelope of a manifest. */
export type SignatureFailure = 'missing' | 'unknown-key' | 'bad-signature' | 'malformed' | 'wrong-type';

export interface VerifyCheck {
  check: CheckName;
  ok: boolean;
  /** What was found (passed) or why it failed. */
  detail: string;
}

export interface Verification {
  ok: boolean;
  checks: VerifyCheck[];
  /** How the manifest's signature failed (undefined when it verified). */
  signatureFailure?: SignatureFailure | undefined;
  /** The signed manifest, when every check passed: the one source of the sha256 the hosts check. */
  manifest?: Manifest | undefined;
  /** The key that signed the manifest. */
  keyid?: string | undefined;
}

export const sha256Hex = (text: string | Buffer): string => createHash('sha256').update(text).digest('hex');

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** An envelope's payload bytes when the text is a DSSE envelope (signature not checked). */
function envelopePayload(text: string): Buffer | undefined {
  const json = parseJson(text);
  const env = json.ok ? DsseEnvelopeSchema.safeParse(json.value) : undefined;
  return env?.success ? Buffer.from(env.data.payload, 'base64') : undefined;
}

const pass = (check: CheckName, detail: string): VerifyCheck => ({ check, ok: true, detail });
const fail = (check: CheckName, detail: string): VerifyCheck => ({ check, ok: false, detail });

/** The manifest's signature by a trusted key. */
function checkSignature(input: VerifyInput): { check: VerifyCheck; failure?: SignatureFailure; keyid?: string } {
  const text = input.texts.signature;
  if (text === null) return { check: fail('signature', 'missing: no manifest.dsse.json next to the manifest (built before signing, or removed)'), failure: 'missing' };
  const json = parseJson(text);
  if (!json.ok) return { check: fail('signature', 'malformed: manifest.dsse.json is not JSON'), failure: 'malformed' };
  const r = verifyEnvelope(json.value, MANIFEST_PAYLOAD_TYPE, input.trusted);
  if (r.ok) return { check: pass('signature', `signed by trusted key ${r.keyid} (${input.keysFrom})`), keyid: r.keyid };
  const trusted = [...input.trusted.keys()];
  const hint = r.reason === 'unknown-key' ? ` (trusted: ${trusted.length ? trusted.join(', ') : 'none'}, from ${input.keysFrom})` : '';
  return { check: fail('signature', `${r.reason.replace('-', ' ')}: ${r.message}${hint}`), failure: r.reason };
}

/** The signed payload and the stored manifest.json, compared as parsed JSON. */
function checkSignedManifest(texts: AttestationTexts): { check: VerifyCheck; signed?: unknown } {
  const payload = texts.signature === null ? undefined : envelopePayload(texts.signature);
  if (!payload) return { check: fail('signed manifest', 'no signed manifest to compare manifest.json with') };
  const signed = parseJson(payload.toString('utf8'));
  const stored = parseJson(texts.manifest);
  if (!stored.ok) return { check: fail('signed manifest', 'manifest.json is not JSON') };
  if (!signed.ok) return { check: fail('signed manifest', 'the signed payload is not JSON') };
  if (!isDeepStrictEqual(signed.value, stored.value)) return { check: fail('signed manifest', 'manifest.json differs from what was signed'), signed: signed.value };
  return { check: pass('signed manifest', 'manifest.json is what was signed'), signed: signed.value };
}

/** Whether the manifest is of the version asked for: a commit (or a prefix of one), a mix.exs version, or latest. */
function versionMatches(m: Manifest, version: string): boolean {
  if (version === LATEST_VERSION) return true;
  if (/^[0-9a-f]{7,40}$/.test(version)) return m.version.startsWith(version) || (m.commit ?? '').startsWith(version);
  return m.releaseVersion === version;
}

function checkNames(m: Manifest, a: ArtifactClaim): VerifyCheck {
  const wrong = [
    m.app !== a.app && `app ${m.app}, not ${a.app}`,
    !versionMatches(m, a.version) && `version ${m.version} (release ${m.releaseVersion}), not ${a.version}`,
    m.tuple !== a.tuple && `tuple ${m.tuple}, not ${a.tuple}`,
    a.mixEnv !== undefined && m.mixEnv !== a.mixEnv && `MIX_ENV ${m.mixEnv}, not ${a.mixEnv}`,
    a.release !== undefined && m.release !== a.release && `release ${m.release}, not ${a.release}`,
  ].filter((w): w is string => typeof w === 'string');
  if (wrong.length) return fail('artifact', `the manifest is of ${wrong.join('; ')}`);
  return pass('artifact', `${m.app} ${m.version} ${m.tuple} (MIX_ENV ${m.mixEnv}, release ${m.release} ${m.releaseVersion})`);
}

/** The source commits a provenance statement names: its resolved dependencies' `gitCommit` digests. */
export function provenanceCommits(statement: ProvenanceStatement): string[] {
  const deps = statement.predicate.buildDefinition.resolvedDependencies ?? [];
  return [...new Set(deps.flatMap((d) => (d.digest?.gitCommit ? [d.digest.gitCommit] : [])))];
}

/**
 * The provenance's source is the version deployed: its commit (gitCommit) is the commit asked for
 * (a full commit), else the signed manifest's; an archive built without a known commit is filed
 * under its sha256's first 40 digits, which its resolved dependency's sha256 must start with.
 */
function checkCommit(statement: ProvenanceStatement, m: Manifest, a: ArtifactClaim): VerifyCheck {
  const expected = /^[0-9a-f]{40}$/.test(a.version) ? a.version : (m.commit ?? m.version);
  const commits = provenanceCommits(statement);
  if (commits.length === 0) {
    // The source is the dependency named `source` (as the farm writes it), else any unnamed one.
    const deps = (statement.predicate.buildDefinition.resolvedDependencies ?? []).filter((d) => d.name === undefined || d.name === 'source');
    const archive = m.commit === undefined && /^[0-9a-f]{40}$/.test(m.version) && deps.some((d) => d.digest?.sha256?.startsWith(m.version));
    if (archive) return pass('provenance commit', `built from the source archive filed as ${m.version}`);
    return fail('provenance commit', 'the provenance names no source commit (no resolvedDependencies entry with digest.gitCommit)');
  }
  if (commits.length === 1 && commits[0] === expected) return pass('provenance commit', `built from commit ${expected}`);
  return fail('provenance commit', `the provenance says commit ${commits.join(', ')}, not ${expected}, the version being deployed`);
}

/** The provenance envelope: pinned by the manifest, signed by a trusted key, a valid statement about this tarball and commit. */
function checkProvenance(input: VerifyInput, m: Manifest): VerifyCheck[] {
  const pin = m.attestations?.provenance;
  const text = input.texts.provenance;
  if (!pin) return [fail('provenance', 'the manifest pins no provenance (attestations.provenance)')];
  if (text === null) return [fail('provenance', `missing: no provenance.dsse.json (the manifest pins sha256 ${pin.sha256})`)];
  const sha = sha256Hex(text);
  const out = [sha === pin.sha256 ? pass('provenance', `provenance.dsse.json has the sha256 the manifest pins (${sha})`) : fail('provenance', `provenance.dsse.json has sha256 ${sha}, the manifest pins ${pin.sha256}`)];
  const json = parseJson(text);
  const sig = json.ok ? verifyEnvelope(json.value, IN_TOTO_PAYLOAD_TYPE, input.trusted) : { ok: false as const, message: 'provenance.dsse.json is not JSON' };
  out.push(sig.ok ? pass('provenance signature', `signed by trusted key ${sig.keyid}`) : fail('provenance signature', sig.message));
  const payload = envelopePayload(text);
  if (!payload) return out;
  const body = parseJson(payload.toString('utf8'));
  const st = body.ok ? ProvenanceStatementSchema.safeParse(body.value) : undefined;
  if (!st?.success) {
    const issue = st?.error.issues[0];
    out.push(fail('provenance statement', issue ? `not an in-toto SLSA v1 provenance statement: ${issue.path.join('.') || '(root)'}: ${issue.message}` : 'the payload is not JSON'));
    return out;
  }
  out.push(pass('provenance statement', 'an in-toto statement with an SLSA v1 provenance predicate'));
  const subject = st.data.subject.find((s) => s.digest.sha256 === m.tarball.sha256);
  out.push(subject ? pass('provenance subject', `${subject.name} (sha256 ${m.tarball.sha256}, the manifest's tarball)`) : fail('provenance subject', `the provenance is about sha256 ${st.data.subject.map((s) => s.digest.sha256).join(', ')}, not the manifest's tarball ${m.tarball.sha256}`));
  out.push(checkCommit(st.data, m, input.artifact));
  return out;
}

function checkSbom(input: VerifyInput, m: Manifest): VerifyCheck[] {
  const pin = m.attestations?.sbom;
  const text = input.texts.sbom;
  if (!pin) return text === null ? [] : [fail('sbom', 'an SBOM was given, but the manifest pins none (attestations.sbom) to check it against')];
  if (text === null) return [fail('sbom', `missing: no sbom.cdx.json (the manifest pins sha256 ${pin.sha256})`)];
  const sha = sha256Hex(text);
  return [sha === pin.sha256 ? pass('sbom', `sbom.cdx.json has the sha256 the manifest pins (${sha})`) : fail('sbom', `sbom.cdx.json has sha256 ${sha}, the manifest pins ${pin.sha256}`)];
}

/**
 * Every check of an artifact. The checks after the signature read the signed manifest when the
 * signature verified, else manifest.json as stored (for the reasons only: the result fails anyway).
 */
export function verifyArtifact(input: VerifyInput): Verification {
  const sig = checkSignature(input);
  const same = checkSignedManifest(input.texts);
  const checks = [sig.check, same.check];
  const stored = parseJson(input.texts.manifest);
  const parsed = ManifestSchema.safeParse(sig.keyid !== undefined ? same.signed : stored.ok ? stored.value : undefined);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    checks.push(fail('artifact', `the manifest does not fit the manifest schema: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`));
  } else {
    const m = parsed.data;
    checks.push(checkNames(m, input.artifact), ...checkProvenance(input, m), ...checkSbom(input, m));
    if (input.tarballSha256 !== undefined) {
      checks.push(input.tarballSha256 === m.tarball.sha256 ? pass('tarball', `sha256 ${m.tarball.sha256}, as the manifest says`) : fail('tarball', `the tarball has sha256 ${input.tarballSha256}, the manifest says ${m.tarball.sha256}`));
    }
  }
  const ok = checks.every((c) => c.ok);
  return { ok, checks, signatureFailure: sig.failure, keyid: sig.keyid, manifest: ok && parsed.success ? parsed.data : undefined };
}

/** The first failed check as one line (`signature: unknown key: …`), for an error naming the reason. */
export function firstFailure(v: Verification): string | undefined {
  const c = v.checks.find((x) => !x.ok);
  return c && `${c.check}: ${c.detail}`;
}
