import { type Arch, XamalError } from '../../core/index.ts';
import type { Catalog } from '../../images/catalog.ts';
import { tupleFromFacts } from '../../images/facts.ts';
import { parseHexpmRef } from '../../images/hexpm-tag.ts';
import { readLock, splitRef, upsertLock, writeLock, type LockEntry, type LockFile } from '../../images/lock.ts';
import { isIndex, platformDigests } from '../../images/manifest-index.ts';
import type { DockerEngine } from '../docker.ts';
import type { RegistryReader } from '../registry.ts';
import { pullByDigest } from './ensure.ts';
import { probeImage } from './probe.ts';

export interface PinDeps {
  docker: DockerEngine;
  say: (line: string) => void;
  /** Where hexpm tags are resolved (XAMAL_HEXPM_REGISTRY: Docker Hub, or a mirror of it). */
  hexpm?: RegistryReader;
  /** Makes a foreign arch's images runnable (qemu binfmt) before one is probed. */
  ensureEmulation?: (arch: Arch) => Promise<void>;
}

/** The repository path of a hexpm ref inside its registry (`docker.io/hexpm/elixir` → `hexpm/elixir`). */
const registryPath = (ref: string) => splitRef(ref).repository.replace(/^(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)\//, '');

/** What a hexpm tag resolves to now, through `reader`: the index digest a pin records. */
export function hexpmTagDigest(reader: RegistryReader): (ref: string) => Promise<string> {
  return async (ref) => (await reader.manifest(registryPath(ref), splitRef(ref).tag ?? 'latest')).digest;
}

function needReader(deps: PinDeps): RegistryReader {
  if (!deps.hexpm) throw new XamalError('usage', 'no registry to resolve hexpm tags through: set XAMAL_HEXPM_REGISTRY');
  return deps.hexpm;
}

/**
 * Pulls one platform of a hexpm image by its manifest digest and checks it: the engine holds that
 * digest, the image runs as that arch, and its OTP, Elixir and OS are the ones its tag names.
 */
async function pullAndProbe(deps: PinDeps, ref: string, arch: Arch, digest: string): Promise<string> {
  const pinned = `${registryPath(ref)}@${digest}`;
  await pullByDigest(deps.docker, pinned);
  await deps.ensureEmulation?.(arch);
  const facts = await probeImage(deps.docker, pinned, arch, `${ref} (${arch})`);
  const tag = parseHexpmRef(ref);
  const wrong = [
    facts.otp !== tag.otp && `OTP ${facts.otp ?? 'none'} (tag: ${tag.otp})`,
    facts.elixir !== tag.elixir && `Elixir ${facts.elixir ?? 'none'} (tag: ${tag.elixir})`,
    (facts.distro !== tag.distro || facts.distroVersion !== tag.distroVersion) && `${facts.distro} ${facts.distroVersion} (tag: ${tag.distro} ${tag.distroVersion})`,
  ].filter(Boolean);
  if (wrong.length) throw new XamalError('external', `${ref} (${arch}, ${digest}) is not what its tag says: ${wrong.join('; ')}`);
  return tupleFromFacts(facts);
}

/**
 * Resolves every hexpm tag in the catalog through the registry and writes the committed lock: the
 * index digest and, per platform the catalog wants, its manifest digest (Docker 20.10 pulls one
 * platform by its own digest), pulled by that digest and probed for its tuple. Nothing else writes
 * hexpm digests.
 */
export async function pinHexpm(deps: PinDeps, catalog: Catalog, lockPath: string): Promise<LockEntry[]> {
  const reader = needReader(deps);
  let lock = await readLock(lockPath);
  const pinned: LockEntry[] = [];
  const failures: string[] = [];
  for (const e of catalog.images) {
    if (e.source !== 'hexpm') continue;
    try {
      const m = await reader.manifest(registryPath(e.ref), splitRef(e.ref).tag!);
      let digests: { arch: Arch; digest: string }[];
      if (isIndex(m.mediaType, m.raw)) digests = platformDigests(m.raw, e.arches, e.ref);
      else if (e.arches.length === 1) digests = [{ arch: e.arches[0]!, digest: m.digest }];
      else throw new XamalError('unsupported', `${e.ref} is a single-platform image, the catalog wants ${e.arches.join(', ')}`);
      const platforms = [];
      for (const p of digests) platforms.push({ ...p, tuple: await pullAndProbe(deps, e.ref, p.arch, p.digest) });
      const entry: LockEntry = { ref: e.ref, digest: m.digest, platforms, resolvedAt: new Date().toISOString(), source: 'hexpm', flavour: 'builder' };
      const before = lock.images.find((x) => x.ref === e.ref);
      lock = upsertLock(lock, entry);
      pinned.push(entry);
      deps.say(before && before.digest !== m.digest ? `re-pinned ${e.ref}: ${before.digest} -> ${m.digest}` : `pinned ${e.ref} @ ${m.digest} (${platforms.map((p) => `${p.arch} ${p.digest}`).join(', ')})`);
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

/** Re-resolves every locked ref (hexpm tags through their registry); a ref whose digest moved, or that is gone, fails. */
export async function verifyLocks(deps: PinDeps, locks: readonly LockFile[]): Promise<VerifyRow[]> {
  const rows: VerifyRow[] = [];
  for (const e of locks.flatMap((l) => l.images)) {
    try {
      const actual = e.source === 'hexpm' ? await hexpmTagDigest(needReader(deps))(e.ref) : (await deps.docker.distribution(e.ref)).digest;
      rows.push({ ref: e.ref, locked: e.digest, actual, ok: actual === e.digest });
    } catch (err) {
      rows.push({ ref: e.ref, locked: e.digest, actual: undefined, ok: false, error: (err as Error).message });
    }
  }
  return rows;
}
