import { createHash } from 'node:crypto';
import { XamalError } from '../core/index.ts';

/**
 * A small client for the Docker Registry HTTP API v2, used to rewrite an image's config (platform and
 * labels) in the farm's own registry without re-uploading its layers. Plain HTTP is only allowed for
 * loopback registries.
 */
export const MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json';
const ACCEPT = [MANIFEST_V2, 'application/vnd.oci.image.manifest.v1+json'].join(', ');

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  config: { mediaType: string; size: number; digest: string };
  layers: { mediaType: string; size: number; digest: string }[];
}

function base(registry: string): string {
  const host = registry.split(':')[0]!;
  if (!/^(127\.\d+\.\d+\.\d+|localhost)$/.test(host)) {
    throw new XamalError('unsupported', `registry ${registry}: only loopback registries are written to directly`);
  }
  return `http://${registry}/v2`;
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function call(url: string, init: RequestInit, what: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new XamalError('unavailable', `registry: ${what}: ${(err as Error).message}`, { cause: err });
  }
  if (!res.ok) throw new XamalError('external', `registry: ${what}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
  return res;
}

export async function getManifest(registry: string, repo: string, reference: string): Promise<{ digest: string; manifest: Manifest }> {
  const res = await call(`${base(registry)}/${repo}/manifests/${reference}`, { headers: { accept: ACCEPT } }, `get manifest ${repo}:${reference}`);
  const raw = Buffer.from(await res.arrayBuffer());
  return { digest: res.headers.get('docker-content-digest') ?? sha256Digest(raw), manifest: JSON.parse(raw.toString('utf8')) as Manifest };
}

export async function getBlob(registry: string, repo: string, digest: string): Promise<Buffer> {
  const res = await call(`${base(registry)}/${repo}/blobs/${digest}`, {}, `get blob ${digest}`);
  const data = Buffer.from(await res.arrayBuffer());
  if (sha256Digest(data) !== digest) throw new XamalError('external', `registry: blob ${digest} failed its checksum`);
  return data;
}

/** Monolithic blob upload; resolves with its digest. */
export async function putBlob(registry: string, repo: string, data: Buffer): Promise<string> {
  const digest = sha256Digest(data);
  const start = await call(`${base(registry)}/${repo}/blobs/uploads/`, { method: 'POST' }, 'start blob upload');
  const location = start.headers.get('location');
  if (!location) throw new XamalError('external', 'registry: blob upload gave no location');
  const url = new URL(location, `http://${registry}`);
  url.searchParams.set('digest', digest);
  await call(url.toString(), { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(data) }, 'upload blob');
  return digest;
}

/** Puts a manifest under a tag; resolves with the manifest's digest. */
export async function putManifest(registry: string, repo: string, tag: string, manifest: Manifest): Promise<string> {
  const body = Buffer.from(JSON.stringify(manifest));
  const res = await call(
    `${base(registry)}/${repo}/manifests/${tag}`,
    { method: 'PUT', headers: { 'content-type': manifest.mediaType ?? MANIFEST_V2 }, body: new Uint8Array(body) },
    `put manifest ${repo}:${tag}`,
  );
  const digest = res.headers.get('docker-content-digest') ?? sha256Digest(body);
  if (digest !== sha256Digest(body)) throw new XamalError('external', `registry: manifest digest mismatch for ${repo}:${tag}`);
  return digest;
}
