import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Upload } from '@aws-sdk/lib-storage';
import { XamalError } from '../errors/index.ts';
import { checkKey } from './key.ts';
import type { ObjectStore } from './store.ts';

/** The only module that talks to S3. Everything else depends on ObjectStore. */
export interface S3Settings {
  endpoint?: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle?: boolean;
  /** Every key this store touches lives under this prefix (tests get their own). */
  prefix?: string;
}

export type { ObjectStore };

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

function storeError(op: string, key: string, err: unknown): XamalError {
  return new XamalError('unavailable', `store: ${op} ${key} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

export function s3Store(s: S3Settings): ObjectStore {
  const client = new S3Client({
    region: s.region,
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    forcePathStyle: s.forcePathStyle ?? false,
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
  });
  const full = (key: string) => `${s.prefix ?? ''}${checkKey(key)}`;
  return {
    async put(key, body, contentType) {
      try {
        await client.send(new PutObjectCommand({ Bucket: s.bucket, Key: full(key), Body: body, ContentType: contentType }));
      } catch (err) {
        throw storeError('put', key, err);
      }
    },
    async putFile(key, path, contentType) {
      const size = (await stat(path)).size;
      try {
        const upload = new Upload({
          client,
          params: { Bucket: s.bucket, Key: full(key), Body: createReadStream(path), ContentType: contentType },
          partSize: 8 * 1024 * 1024,
          queueSize: 4,
        });
        await upload.done();
        const head = await client.send(new HeadObjectCommand({ Bucket: s.bucket, Key: full(key) }));
        if (head.ContentLength !== size) throw new Error(`stored ${head.ContentLength} bytes, expected ${size}`);
      } catch (err) {
        throw storeError('put', key, err);
      }
    },
    async get(key) {
      try {
        const r = await client.send(new GetObjectCommand({ Bucket: s.bucket, Key: full(key) }));
        return Buffer.from(await r.Body!.transformToByteArray());
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw storeError('get', key, err);
      }
    },
    async exists(key) {
      try {
        await client.send(new HeadObjectCommand({ Bucket: s.bucket, Key: full(key) }));
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw storeError('head', key, err);
      }
    },
    async delete(key) {
      try {
        await client.send(new DeleteObjectCommand({ Bucket: s.bucket, Key: full(key) }));
      } catch (err) {
        throw storeError('delete', key, err);
      }
    },
    async list(prefix) {
      const keys: string[] = [];
      let token: string | undefined;
      try {
        do {
          const r = await client.send(new ListObjectsV2Command({ Bucket: s.bucket, Prefix: full(prefix), ContinuationToken: token }));
          for (const o of r.Contents ?? []) if (o.Key) keys.push(o.Key.slice((s.prefix ?? '').length));
          token = r.IsTruncated ? r.NextContinuationToken : undefined;
        } while (token);
      } catch (err) {
        throw storeError('list', prefix, err);
      }
      return keys;
    },
  };
}
