import { XamalError } from '../core/errors/index.ts';
import { matchesSelector, type TargetSelector } from '../core/tuple/selector.ts';
import { parseTarget } from '../core/tuple/tuple.ts';
import { LATEST_VERSION, RELEASE_VERSION_RE } from '../core/tuple/version.ts';
import type { ObjectStore } from './store.ts';
import { ManifestSchema, type Manifest } from '../core/contracts/manifest.ts';
import { artifactManifestKey, artifactsPrefix, artifactVariant, parseManifestKey } from '../core/store-keys.ts';
import { sourceVersion, type BuildJob } from '../core/contracts/build-job.ts';

/**
 * The stored artifact of exactly this job (same app, source, target, MIX_ENV and release), if
 * complete. Each MIX_ENV and release has a key of its own (core/store-keys.ts); a manifest there of
 * another one (written by hand, or a store damaged) is refused (`conflict`), never replaced.
 */
export async function storedArtifact(store: ObjectStore, job: BuildJob): Promise<IndexedArtifact | undefined> {
  const release = job.release ?? job.app;
  const key = artifactManifestKey({ app: job.app, version: sourceVersion(job.source), target: job.target, mixEnv: job.mixEnv, release });
  const raw = await store.get(key);
  if (!raw) return undefined;
  const manifest = ManifestSchema.parse(JSON.parse(raw.toString('utf8')));
  if (manifest.mixEnv === job.mixEnv && manifest.release === release) return { key, manifest };
  throw new XamalError('conflict', `${key} holds a build with MIX_ENV=${manifest.mixEnv} and release ${manifest.release}, not MIX_ENV=${job.mixEnv} and release ${release} as its key says: refusing to replace it`);
}
/**
 * The artifact index, read from the store: an artifact is (app, version, tuple, MIX_ENV, release)
 * and exists once its manifest does (core/store-keys.ts). Lookups answer one MIX_ENV and release:
 * prod and the app's own name unless the filter names others. A version query is a commit SHA (full,
 * or a unique prefix of at least 7 hex characters, as `xamal deploy` uses), a mix.exs release
 * version (then the newest build of it per tuple), or `latest` (the app's newest build per tuple).
 */
export interface IndexedArtifact {
  key: string;
  manifest: Manifest;
}

const SHA_QUERY = /^[0-9a-f]{7,40}$/;

/**
 * Tells readers whether the store's artifacts changed: a value every writer moves after it stores a
 * manifest (the farm's: a Redis counter the workers bump, shared by every API process). `undefined`
 * = cannot tell right now (Redis away): the index then reads the store itself.
 */
export interface IndexFreshness {
  generation(): Promise<string | undefined>;
}

export interface ArtifactIndexOptions {
  /** Without it every lookup lists the store. */
  freshness?: IndexFreshness;
  /** A listing is re-read after this long even if the generation stands still (objects removed by hand). Default 30 s. */
  maxAgeMs?: number;
  /** Listings and manifests kept (default 10,000 each). */
  max?: number;
  now?: () => number;
}

export interface ArtifactIndex {
  find(app: string, version: string, filter?: ArtifactFilter): Promise<IndexedArtifact[]>;
  /** The manifest at exactly this key, or undefined. */
  manifest(app: string, version: string, key: string): Promise<Manifest | undefined>;
}

/** Drops the oldest entry once a Map holds `max`. */
function bounded<V>(map: Map<string, V>, max: number, key: string, value: V): void {
  if (map.size >= max && !map.has(key)) map.delete(map.keys().next().value!);
  map.set(key, value);
}

/** Which artifacts of a version a lookup wants: a tuple or a selector, and a MIX_ENV and release (default prod and the app's name). */
export type ArtifactFilter = { tuple?: string; selector?: TargetSelector; mixEnv?: string; release?: string };

/** The artifacts of `app` among `listed` keys that answer a version query (see ArtifactIndex), manifests read through `read`. */
async function selectArtifacts(app: string, version: string, filter: ArtifactFilter, listed: string[], read: (key: string) => Promise<Manifest | undefined>): Promise<IndexedArtifact[]> {
  const variant = artifactVariant({ app, ...filter });
  const keys = listed.flatMap((key) => {
    const k = parseManifestKey(key);
    return k && k.app === app && k.mixEnv === variant.mixEnv && k.release === variant.release ? [{ key, version: k.version, tuple: k.tuple }] : [];
  });
  const wanted = (tuple: string) => {
    if (filter.tuple && tuple !== filter.tuple) return false;
    if (filter.selector) {
      const t = parseTarget(tuple);
      return t.ok && matchesSelector(t.value, filter.selector);
    }
    return true;
  };
  const withManifests = async (hits: { key: string }[]) =>
    (await Promise.all(hits.map(async (k) => ({ key: k.key, manifest: await read(k.key) })))).filter((a): a is IndexedArtifact => a.manifest !== undefined);

  if (SHA_QUERY.test(version)) {
    const versions = [...new Set(keys.filter((k) => k.version.startsWith(version)).map((k) => k.version))];
    if (versions.length > 1) {
      throw new XamalError('conflict', `version ${version} is ambiguous for ${app}: matches ${versions.map((v) => v.slice(0, 12)).join(', ')}; give more characters`);
    }
    if (versions.length === 1) return withManifests(keys.filter((k) => k.version === versions[0] && wanted(k.tuple)));
  }
  if (version === LATEST_VERSION || RELEASE_VERSION_RE.test(version)) {
    const newest = new Map<string, IndexedArtifact>();
    for (const a of (await withManifests(keys.filter((k) => wanted(k.tuple)))).filter((x) => version === LATEST_VERSION || x.manifest.releaseVersion === version)) {
      const cur = newest.get(a.manifest.tuple);
      if (!cur || a.manifest.builtAt > cur.manifest.builtAt) newest.set(a.manifest.tuple, a);
    }
    return [...newest.values()];
  }
  return [];
}

