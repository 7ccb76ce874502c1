import { createHash } from 'node:crypto';
import { artifactKey, artifactManifestKey, parseTargetOrThrow } from '../../core/index.ts';
import type { Manifest } from '../../core/contracts/manifest.ts';
import type { ObjectStore } from '../../store/store.ts';

/** Stores a tarball and then its manifest, as a finished build does (MIX_ENV and release from `extra`, default prod and the app); returns the manifest. */
export async function putArtifact(store: ObjectStore, a: { app: string; version: string; tuple: string; body: Buffer }, extra: Partial<Manifest> = {}): Promise<Manifest> {
  const mixEnv = extra.mixEnv ?? 'prod';
  const release = extra.release ?? a.app;
  const ref = { app: a.app, version: a.version, target: parseTargetOrThrow(a.tuple), mixEnv, release };
  const manifest: Manifest = {
    schema: 1, app: a.app, release, releaseVersion: '0.1.0', version: a.version, commit: a.version, tuple: a.tuple, mixEnv,
    tarball: { key: artifactKey(ref), sha256: createHash('sha256').update(a.body).digest('hex'), size: a.body.length },
    image: { ref: 'r:t', digest: `sha256:${'b'.repeat(64)}` }, cacheKeys: { deps: 'd', build: 'b' },
    sonames: [], timings: {}, logKey: 'logs/x.log', builtAt: new Date().toISOString(), jobId: 'bx',
    ...extra,
  };
  await store.put(artifactKey(ref), a.body);
  await store.put(artifactManifestKey(ref), JSON.stringify(manifest));
  return manifest;
}
