import type { Readable } from 'node:stream';

/** What the farm needs from an object store; S3 (s3.ts) and local disk (local.ts) implement it. */
export interface ObjectStore {
  put(key: string, body: Buffer | string, contentType?: string): Promise<void>;
  /** Streams a file up (multipart when large); verifies the stored size. */
  putFile(key: string, path: string, contentType?: string): Promise<void>;
  get(key: string): Promise<Buffer | undefined>;
  /** The object as a stream with its size (large tarballs are never held in memory). */
  getStream(key: string): Promise<{ body: Readable; size: number } | undefined>;
  /** A URL anyone can GET the object from until it expires (S3 presigned); absent when the store cannot. */
  presignGet?(key: string, ttlSeconds: number): Promise<string>;
  exists(key: string): Promise<boolean>;
  delete(key: string): Promise<void>;
  list(prefix: string): Promise<string[]>;
}