/**
 * Lookups over the store, cached while the generation stands still. A manifest is written once,
 * last, and never rewritten, so a parsed one is kept by key; a listing is kept per prefix until the
 * generation moves (a worker stored an artifact) or it is `maxAgeMs` old. A lookup that finds nothing
 * in a kept listing reads the store again before it answers "none", so an artifact is visible as soon
 * as its manifest is stored even if its writer could not move the generation.
 */
export function artifactIndex(store: ObjectStore, opts: ArtifactIndexOptions = {}): ArtifactIndex {
  const max = opts.max ?? 10_000;
  const maxAgeMs = opts.maxAgeMs ?? 30_000;
  const now = opts.now ?? Date.now;
  const manifests = new Map<string, Manifest>();
  const listings = new Map<string, { keys: string[]; at: number }>();
  let seen: string | undefined;

  const readStore = async (prefix: string): Promise<string[]> => {
    const keys = await store.list(prefix);
    const present = new Set(keys);
    for (const key of manifests.keys()) if (key.startsWith(prefix) && !present.has(key)) manifests.delete(key);
    return keys;
  };
  /**
   * The listing of `prefix` under the current generation: kept (`cached`) or read now and kept; or
   * undefined when the generation is unknown (the caller reads the store itself).
   */
  const kept = async (prefix: string): Promise<{ keys: string[]; cached: boolean } | undefined> => {
    const generation = opts.freshness ? await opts.freshness.generation().catch(() => undefined) : undefined;
    if (generation === undefined) {
      // Writers may have stored artifacts without moving the generation meanwhile: nothing kept is trusted again.
      listings.clear();
      seen = undefined;
      return undefined;
    }
    if (generation !== seen) {
      listings.clear();
      seen = generation;
    }
    const hit = listings.get(prefix);
    if (hit && now() - hit.at < maxAgeMs) return { keys: hit.keys, cached: true };
    const at = now();
    const keys = await readStore(prefix);
    // Kept under the generation read before listing: a manifest stored meanwhile moves it, and the next lookup lists again.
    if (seen === generation) bounded(listings, max, prefix, { keys, at });
    return { keys, cached: false };
  };
  const read = async (key: string): Promise<Manifest | undefined> => {
    const hit = manifests.get(key);
    if (hit) return hit;
    const raw = await store.get(key);
    if (!raw) return undefined;
    const manifest = ManifestSchema.parse(JSON.parse(raw.toString('utf8')));
    bounded(manifests, max, key, manifest);
    return manifest;
  };

  const select = (app: string, version: string, filter: ArtifactFilter, listed: string[]) => selectArtifacts(app, version, filter, listed, read);

  return {
    async find(app, version, filter = {}) {
      // A commit (or its prefix) lists only its own keys; a release version needs every build of the app.
      const prefix = SHA_QUERY.test(version) ? artifactsPrefix(app, version, false) : artifactsPrefix(app);
      const listed = await kept(prefix);
      if (!listed) return select(app, version, filter, await readStore(prefix));
      const found = await select(app, version, filter, listed.keys);
      if (found.length > 0 || !listed.cached) return found;
      // Nothing in a kept listing: the store answers (an artifact stored without a generation move).
      listings.delete(prefix);
      return select(app, version, filter, await readStore(prefix));
    },
    async manifest(app, version, key) {
      const prefix = artifactsPrefix(app, version);
      const listed = await kept(prefix);
      if (listed?.keys.includes(key)) return read(key);
      if (listed && !listed.cached) return undefined;
      // Not in a kept listing (or none kept): the store answers, and a stale listing goes.
      listings.delete(prefix);
      if (!listed) manifests.delete(key);
      return read(key);
    },
  };
}

/** One lookup straight from the store (no cache). */
export function findArtifacts(store: ObjectStore, app: string, version: string, filter: ArtifactFilter = {}): Promise<IndexedArtifact[]> {
  return artifactIndex(store).find(app, version, filter);
}
