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
  return putRawManifest(registry, repo, tag, Buffer.from(JSON.stringify(manifest)), manifest.mediaType ?? MANIFEST_V2);
}

/** A manifest list / OCI index, and the single-image manifests a tag may resolve to. */
export const MANIFEST_LIST_V2 = 'application/vnd.docker.distribution.manifest.list.v2+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const ACCEPT_ANY = [MANIFEST_LIST_V2, OCI_INDEX, MANIFEST_V2, 'application/vnd.oci.image.manifest.v1+json'].join(', ');

/** What a registry answered for a tag or digest: the exact bytes, their digest and media type. */
export interface RawManifest {
  digest: string;
  mediaType: string;
  raw: Buffer;
}

export interface RegistryReader {
  /** The manifest (or index) a tag or digest names now; its digest is computed from the bytes received. */
  manifest(repo: string, reference: string): Promise<RawManifest>;
}

/** `Bearer realm="…",service="…",scope="…"` → its parameters. */
export function parseChallenge(header: string): Record<string, string> | undefined {
  const m = /^Bearer\s+(.*)$/i.exec(header.trim());
  if (!m) return undefined;
  const out: Record<string, string> = {};
  for (const p of m[1]!.matchAll(/([a-z_]+)="([^"]*)"/gi)) out[p[1]!.toLowerCase()] = p[2]!;
  return out.realm ? out : undefined;
}

/**
 * Reads manifests from any registry (Docker Hub's `https://registry-1.docker.io`, or a local mirror)
 * with the registry token flow for anonymous pulls: a 401 names a token realm, whose token is sent
 * once more. Plain http only to loopback. Each answer's digest is the sha256 of its bytes and must
 * equal the `Docker-Content-Digest` the registry reports (and the digest asked for).
 */
export function registryReader(baseUrl: string): RegistryReader {
  const url = new URL(baseUrl);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(url.hostname))) {
    throw new XamalError('validation', `registry ${baseUrl}: expected https://, or http:// to a loopback address`);
  }
  const root = url.toString().replace(/\/+$/, '');
  const tokens = new Map<string, string>();
  const fetchToken = async (challenge: Record<string, string>, repo: string): Promise<string> => {
    const t = new URL(challenge.realm!);
    if (challenge.service) t.searchParams.set('service', challenge.service);
    t.searchParams.set('scope', challenge.scope ?? `repository:${repo}:pull`);
    const res = await call(t.toString(), {}, `token for ${repo}`);
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new XamalError('external', `registry: the token service ${t.origin} gave no token for ${repo}`);
    return token;
  };
  return {
    async manifest(repo, reference) {
      const target = `${root}/v2/${repo}/manifests/${reference}`;
      const what = `get manifest ${repo}:${reference} from ${root}`;
      const get = async (token?: string) => {
        try {
          return await fetch(target, { headers: { accept: ACCEPT_ANY, ...(token ? { authorization: `Bearer ${token}` } : {}) } });
        } catch (err) {
          throw new XamalError('unavailable', `registry: ${what}: ${(err as Error).message}`, { cause: err });
        }
      };
      let res = await get(tokens.get(repo));
      const challenge = res.status === 401 ? parseChallenge(res.headers.get('www-authenticate') ?? '') : undefined;
      if (challenge) {
        tokens.set(repo, await fetchToken(challenge, repo));
        res = await get(tokens.get(repo));
      }
      if (res.status === 404) throw new XamalError('not_found', `registry: ${what}: no such manifest`);
      if (!res.ok) throw new XamalError('external', `registry: ${what}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
      const raw = Buffer.from(await res.arrayBuffer());
      const digest = sha256Digest(raw);
      const reported = res.headers.get('docker-content-digest');
      if (reported && reported !== digest) throw new XamalError('external', `registry: ${what}: the registry says ${reported} but the bytes hash to ${digest}`);
      if (reference.startsWith('sha256:') && reference !== digest) throw new XamalError('external', `registry: ${what}: the bytes hash to ${digest}`);
      const mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim() || ((JSON.parse(raw.toString('utf8')) as { mediaType?: string }).mediaType ?? '');
      return { digest, mediaType, raw };
    },
  };
}

/** Makes a blob of repository `from` part of `repo` too (cross-repository mount: no bytes moved). */
export async function mountBlob(registry: string, repo: string, digest: string, from: string): Promise<void> {
  const res = await call(`${base(registry)}/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`, { method: 'POST' }, `mount ${digest} into ${repo}`);
  if (res.status !== 201) throw new XamalError('external', `registry: mount ${digest} from ${from} into ${repo}: HTTP ${res.status} (the blob is not in ${from})`);
}

/** Puts a manifest's exact bytes under a tag or its digest; resolves with the digest (checked). */
export async function putRawManifest(registry: string, repo: string, reference: string, raw: Buffer, mediaType: string): Promise<string> {
  const res = await call(`${base(registry)}/${repo}/manifests/${reference}`, { method: 'PUT', headers: { 'content-type': mediaType }, body: new Uint8Array(raw) }, `put manifest ${repo}:${reference}`);
  const digest = sha256Digest(raw);
  const reported = res.headers.get('docker-content-digest');
  if (reported && reported !== digest) throw new XamalError('external', `registry: manifest digest mismatch for ${repo}:${reference}`);
  return digest;
}
