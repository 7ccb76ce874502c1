import { join } from 'node:path';
import { formatTarget, XamalError, type Target } from '../../core/index.ts';
import { withFileLock } from '../../localservices/fs-lock.ts';
import type { Catalog } from '../../images/catalog.ts';
import type { LockFile } from '../../images/lock.ts';
import { preparableImages } from '../../images/preparable.ts';
import type { ToolchainCatalog } from '../../images/toolchains.ts';
import { buildImage, type ImageBuildDeps } from './build.ts';

/** Prepares the builder image a job's target needs before the job builds (the `image` phase). */
export type ImagePreparer = (target: Target, locks: readonly LockFile[], say: (line: string) => Promise<void>) => Promise<void>;

/** A preparation waits at most this long for another one of the same image (OTP from source takes tens of minutes). */
export const PREPARE_WAIT_MS = 6 * 3_600_000;

/**
 * The worker's image preparer: the catalog's builder for the tuple, built like `xamal farm images
 * build` does, under a file lock per tuple so concurrent jobs (in any process on this machine) share
 * one preparation and later ones find it done. The probed tuple must be the predicted one.
 */
export function imagePreparer(deps: Omit<ImageBuildDeps, 'say'>, catalog: () => Promise<Catalog>, toolchains: ToolchainCatalog): ImagePreparer {
  return async (target, locks, say) => {
    const tuple = formatTarget(target);
    const p = preparableImages(await catalog(), toolchains, locks, deps.hostArch, deps.toolchainPrefer).find((x) => x.tuple === tuple);
    if (!p) throw new XamalError('unsupported', `no pinned builder image for ${tuple}, and the image catalog names none to prepare`);
    if (p.problems.length) throw new XamalError('unsupported', `${tuple}: this worker cannot prepare its builder: ${p.problems.map((x) => x.message).join('; ')}`);
    await withFileLock(join(deps.cacheDir, 'prepare', `${tuple}.lock`), `the preparation of ${tuple}`, async () => {
      const lines: Promise<void>[] = [];
      const r = await buildImage({ ...deps, say: (line) => void lines.push(say(`image: ${line}`)) }, p.request);
      await Promise.all(lines);
      if (r.entry.tuple !== tuple) throw new XamalError('external', `the prepared builder ${r.entry.ref} probes as ${r.entry.tuple ?? 'nothing'}, not ${tuple}`);
      const took = Object.entries(r.timings).map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`).join(', ');
      await say(r.image === 'current' ? `image: ${r.entry.ref} was prepared by another job` : `image: prepared ${r.entry.ref}${took ? ` (${took})` : ''}`);
    }, PREPARE_WAIT_MS);
  };
}
