import type { ObjectStore } from '../../store/store.ts';
import { artifactIndex, type IndexFreshness } from '../../store/artifact-index.ts';
import { artifactService } from './artifacts.ts';
import { resolveService } from './resolve.ts';

/**
 * The services that read only the artifact store, over one index. With `freshness` (the farm's
 * Redis generation) lookups are answered from kept listings and manifests; without it each lists the store.
 */
export function storeBackedServices(store: ObjectStore, freshness?: IndexFreshness) {
  const index = artifactIndex(store, freshness ? { freshness } : {});
  return { artifacts: artifactService(store, index), resolve: resolveService(index), sourceStore: store };
}
