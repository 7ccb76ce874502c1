import { formatTarget, type Target } from './target/index.ts';

export interface ArtifactRef {
  app: string;
  version: string;
  target: Target;
}

/**
 * Where an artifact lives in the store. Inputs are validated names (see names.ts) and a parsed
 * tuple, so every segment is free of `/`, `..` and spaces.
 */
export function artifactPrefix(ref: ArtifactRef): string {
  return `artifacts/${ref.app}/${ref.version}/${formatTarget(ref.target)}`;
}

export function artifactKey(ref: ArtifactRef): string {
  return `${artifactPrefix(ref)}/${ref.app}-${ref.version}-${formatTarget(ref.target)}.tar.gz`;
}

export function artifactSha256Key(ref: ArtifactRef): string {
  return `${artifactKey(ref)}.sha256`;
}

/** Written last: its presence means the tarball and checksum are complete. */
export function artifactManifestKey(ref: ArtifactRef): string {
  return `${artifactPrefix(ref)}/manifest.json`;
}
