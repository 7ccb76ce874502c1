import { createHmac, timingSafeEqual } from 'node:crypto';
import { checkKey } from '../core/index.ts';

/**
 * Short-lived download links the API signs itself (for stores that cannot presign, and for servers
 * that reach the API but not the store): `<token> = base64url(JSON payload) "." base64url(HMAC-SHA256)`.
 * Every API process of a farm shares the secret (XAMAL_FARM_URL_SECRET).
 */
export interface DownloadGrant {
  key: string;
  sha256: string;
  filename: string;
  /** Unix seconds after which the link is refused. */
  exp: number;
}

export interface DownloadSettings {
  secret: string;
  ttlSeconds: number;
  /** `presign`: 302 to the store's own presigned URL when it can make one; `api`: always a link served by the API. */
  mode: 'presign' | 'api';
  /** Base URL servers use to reach the API (default: the URL the request came in on). */
  publicUrl?: string;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');
const mac = (secret: string, payload: string) => createHmac('sha256', secret).update(payload).digest();

export function signDownload(secret: string, grant: DownloadGrant): string {
  const payload = b64url(JSON.stringify(grant));
  return `${payload}.${b64url(mac(secret, payload))}`;
}

export type DownloadVerdict = { ok: true; grant: DownloadGrant } | { ok: false; status: 403 | 410; reason: string };

/** Pure: the grant, or why the link is refused (forged/garbled → 403, expired → 410). */
export function verifyDownload(secret: string, token: string, nowSeconds: number): DownloadVerdict {
  const [payload, sig, extra] = token.split('.');
  if (!payload || !sig || extra !== undefined) return { ok: false, status: 403, reason: 'malformed download link' };
  const want = mac(secret, payload);
  const got = Buffer.from(sig, 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return { ok: false, status: 403, reason: 'download link signature does not match' };
  let grant: DownloadGrant;
  try {
    grant = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as DownloadGrant;
    checkKey(grant.key);
  } catch {
    return { ok: false, status: 403, reason: 'malformed download link' };
  }
  if (!(grant.exp >= nowSeconds)) return { ok: false, status: 410, reason: `download link expired at ${new Date(grant.exp * 1000).toISOString()}; ask for a new one` };
  return { ok: true, grant };
}
