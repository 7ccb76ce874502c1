import type { Readable } from 'node:stream';
import { XamalError } from '../core/errors/index.ts';

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

/** The error of a failed store operation: `unavailable`, naming the operation and the key. */
export function storeError(op: string, key: string, err: unknown): XamalError {
  return new XamalError('unavailable', `store: ${op} ${key} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

/** A failure that means the object is not there, and what the operation gives then. */
export interface IfMissing<M> {
  is: (err: unknown) => boolean;
  value: M;
}

/** Runs one store operation: `ifMissing.value` when the object is not there, any other failure as a storeError. */
export async function storeOp<T, M = never>(op: string, key: string, run: () => Promise<T>, ifMissing?: IfMissing<M>): Promise<T | M> {
  try {
    return await run();
  } catch (err) {
    if (ifMissing?.is(err)) return ifMissing.value;
    throw storeError(op, key, err);
  }
}
