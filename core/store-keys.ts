import { XamalError } from './errors/index.ts';
import { formatTarget, type Target } from './tuple/index.ts';

/**
 * Every key the farm writes to its object store, built and parsed in this one module:
 *
 *   artifacts/<app>/<version>/<tuple>/<app>-<version>-<tuple>.tar.gz   the release tarball (MIX_ENV prod, release <app>)
 *   artifacts/<app>/<version>/<tuple>/…tar.gz.sha256                    its checksum line
 *   artifacts/<app>/<version>/<tuple>/sbom.cdx.json                     the release's CycloneDX SBOM
 *   artifacts/<app>/<version>/<tuple>/provenance.dsse.json              its signed SLSA provenance (DSSE envelope)
 *   artifacts/<app>/<version>/<tuple>/manifest.dsse.json                the manifest's signature (DSSE envelope), written before it
 *   artifacts/<app>/<version>/<tuple>/manifest.json                     written last: the artifact and every file beside it exist
 *   artifacts/<app>/<version>/<tuple>/<mix env>/<release>/…             the same files for any other MIX_ENV or release
 *   sources/<sha256>.tar.gz                                             an uploaded source archive
 *   logs/<job id>.log                                                   a build's log
 *   build-sets/<id>.json                                                what one POST /v1/builds asked for
 *   health/probe                                                        never written: readiness probes ask for it
 *
 * Inputs are validated names (names.ts), a parsed tuple or hex digests, so every segment is free
 * of `/`, `..` and spaces.
 */
export interface ArtifactRef {
  app: string;
  version: string;
  target: Target;
  /** MIX_ENV (default prod) and release name (default the app's): the default pair adds nothing to the key. */
  mixEnv?: string;
  release?: string;
}

/** The MIX_ENV artifacts are built with unless a build asks for another. */
export const DEFAULT_MIX_ENV = 'prod';

/** The MIX_ENV and release an artifact reference means, defaults filled in. */
export function artifactVariant(ref: Pick<ArtifactRef, 'app' | 'mixEnv' | 'release'>): { mixEnv: string; release: string; isDefault: boolean } {
  const mixEnv = ref.mixEnv ?? DEFAULT_MIX_ENV;
  const release = ref.release ?? ref.app;
  return { mixEnv, release, isDefault: mixEnv === DEFAULT_MIX_ENV && release === ref.app };
}

/**
 * Store keys are relative, slash-separated, made of safe characters, with no empty, `.` or `..`
 * segment — so the local-disk store can never leave its root and S3 keys are predictable.
 */
export function checkKey(key: string): string {
  const segments = key.split('/');
  if (
    key.length === 0 ||
    key.length > 1024 ||
    !/^[A-Za-z0-9._~+@=-]+(?:\/[A-Za-z0-9._~+@=-]+)*\/?$/.test(key) ||
    segments.some((seg) => seg === '.' || seg === '..')
  ) {
    throw new XamalError('validation', `invalid store key ${JSON.stringify(key)}`);
  }
  return key;
}

/** The folder of every build of `app` (with `version`: of that version, or of commits starting with it when `exact` is false). */
export function artifactsPrefix(app: string, version?: string, exact = true): string {
  return version === undefined ? `artifacts/${app}/` : `artifacts/${app}/${version}${exact ? '/' : ''}`;
}

/** Where an artifact lives in the store. */
export function artifactPrefix(ref: ArtifactRef): string {
  const v = artifactVariant(ref);
  return `artifacts/${ref.app}/${ref.version}/${formatTarget(ref.target)}${v.isDefault ? '' : `/${v.mixEnv}/${v.release}`}`;
}

export function artifactFileName(ref: ArtifactRef): string {
  const v = artifactVariant(ref);
  return `${ref.app}-${ref.version}-${formatTarget(ref.target)}${v.isDefault ? '' : `-${v.mixEnv}-${v.release}`}.tar.gz`;
}

export function artifactKey(ref: ArtifactRef): string {
  return `${artifactPrefix(ref)}/${artifactFileName(ref)}`;
}

export function artifactSha256Key(ref: ArtifactRef): string {
  return `${artifactKey(ref)}.sha256`;
}

/** Written last: its presence means the tarball, checksum, provenance, SBOM and signature are complete. */
export function artifactManifestKey(ref: ArtifactRef): string {
  return `${artifactPrefix(ref)}/manifest.json`;
}

/** The DSSE envelope signing manifest.json (core/contracts/attestation.ts), written just before it. */
export function artifactSignatureKey(ref: ArtifactRef): string {
  return `${artifactPrefix(ref)}/manifest.dsse.json`;
}

/** The DSSE envelope of the artifact's SLSA provenance. */
export function artifactProvenanceKey(ref: ArtifactRef): string {
  return `${artifactPrefix(ref)}/provenance.dsse.json`;
}

/** The artifact's CycloneDX SBOM. */
export function artifactSbomKey(ref: ArtifactRef): string {
  return `${artifactPrefix(ref)}/sbom.cdx.json`;
}

/** The keys of the files beside the manifest at `manifestKey`: its signature, the provenance and the SBOM. */
export function artifactFilesBeside(manifestKey: string): { signature: string; provenance: string; sbom: string } {
  if (!manifestKey.endsWith('/manifest.json')) throw new XamalError('validation', `not a manifest key: ${JSON.stringify(manifestKey)}`);
  const dir = manifestKey.slice(0, -'/manifest.json'.length);
  return { signature: `${dir}/manifest.dsse.json`, provenance: `${dir}/provenance.dsse.json`, sbom: `${dir}/sbom.cdx.json` };
}

const MANIFEST_KEY = /^artifacts\/([a-z][a-z0-9_]*)\/([^/]+)\/([^/]+)\/(?:([a-z][a-z0-9_]*)\/([a-z][a-z0-9_]*)\/)?manifest\.json$/;

/** The app, version, tuple, MIX_ENV and release a manifest key names, or undefined for any other key. */
export function parseManifestKey(key: string): { app: string; version: string; tuple: string; mixEnv: string; release: string } | undefined {
  const m = MANIFEST_KEY.exec(key);
  return m ? { app: m[1]!, version: m[2]!, tuple: m[3]!, mixEnv: m[4] ?? DEFAULT_MIX_ENV, release: m[5] ?? m[1]! } : undefined;
}

/** The pattern of a source archive's key (its sha256 names it). */
export const SOURCE_KEY = /^sources\/[0-9a-f]{64}\.tar\.gz$/;

export function sourceKey(sha256: string): string {
  return `sources/${sha256}.tar.gz`;
}

export function buildLogKey(jobId: string): string {
  return `logs/${jobId}.log`;
}

export function buildSetKey(id: string): string {
  return `build-sets/${id}.json`;
}

/** The key readiness checks ask the store for (any answer proves the store is reachable). */
export const PROBE_KEY = 'health/probe';
