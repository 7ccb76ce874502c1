import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Upload } from '@aws-sdk/lib-storage';
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import type { Readable } from 'node:stream';
import { XamalError } from '../core/errors/index.ts';
import { checkKey } from '../core/index.ts';
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

type Bytes = string | ArrayBuffer | ArrayBufferView;
const toBuffer = (d: Bytes): Buffer => (typeof d === 'string' ? Buffer.from(d, 'utf8') : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d));

/** SHA-256 in the shape the SigV4 signer wants (`@smithy/hash-node` is this, on node:crypto). */
class Sha256 {
  #hash: Hash | undefined;
  #hmac: Hmac | undefined;
  readonly #secret: Bytes | undefined;
  constructor(secret?: Bytes) {
    this.#secret = secret;
    this.reset();
  }
  reset(): void {
    if (this.#secret !== undefined) this.#hmac = createHmacFor(this.#secret);
    else this.#hash = createHash('sha256');
  }
  update(data: Bytes): void {
    (this.#hmac ?? this.#hash)!.update(toBuffer(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array((this.#hmac ?? this.#hash)!.digest());
  }
}

function createHmacFor(secret: Bytes): Hmac {
  return createHmac('sha256', toBuffer(secret));
}

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
  // The SDK's own SigV4 signer, as @aws-sdk/s3-request-presigner uses it (S3: no double path escaping).
  const signer = new SignatureV4({ credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey }, region: s.region, service: 's3', sha256: Sha256, uriEscapePath: false });
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
    async getStream(key) {
      try {
        const r = await client.send(new GetObjectCommand({ Bucket: s.bucket, Key: full(key) }));
        return { body: r.Body as Readable, size: r.ContentLength ?? 0 };
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw storeError('get', key, err);
      }
    },
    async presignGet(key, ttlSeconds) {
      const url = new URL(s.endpoint ?? `https://s3.${s.region}.amazonaws.com`);
      const path = `/${encodeURIComponent(full(key)).replace(/%2F/g, '/')}`;
      const pathStyle = s.forcePathStyle ?? false;
      const request = {
        method: 'GET',
        protocol: url.protocol,
        hostname: pathStyle ? url.hostname : `${s.bucket}.${url.hostname}`,
        ...(url.port ? { port: Number(url.port) } : {}),
        path: pathStyle ? `/${s.bucket}${path}` : path,
        query: {},
        headers: { host: `${pathStyle ? url.hostname : `${s.bucket}.${url.hostname}`}${url.port ? `:${url.port}` : ''}` },
      };
      const signed = await signer.presign(request, { expiresIn: ttlSeconds });
      const q = new URLSearchParams(signed.query as Record<string, string>).toString();
      return `${signed.protocol}//${signed.hostname}${signed.port ? `:${signed.port}` : ''}${signed.path}?${q}`;
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
