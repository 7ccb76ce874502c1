import type { KeyObject } from 'node:crypto';
import { isXamalError, XamalError } from '../core/index.ts';
import { trustedKeys } from '../core/signing.ts';
import type { FarmClient } from './farm-client.ts';
import { firstFailure, verifyArtifact, type ArtifactClaim, type Verification, type VerifyCheck } from './verify.ts';

/**
 * Which keys a deploy trusts, and what it does with an artifact's verification (issue 23): keys
 * pinned in deploy.yml (`farm.public_key`, `farm.public_keys`) are the only ones trusted; with none
 * pinned, the keys the farm serves (`GET /v1/keys`) are used, with one warning suggesting the line
 * to pin. An unsigned artifact is refused when a key is pinned, let through with a warning when not;
 * any other failure stops the deploy.
 */

export interface Trust {
  trusted: Map<string, KeyObject>;
  /** Where the keys came from, for reasons. */
  keysFrom: string;
  /** deploy.yml pins the keys (else they are the farm's own). */
  pinned: boolean;
}

/** The deploy.yml line that pins `key`. */
export const pinLine = (key: string) => `farm:\n  public_key: ${key}`;

/** The trusted keys: deploy.yml's when it pins any, else the farm's (one warning, with the line to pin its current key). */
export async function trustFor(publicKeys: readonly string[], client: Pick<FarmClient, 'keys'>, warn: (line: string) => void): Promise<Trust> {
  if (publicKeys.length) return { trusted: trustedKeys(publicKeys, 'deploy.yml farm.public_keys'), keysFrom: `deploy.yml farm.public_key${publicKeys.length > 1 ? 's' : ''}`, pinned: true };
  const keys = await client.keys().catch((err: unknown) => {
    if (isXamalError(err) && err.code === 'not_found') return [];
    throw err;
  });
  const current = keys.find((k) => k.current) ?? keys[0];
  warn(
    current
      ? `warning: deploy.yml pins no farm key, so artifacts are checked against the keys the farm itself serves (GET /v1/keys); pin the farm's key in config/deploy.yml:\n${pinLine(current.publicKey)}`
      : 'warning: deploy.yml pins no farm key and the farm serves none (GET /v1/keys): artifacts cannot be verified; pin the farm\'s key (xamal farm keys new prints it) as farm.public_key',
  );
  return { trusted: trustedKeys(keys.map((k) => k.publicKey), "the farm's GET /v1/keys"), keysFrom: "the farm's GET /v1/keys", pinned: false };
}

/** What a deploy takes from a verified artifact: the sha256 every host checks its download against. */
export interface VerifiedArtifact {
  tuple: string;
  /** From the signed manifest; undefined when the artifact went unverified (no key pinned, and it is unsigned): the farm's answer then stands, as before signing. */
  sha256: string | undefined;
  keyid?: string | undefined;
  checks: VerifyCheck[];
}

/** The error a failed verification stops a deploy with: the artifact and the first reason, every check in details. */
export function verificationError(tuple: string, v: Pick<Verification, 'checks'>): XamalError {
  return new XamalError('verification_failed', `artifact ${tuple}: ${firstFailure(v as Verification) ?? 'failed verification'}`, { details: { tuple, checks: v.checks } });
}

/**
 * Fetches an artifact's attestations and verifies them under the deploy's policy; resolves with the
 * sha256 from the signed manifest, or throws `verification_failed` naming the tuple and the reason.
 */
export async function verifyFromFarm(client: Pick<FarmClient, 'attestations'>, claim: ArtifactClaim, trust: Trust, warn: (line: string) => void): Promise<VerifiedArtifact> {
  const texts = await client.attestations(claim.app, claim.version, claim.tuple, { mixEnv: claim.mixEnv, release: claim.release }).catch((err: unknown) => {
    if (!isXamalError(err) || err.code !== 'not_found') throw err;
    return undefined;
  });
  if (!texts) {
    const check = { check: 'signature' as const, ok: false, detail: 'missing: the farm serves no attestations for it (GET …/attestations answered 404)' };
    if (trust.pinned) throw verificationError(claim.tuple, { checks: [check] });
    warn(`warning: artifact ${claim.tuple} is not verified: ${check.detail}`);
    return { tuple: claim.tuple, sha256: undefined, checks: [check] };
  }
  const v = verifyArtifact({ texts, trusted: trust.trusted, keysFrom: trust.keysFrom, artifact: claim });
  if (v.ok) return { tuple: claim.tuple, sha256: v.manifest!.tarball.sha256, keyid: v.keyid, checks: v.checks };
  if (v.signatureFailure === 'missing' && !trust.pinned) {
    warn(`warning: artifact ${claim.tuple} is unsigned (no manifest.dsse.json): deployed unverified because deploy.yml pins no farm key; with farm.public_key set it is refused`);
    return { tuple: claim.tuple, sha256: undefined, checks: v.checks };
  }
  throw verificationError(claim.tuple, v);
}

/**
 * A deploy's verifier: the keys decided once (one warning when none is pinned), each tuple's
 * artifact verified once however many hosts need it, and a line said for each (warnings go to
 * `warn`, which --quiet does not silence).
 */
export function artifactVerifier(
  client: Pick<FarmClient, 'keys' | 'attestations'>,
  publicKeys: readonly string[],
  base: Omit<ArtifactClaim, 'tuple'>,
  say: (line: string) => void,
  warn: (line: string) => void = say,
): (tuple: string) => Promise<VerifiedArtifact> {
  let trust: Promise<Trust> | undefined;
  const done = new Map<string, Promise<VerifiedArtifact>>();
  return (tuple) => {
    let v = done.get(tuple);
    if (!v) {
      trust ??= trustFor(publicKeys, client, warn);
      v = trust.then(async (t) => {
        const r = await verifyFromFarm(client, { ...base, tuple }, t, warn);
        if (r.keyid) say(`verified ${tuple}: signed by key ${r.keyid} (${t.keysFrom}), ${r.checks.find((c) => c.check === 'provenance commit')?.detail ?? 'provenance checked'}`);
        return r;
      });
      done.set(tuple, v);
    }
    return v;
  };
}
