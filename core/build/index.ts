import { XamalError } from '../errors/index.ts';
import { matchesSelector, type TargetSelector } from '../target/selector.ts';
import { parseTarget } from '../target/tuple.ts';
import type { ObjectStore } from '../storage/store.ts';
import { ManifestSchema, type Manifest } from './manifest.ts';
import { artifactManifestKey } from '../artifact-key.ts';
import { sourceVersion, type BuildJob } from './job.ts';

/** The stored artifact of exactly this job (same app, source, target, MIX_ENV and release), if complete. */
export async function storedArtifact(store: ObjectStore, job: BuildJob): Promise<IndexedArtifact | undefined> {
  const key = artifactManifestKey({ app: job.app, version: sourceVersion(job.source), target: job.target });
  const raw = await store.get(key);
  if (!raw) return undefined;
  const manifest = ManifestSchema.parse(JSON.parse(raw.toString('utf8')));
  return manifest.mixEnv === job.mixEnv && manifest.release === (job.release ?? job.app) ? { key, manifest } : undefined;
}

/**
 * The artifact index, read straight from the store: an artifact is (app, version, tuple) and exists
 * once `artifacts/<app>/<version>/<tuple>/manifest.json` does. A version query is a commit SHA (full,
 * or a unique prefix of at least 7 hex characters, as `xamal deploy` uses) or a mix.exs release
 * version (then the newest build of it per tuple).
 */
export interface IndexedArtifact {
  key: string;
  manifest: Manifest;
}

const MANIFEST_KEY = /^artifacts\/([a-z][a-z0-9_]*)\/([^/]+)\/([^/]+)\/manifest\.json$/;

export async function findArtifacts(
  store: ObjectStore,
  app: string,
  version: string,
  filter: { tuple?: string; selector?: TargetSelector } = {},
): Promise<IndexedArtifact[]> {
  const keys = (await store.list(`artifacts/${app}/`)).flatMap((key) => {
    const m = MANIFEST_KEY.exec(key);
    return m && m[1] === app ? [{ key, version: m[2]!, tuple: m[3]! }] : [];
  });
  const wanted = (tuple: string) => {
    if (filter.tuple && tuple !== filter.tuple) return false;
    if (filter.selector) {
      const t = parseTarget(tuple);
      return t.ok && matchesSelector(t.value, filter.selector);
    }
    return true;
  };
  const read = async (key: string) => ManifestSchema.parse(JSON.parse((await store.get(key))!.toString('utf8')));

  if (/^[0-9a-f]{7,40}$/.test(version)) {
    const versions = [...new Set(keys.filter((k) => k.version.startsWith(version)).map((k) => k.version))];
    if (versions.length > 1) {
      throw new XamalError('conflict', `version ${version} is ambiguous for ${app}: matches ${versions.map((v) => v.slice(0, 12)).join(', ')}; give more characters`);
    }
    if (versions.length === 1) {
      const hits = keys.filter((k) => k.version === versions[0] && wanted(k.tuple));
      return Promise.all(hits.map(async (k) => ({ key: k.key, manifest: await read(k.key) })));
    }
  }
  if (/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?(?:\+[0-9A-Za-z.]+)?$/.test(version)) {
    const all = await Promise.all(keys.filter((k) => wanted(k.tuple)).map(async (k) => ({ key: k.key, manifest: await read(k.key) })));
    const newest = new Map<string, IndexedArtifact>();
    for (const a of all.filter((x) => x.manifest.releaseVersion === version)) {
      const cur = newest.get(a.manifest.tuple);
      if (!cur || a.manifest.builtAt > cur.manifest.builtAt) newest.set(a.manifest.tuple, a);
    }
    return [...newest.values()];
  }
  return [];
}
