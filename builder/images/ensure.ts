import { XamalError, type Arch } from '../../core/index.ts';
import { pinnedRef, requirePinned, type LockEntry, type LockFile } from '../../images/lock.ts';
import type { DockerEngine, ImageInfo } from '../docker.ts';

export interface EnsuredImage {
  entry: LockEntry;
  /** `repo@sha256:…` — what containers are created from. */
  pinned: string;
  imageId: string;
  pulled: boolean;
}

/** What a hexpm tag resolves to now in its registry (builder/images/pin.ts `hexpmTagDigest`). */
export type UpstreamDigest = (ref: string) => Promise<string>;

/**
 * What a job calls before it builds: the image must be pinned in a lock, is used only by digest, and
 * is pulled back (by that digest) when the engine does not have it. Before a hexpm image is pulled,
 * its tag must still resolve upstream to the pinned index: a tag that moved is refused until it is
 * re-pinned (`xamal farm images pin --hexpm`), so nobody builds in an image upstream has replaced.
 */
export async function ensurePinnedImage(docker: DockerEngine, locks: readonly LockFile[], ref: string, arch: Arch, digest?: string, upstream?: UpstreamDigest): Promise<EnsuredImage> {
  const candidates = locks.flatMap((l) => l.images).filter((e) => e.ref === ref);
  const wanted = digest ?? candidates[0]?.platforms.find((p) => p.arch === arch)?.digest ?? candidates[0]?.digest ?? '';
  const entry = requirePinned(locks, ref, wanted);
  const pinned = pinnedRef(entry, arch);
  const { info, pulled } = await pullByDigest(docker, pinned, async () => {
    if (entry.source !== 'hexpm' || !upstream) return;
    const now = await upstream(entry.ref);
    if (now !== entry.digest) {
      throw new XamalError('forbidden', `${entry.ref} moved upstream: pinned ${entry.digest}, the registry now has ${now}; refusing it until it is re-pinned (xamal farm images pin --hexpm)`);
    }
  });
  return { entry, pinned, imageId: info.id, pulled };
}

/**
 * `repo@sha256:…` from the engine, pulled (after `beforePull`) when it lacks it; the engine must then
 * hold that digest, or nothing is built in it.
 */
export async function pullByDigest(docker: DockerEngine, pinned: string, beforePull: () => Promise<void> = async () => {}): Promise<{ info: ImageInfo; pulled: boolean }> {
  let info = await docker.inspectImage(pinned);
  let pulled = false;
  if (!info) {
    await beforePull();
    await docker.pull(pinned);
    pulled = true;
    info = await docker.inspectImage(pinned);
  }
  // Compare digests only: the engine may spell the repository differently (docker.io/x vs x).
  const digestPart = pinned.slice(pinned.indexOf('@'));
  if (!info || !info.repoDigests.some((d) => d.endsWith(digestPart))) {
    throw new XamalError('forbidden', `image ${pinned} is not what the engine holds (repo digests: ${info?.repoDigests.join(', ') || 'none'}): refusing to build in it`);
  }
  return { info, pulled };
}
