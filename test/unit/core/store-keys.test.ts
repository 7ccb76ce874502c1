import { describe, expect, it } from 'vitest';
import { artifactFileName, artifactKey, artifactManifestKey, artifactProvenanceKey, artifactSbomKey, artifactSignatureKey, artifactVariant, parseManifestKey, parseTargetOrThrow } from '../../../core/index.ts';

const TUPLE = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
const C = 'c'.repeat(40);
const ref = (over: { mixEnv?: string; release?: string } = {}) => ({ app: 'shop', version: C, target: parseTargetOrThrow(TUPLE), ...over });

describe('artifact keys: one per app, commit, tuple, MIX_ENV and release', () => {
  it('keeps the prod build of the app\'s own release where artifacts always were', () => {
    expect(artifactManifestKey(ref())).toBe(`artifacts/shop/${C}/${TUPLE}/manifest.json`);
    expect(artifactManifestKey(ref({ mixEnv: 'prod', release: 'shop' }))).toBe(`artifacts/shop/${C}/${TUPLE}/manifest.json`);
    expect(artifactKey(ref())).toBe(`artifacts/shop/${C}/${TUPLE}/shop-${C}-${TUPLE}.tar.gz`);
  });

  it('files any other MIX_ENV or release under it, with a file name that says which', () => {
    expect(artifactManifestKey(ref({ mixEnv: 'staging' }))).toBe(`artifacts/shop/${C}/${TUPLE}/staging/shop/manifest.json`);
    expect(artifactManifestKey(ref({ release: 'admin' }))).toBe(`artifacts/shop/${C}/${TUPLE}/prod/admin/manifest.json`);
    expect(artifactFileName(ref({ mixEnv: 'staging' }))).toBe(`shop-${C}-${TUPLE}-staging-shop.tar.gz`);
  });

  it('parses both kinds of manifest key back, defaults filled in, and nothing else', () => {
    expect(parseManifestKey(artifactManifestKey(ref()))).toEqual({ app: 'shop', version: C, tuple: TUPLE, mixEnv: 'prod', release: 'shop' });
    expect(parseManifestKey(artifactManifestKey(ref({ mixEnv: 'staging', release: 'admin' })))).toEqual({ app: 'shop', version: C, tuple: TUPLE, mixEnv: 'staging', release: 'admin' });
    expect(parseManifestKey(`artifacts/shop/${C}/${TUPLE}/staging/manifest.json`)).toBeUndefined();
    expect(parseManifestKey(`artifacts/shop/${C}/${TUPLE}/shop.tar.gz`)).toBeUndefined();
    expect(artifactVariant({ app: 'shop' })).toEqual({ mixEnv: 'prod', release: 'shop', isDefault: true });
  });
});

describe('attestation keys sit next to the manifest of each variant', () => {
  it('names the signature, provenance and SBOM files beside manifest.json', () => {
    expect(artifactSignatureKey(ref())).toBe(`artifacts/shop/${C}/${TUPLE}/manifest.dsse.json`);
    expect(artifactProvenanceKey(ref({ mixEnv: 'staging' }))).toBe(`artifacts/shop/${C}/${TUPLE}/staging/shop/provenance.dsse.json`);
    expect(artifactSbomKey(ref())).toBe(`artifacts/shop/${C}/${TUPLE}/sbom.cdx.json`);
    expect(parseManifestKey(artifactSignatureKey(ref()))).toBeUndefined();
  });
});
