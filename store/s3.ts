import { DeleteObjectCommand, GetObjectCommand, type GetObjectCommandOutput, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Upload } from '@aws-sdk/lib-storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import type { Readable } from 'node:stream';
import { checkKey } from '../core/index.ts';
import { storeOp, type ObjectStore } from './store.ts';

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
  /**
   * How long connecting, or a connection with nothing moving on it, may take before the request is
   * given up (and retried by the SDK, then failed): a store that accepts and never answers does not
   * hang a build or an API request. Default DEFAULT_S3_TIMEOUT_MS.
   */
  timeoutMs?: number;
}

/** XAMAL_S3_TIMEOUT_MS's default: long enough for a busy store, short enough that a hung one fails a request rather than hold it forever. */
export const DEFAULT_S3_TIMEOUT_MS = 30_000;

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

export function s3Store(s: S3Settings): ObjectStore {
  const timeoutMs = s.timeoutMs ?? DEFAULT_S3_TIMEOUT_MS;
  const client = new S3Client({
    region: s.region,
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    forcePathStyle: s.forcePathStyle ?? false,
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    // Idle, not total: a large tarball streaming steadily is never cut, a silent connection is.
    requestHandler: new NodeHttpHandler({ connectionTimeout: timeoutMs, socketTimeout: timeoutMs }),
  });
  // The SDK's own SigV4 signer, as @aws-sdk/s3-request-presigner uses it (S3: no double path escaping).
  const signer = new SignatureV4({ credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey }, region: s.region, service: 's3', sha256: Sha256, uriEscapePath: false });
  const full = (key: string) => `${s.prefix ?? ''}${checkKey(key)}`;
  /** GetObject and `read` its response, as one `get`: undefined when there is no such object. */
  const getObject = <T>(key: string, read: (r: GetObjectCommandOutput) => T | Promise<T>) =>
    storeOp('get', key, async () => read(await client.send(new GetObjectCommand({ Bucket: s.bucket, Key: full(key) }))), { is: isNotFound, value: undefined });
  return {
    async put(key, body, contentType) {
      await storeOp('put', key, () => client.send(new PutObjectCommand({ Bucket: s.bucket, Key: full(key), Body: body, ContentType: contentType })));
    },
    async putFile(key, path, contentType) {
      const size = (await stat(path)).size;
      await storeOp('put', key, async () => {
        const upload = new Upload({
          client,
          params: { Bucket: s.bucket, Key: full(key), Body: createReadStream(path), ContentType: contentType },
          partSize: 8 * 1024 * 1024,
          queueSize: 4,
        });
        await upload.done();
        const head = await client.send(new HeadObjectCommand({ Bucket: s.bucket, Key: full(key) }));
        if (head.ContentLength !== size) throw new Error(`stored ${head.ContentLength} bytes, expected ${size}`);
      });
    },
    get: (key) => getObject(key, async (r) => Buffer.from(await r.Body!.transformToByteArray())),
    getStream: (key) => getObject(key, (r) => ({ body: r.Body as Readable, size: r.ContentLength ?? 0 })),
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
    exists: (key) =>
      storeOp(
        'head',
        key,
        async () => {
          await client.send(new HeadObjectCommand({ Bucket: s.bucket, Key: full(key) }));
          return true;
        },
        { is: isNotFound, value: false },
      ),
    async delete(key) {
      await storeOp('delete', key, () => client.send(new DeleteObjectCommand({ Bucket: s.bucket, Key: full(key) })));
    },
    list: (prefix) =>
      storeOp('list', prefix, async () => {
        const keys: string[] = [];
        let token: string | undefined;
        do {
          const r = await client.send(new ListObjectsV2Command({ Bucket: s.bucket, Prefix: full(prefix), ContinuationToken: token }));
          for (const o of r.Contents ?? []) if (o.Key) keys.push(o.Key.slice((s.prefix ?? '').length));
          token = r.IsTruncated ? r.NextContinuationToken : undefined;
        } while (token);
        return keys;
      }),
  };
}
