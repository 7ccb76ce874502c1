import { z } from 'zod';
import { archFromDocker, issuesFromZod, ValidationError, XamalError, type Arch } from '../core/index.ts';
import { DIGEST_RE } from './lock.ts';

const INDEX_TYPES = ['application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.oci.image.index.v1+json'];

const IndexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(
    z.object({
      digest: z.string().regex(DIGEST_RE, 'expected sha256:<64 hex>'),
      platform: z.object({ os: z.string(), architecture: z.string(), variant: z.string().optional() }).passthrough().optional(),
    }).passthrough(),
  ),
});

/** Whether a manifest (by media type, or its own `mediaType` field) is a multi-platform index. */
export function isIndex(mediaType: string, raw: Buffer): boolean {
  if (INDEX_TYPES.includes(mediaType)) return true;
  try {
    const doc = JSON.parse(raw.toString('utf8')) as { mediaType?: string; manifests?: unknown };
    return INDEX_TYPES.includes(doc.mediaType ?? '') || Array.isArray(doc.manifests);
  } catch {
    return false;
  }
}

/**
 * Pure: the manifest digest of each wanted arch in an index (manifest list or OCI index). Entries
 * for other OSes, unknown arches and attestations (platform `unknown/unknown`) are skipped; a wanted
 * arch the index lacks is an error naming what it has.
 */
export function platformDigests(raw: Buffer, arches: readonly Arch[], what: string): { arch: Arch; digest: string }[] {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new XamalError('external', `${what}: the index is not JSON (${(err as Error).message})`);
  }
  const r = IndexSchema.safeParse(json);
  if (!r.success) throw new ValidationError(issuesFromZod(r.error), `${what}: not an image index`);
  const found = new Map<Arch, string>();
  for (const m of r.data.manifests) {
    if (m.platform?.os !== 'linux') continue;
    const arch = archFromDocker(m.platform.architecture, m.platform.variant);
    if (arch && !found.has(arch)) found.set(arch, m.digest);
  }
  const missing = arches.filter((a) => !found.has(a));
  if (missing.length) {
    throw new XamalError('unsupported', `${what}: no ${missing.join(', ')} image in its index (it has: ${[...found.keys()].join(', ') || 'no linux image'})`);
  }
  return arches.map((arch) => ({ arch, digest: found.get(arch)! }));
}
