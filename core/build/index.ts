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

/**
 * Parsed manifests by key, for readers that look the same artifacts up again and again (resolve).
 * A manifest is written once, last, and never rewritten, so its key names its content; callers
 * still list the store on every lookup, and an entry whose key is no longer listed is dropped.
 */
export interface ManifestCache {
  get(key: string): Manifest | undefined;
  set(key: string, manifest: Manifest): void;
  /** Forgets entries under `prefix` that are not in `listed`. */
  retain(prefix: string, listed: ReadonlySet<string>): void;
}

export function manifestCache(max = 10_000): ManifestCache {
  const entries = new Map<string, Manifest>();
  return {
    get: (key) => entries.get(key),
    set(key, manifest) {
      if (entries.size >= max) entries.delete(entries.keys().next().value!);
      entries.set(key, manifest);
    },
    retain(prefix, listed) {
      for (const key of entries.keys()) if (key.startsWith(prefix) && !listed.has(key)) entries.delete(key);
    },
  };
}

export async function findArtifacts(
  store: ObjectStore,
  app: string,
  version: string,
  filter: { tuple?: string; selector?: TargetSelector } = {},
  cache?: ManifestCache,
): Promise<IndexedArtifact[]> {
  const prefix = `artifacts/${app}/`;
  const listed = await store.list(prefix);
  cache?.retain(prefix, new Set(listed));
  const keys = listed.flatMap((key) => {
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
  const read = async (key: string) => {
    const hit = cache?.get(key);
    if (hit) return hit;
    const manifest = ManifestSchema.parse(JSON.parse((await store.get(key))!.toString('utf8')));
    cache?.set(key, manifest);
    return manifest;
  };

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
