import { createHash } from 'node:crypto';
import {
  IN_TOTO_PAYLOAD_TYPE,
  IN_TOTO_STATEMENT_TYPE,
  MANIFEST_PAYLOAD_TYPE,
  SLSA_PROVENANCE_TYPE,
  XAMAL_BUILD_TYPE,
  type ProvenanceStatement,
} from '../core/contracts/attestation.ts';
import type { Manifest } from '../core/contracts/manifest.ts';
import { artifactKey, artifactManifestKey, artifactProvenanceKey, artifactSbomKey, parseTargetOrThrow } from '../core/index.ts';
import { newKeyPair, parsePrivateKey, signEnvelope } from '../core/signing.ts';
import type { AttestationTexts } from '../deployer/verify.ts';

/**
 * Signed artifacts as the contract (core/contracts/attestation.ts) says the farm writes them, for
 * tests of the verifier, `xamal verify` and the deploy: manifest.json whose `attestations` pin the
 * provenance envelope and the SBOM by sha256, manifest.dsse.json over its exact bytes, and an
 * in-toto/SLSA v1 provenance envelope whose subject is the tarball and whose source is the commit.
 */

export type KeyPair = ReturnType<typeof newKeyPair>;

export const TEST_TUPLE = 'linux-x86_64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3';
export const TEST_COMMIT = 'c0ffee0000000000000000000000000000000001';

const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const hex32 = (seed: string) => sha256(seed).slice(0, 32);

export interface SignedArtifactOptions {
  /** Signs the manifest and the provenance (a new key when absent). */
  key?: KeyPair;
  app?: string;
  /** The commit the artifact is filed under. */
  version?: string;
  tuple?: string;
  /** The tarball's bytes. */
  tarball?: Buffer;
  /** The commit the provenance names (default: `version`). */
  provenanceCommit?: string;
  /** Changes to the manifest before it is signed. */
  manifest?: Partial<Manifest>;
  /** No SBOM written nor pinned. */
  noSbom?: boolean;
  /** The SBOM's text (a small CycloneDX document when absent). */
  sbom?: string;
}

export interface SignedArtifact {
  key: KeyPair;
  tarball: Buffer;
  manifest: Manifest;
  /** The files as the farm stores them (exactly what GET …/attestations answers). */
  texts: AttestationTexts;
  manifestKey: string;
}

/** An in-toto statement with an SLSA v1 predicate: subject the tarball, source the git commit. */
export function provenanceStatement(m: Pick<Manifest, 'app' | 'mixEnv' | 'release' | 'tuple' | 'image'>, tarballName: string, tarballSha: string, commit: string): ProvenanceStatement {
  return {
    _type: IN_TOTO_STATEMENT_TYPE,
    subject: [{ name: tarballName, digest: { sha256: tarballSha } }],
    predicateType: SLSA_PROVENANCE_TYPE,
    predicate: {
      buildDefinition: {
        buildType: XAMAL_BUILD_TYPE,
        externalParameters: { app: m.app, source: { git: 'https://git.example/acme/shop.git', commit }, target: m.tuple, mixEnv: m.mixEnv, release: m.release },
        resolvedDependencies: [
          { uri: `git+https://git.example/acme/shop.git@${commit}`, digest: { gitCommit: commit, gitTree: sha256(`tree ${commit}`).slice(0, 40) } },
          { uri: `docker://${m.image.ref}`, digest: { sha256: m.image.digest.replace(/^sha256:/, '') } },
        ],
      },
      runDetails: { builder: { id: 'https://xamal.dev/farm/test' }, metadata: { invocationId: 'b'.padEnd(33, '0'), startedOn: '2026-01-01T00:00:00.000Z', finishedOn: '2026-01-01T00:01:00.000Z' } },
    },
  };
}

/** A manifest of a finished build (the fields the worker writes). */
function baseManifest(app: string, version: string, tuple: string, tarball: Buffer): Manifest {
  const ref = { app, version, target: parseTargetOrThrow(tuple) };
  return {
    schema: 1,
    app,
    release: app,
    releaseVersion: '0.1.0',
    version,
    commit: version,
    tuple,
    mixEnv: 'prod',
    tarball: { key: artifactKey(ref), sha256: sha256(tarball), size: tarball.length },
    image: { ref: 'hexpm/elixir:1.18.3-erlang-27.3.4.1-debian-bookworm-20250610-slim', digest: `sha256:${sha256('image')}` },
    cacheKeys: { deps: `deps-${hex32('deps')}`, build: `build-${hex32('build')}` },
    glibcNeeded: '2.34',
    sonames: ['libc.so.6'],
    timings: { compile: 1 },
    logKey: `logs/b${hex32('log')}.log`,
    builtAt: '2026-01-01T00:01:00.000Z',
    jobId: `b${hex32('job')}`,
  };
}

/** A signed artifact: every file as the farm would store it. */
export function signedArtifact(opts: SignedArtifactOptions = {}): SignedArtifact {
  const key = opts.key ?? newKeyPair();
  const app = opts.app ?? 'shop';
  const version = opts.version ?? TEST_COMMIT;
  const tuple = opts.tuple ?? TEST_TUPLE;
  const tarball = opts.tarball ?? Buffer.from(`release tarball of ${app} ${version} ${tuple}`);
  const ref = { app, version, target: parseTargetOrThrow(tuple) };
  const base = baseManifest(app, version, tuple, tarball);
  const statement = provenanceStatement(base, base.tarball.key.split('/').at(-1)!, base.tarball.sha256, opts.provenanceCommit ?? version);
  const priv = parsePrivateKey(key.privatePem);
  const provenance = JSON.stringify(signEnvelope(priv, IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement))));
  const sbom = opts.noSbom ? null : opts.sbom ?? JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [{ type: 'library', name: 'jason', version: '1.4.4' }] });
  const manifest: Manifest = {
    ...base,
    attestations: { provenance: { key: artifactProvenanceKey(ref), sha256: sha256(provenance) }, ...(sbom ? { sbom: { key: artifactSbomKey(ref), sha256: sha256(sbom) } } : {}) },
    ...opts.manifest,
  };
  const manifestText = JSON.stringify(manifest, null, 2);
  const signature = JSON.stringify(signEnvelope(priv, MANIFEST_PAYLOAD_TYPE, Buffer.from(manifestText)));
  return { key, tarball, manifest, manifestKey: artifactManifestKey(ref), texts: { manifest: manifestText, signature, provenance, sbom } };
}

/** The manifest text signed again with `key` (what someone holding another key would do after editing it). */
export function resign(manifestText: string, key: KeyPair): string {
  return JSON.stringify(signEnvelope(parsePrivateKey(key.privatePem), MANIFEST_PAYLOAD_TYPE, Buffer.from(manifestText)));
}
