import type { StoreConfig } from './config.ts';
import { localStore } from './local.ts';
import type { ObjectStore } from './store.ts';

/** The store a config names; the S3 client is loaded only when S3 is used. */
export async function openStore(c: StoreConfig): Promise<ObjectStore> {
  if (c.kind === 'local') return localStore(c.root);
  const { s3Store } = await import('./s3.ts');
  return s3Store(c);
}
