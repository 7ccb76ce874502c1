import { artifactManifestKey, XamalError, type Target } from '../../core/index.ts';
import { ManifestSchema, type Manifest } from '../../core/build/manifest.ts';
import { findArtifacts } from '../../core/build/index.ts';
import type { ObjectStore } from '../../core/storage/store.ts';

export interface ArtifactId {
  app: string;
  version: string;
  target: Target;
}

/** Reads artifacts from the store. An artifact exists only once its manifest does. */
export function artifactService(store: ObjectStore) {
  const manifest = async (id: ArtifactId): Promise<Manifest> => {
    const raw = await store.get(artifactManifestKey(id));
    if (!raw) throw new XamalError('not_found', `no artifact for ${id.app} ${id.version} on that target`);
    return ManifestSchema.parse(JSON.parse(raw.toString('utf8')));
  };
  return {
    manifest,
    find: (app: string, version: string, filter: Parameters<typeof findArtifacts>[3]) => findArtifacts(store, app, version, filter),
    async tarball(id: ArtifactId): Promise<{ manifest: Manifest; body: Buffer }> {
      const m = await manifest(id);
      const body = await store.get(m.tarball.key);
      if (!body) throw new XamalError('unavailable', `artifact ${m.tarball.key} is listed but its tarball is missing from the store`);
      return { manifest: m, body };
    },
  };
}
export type ArtifactService = ReturnType<typeof artifactService>;
