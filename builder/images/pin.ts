import { archFromDocker, type Arch, XamalError } from '../../core/index.ts';
import type { Catalog } from '../../images/catalog.ts';
import { readLock, upsertLock, writeLock, type LockEntry, type LockFile } from '../../images/lock.ts';
import type { DockerEngine } from '../docker.ts';

export interface PinDeps {
  docker: DockerEngine;
  say: (line: string) => void;
}

function platformsOf(d: Awaited<ReturnType<DockerEngine['distribution']>>, fallback: readonly Arch[]): { arch: Arch }[] {
  const arches = d.platforms.flatMap((p) => {
    if (p.os !== 'linux') return [];
    const a = archFromDocker(p.architecture, p.variant);
    return a ? [a] : [];
  });
  return [...new Set(arches.length ? arches : fallback)].map((arch) => ({ arch }));
}

/**
 * Resolves every hexpm tag in the catalog to its digest through the registry and writes the
 * committed lock. Nothing else writes hexpm digests.
 */
export async function pinHexpm(deps: PinDeps, catalog: Catalog, lockPath: string): Promise<LockEntry[]> {
  let lock = await readLock(lockPath);
  const pinned: LockEntry[] = [];
  const failures: string[] = [];
  for (const e of catalog.images) {
    if (e.source !== 'hexpm') continue;
    try {
      const d = await deps.docker.distribution(e.ref);
      const entry: LockEntry = { ref: e.ref, digest: d.digest, platforms: platformsOf(d, e.arches), resolvedAt: new Date().toISOString(), source: 'hexpm', flavour: 'builder' };
      lock = upsertLock(lock, entry);
      pinned.push(entry);
      deps.say(`pinned ${e.ref} @ ${d.digest}`);
    } catch (err) {
      failures.push(`${e.ref}: ${(err as Error).message}`);
    }
  }
  if (pinned.length) await writeLock(lockPath, lock);
  if (failures.length) throw new XamalError('unavailable', `could not pin ${failures.length} image(s):\n${failures.join('\n')}`);
  return pinned;
}

/** Re-resolves every tag of images built here (in the local registry) and records the digests. */
export async function pinLocal(deps: PinDeps, lockPath: string): Promise<LockEntry[]> {
  const lock = await readLock(lockPath);
  let next: LockFile = lock;
  for (const e of lock.images) {
    const d = await deps.docker.distribution(e.ref);
    const platforms = e.platforms.map((p) => ({ arch: p.arch, digest: d.digest }));
    if (d.digest !== e.digest) deps.say(`${e.ref}: ${e.digest} -> ${d.digest}`);
    next = upsertLock(next, { ...e, digest: d.digest, platforms, resolvedAt: new Date().toISOString() });
  }
  await writeLock(lockPath, next);
  return next.images;
}

export interface VerifyRow {
  ref: string;
  locked: string;
  actual: string | undefined;
  ok: boolean;
  error?: string;
}

/** Re-resolves every locked ref; a ref whose registry digest moved, or that is gone, fails. */
export async function verifyLocks(deps: PinDeps, locks: readonly LockFile[]): Promise<VerifyRow[]> {
  const rows: VerifyRow[] = [];
  for (const e of locks.flatMap((l) => l.images)) {
    try {
      const d = await deps.docker.distribution(e.ref);
      rows.push({ ref: e.ref, locked: e.digest, actual: d.digest, ok: d.digest === e.digest });
    } catch (err) {
      rows.push({ ref: e.ref, locked: e.digest, actual: undefined, ok: false, error: (err as Error).message });
    }
  }
  return rows;
}
