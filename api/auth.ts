import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { ValidationError, type Issue } from '../core/index.ts';

export const SCOPES = ['read', 'build', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** A configured token: only its sha256 is kept, never the token itself. */
export interface TokenEntry {
  name: string;
  scopes: readonly Scope[];
  sha256: Buffer;
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** The admin token (from XAMAL_FARM_TOKEN or the state directory) holds every scope. */
export function adminEntry(token: string): TokenEntry {
  return { name: 'admin', scopes: SCOPES, sha256: hashToken(token) };
}

const EntrySchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'expected a name like ci'),
  scopes: z.array(z.enum(SCOPES)).min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected the token\'s sha256 as 64 hex characters'),
});

/**
 * Parses `XAMAL_FARM_TOKENS`: `name:scope+scope:sha256hex` entries separated by `;` or newlines
 * (`ci:build+read:9f86…`). Every bad entry is reported at once.
 */
export function parseTokenEntries(text: string): TokenEntry[] {
  const issues: Issue[] = [];
  const out: TokenEntry[] = [];
  text
    .split(/[;\n]/)
    .map((s) => s.trim())
    .filter(Boolean)
    .forEach((entry, i) => {
      const [name = '', scopes = '', sha = ''] = entry.split(':');
      const r = EntrySchema.safeParse({ name, scopes: scopes.split('+').filter(Boolean), sha256: sha });
      if (!r.success) for (const iss of r.error.issues) issues.push({ path: `XAMAL_FARM_TOKENS/${i}/${iss.path.join('/')}`, message: iss.message });
      else out.push({ name: r.data.name, scopes: r.data.scopes, sha256: Buffer.from(r.data.sha256, 'hex') });
    });
  if (issues.length) throw new ValidationError(issues, 'invalid token configuration');
  return out;
}

/** The token a header carries: `Bearer <token>`, or HTTP Basic with the token as password (browsers, for /admin). */
function presentedToken(header: string | undefined): string | undefined {
  const bearer = /^bearer\s+(\S+)$/i.exec(header ?? '');
  if (bearer) return bearer[1];
  const basic = /^basic\s+([A-Za-z0-9+/=]+)$/i.exec(header ?? '');
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const password = decoded.slice(decoded.indexOf(':') + 1);
  return decoded.includes(':') && password ? password : undefined;
}

/** The entry a bearer header belongs to, comparing hashes in constant time against every entry. */
export function authenticate(header: string | undefined, entries: readonly TokenEntry[]): TokenEntry | undefined {
  const token = presentedToken(header);
  if (!token) return undefined;
  const presented = hashToken(token);
  let found: TokenEntry | undefined;
  for (const e of entries) if (timingSafeEqual(presented, e.sha256) && !found) found = e;
  return found;
}
