import type { ObjectStore } from '../../core/storage/store.ts';
import { artifactService } from './artifacts.ts';
import { resolveService } from './resolve.ts';

/** The services that read only the artifact store. */
export function storeBackedServices(store: ObjectStore) {
  return { artifacts: artifactService(store), resolve: resolveService(store), sourceStore: store };
}
