import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { XamalError } from '../core/index.ts';
import { withFileLock } from '../localservices/fs-lock.ts';
import type { ContainerResult, ContainerSpec, DockerEngine } from './docker.ts';
import { proxyEnv, type EgressProxy } from './egress.ts';
import { runStepContainer } from './step-container.ts';

/**
 * A builder with Debian packages a build asks for beyond its own (issue 20 item 2): installed by
 * apt from Debian's archive (or a repository on the worker's disk), committed as a local image
 * named after the builder's digest and the package list, so every build with the same list on the
 * same builder reuses it. Nothing of the app runs here: only apt, as root, on the builder.
 */

/** Local repository of derived builders (never pushed: each worker makes its own, once). */
export const DERIVED_REPO = 'xamal-derived';
/** Where a repository on the worker's disk is mounted for apt. */
const MIRROR_MOUNT = '/xamal-apt';

export interface DerivedImageDeps {
  docker: DockerEngine;
  egress?: EgressProxy;
  cacheDir: string;
  /** XAMAL_APT_MIRROR_DIR: a flat Debian repository (its Packages index and the .debs) apt installs from, with no network; absent: Debian's archive through the egress proxy. */
  aptMirrorDir?: string;
}

/**
 * The container's script, fixed (packages come as arguments, already checked as Debian names). With
 * a mirror, apt's sources are that repository alone.
 */
const INSTALL_SCRIPT = [
  'set -e',
  `if [ -d ${MIRROR_MOUNT} ]; then echo 'deb [trusted=yes] file:${MIRROR_MOUNT} ./' > /etc/apt/sources.list; rm -f /etc/apt/sources.list.d/*; fi`,
  'export DEBIAN_FRONTEND=noninteractive',
  'apt-get update',
  'apt-get install -y --no-install-recommends -- "$@"',
  'apt-get clean',
  'rm -rf /var/lib/apt/lists/*',
].join('\n');

/** Pure: the derived builder's tag: the base digest, the sorted packages, and the mirror's index when there is one. */
export function derivedImageTag(baseDigest: string, packages: readonly string[], mirrorIndexSha256?: string): string {
  const input = { v: 1, base: baseDigest, packages: [...new Set(packages)].sort(), mirror: mirrorIndexSha256 ?? null };
  return createHash('sha256').update(JSON.stringify(input)).digest('hex').slice(0, 32);
}

/** Pure: the installing container. */
export function derivedImageContainer(base: string, packages: readonly string[], tag: string, aptMirrorDir: string | undefined): ContainerSpec {
  return {
    image: base,
    cmd: ['sh', '-c', INSTALL_SCRIPT, 'sh', ...packages],
    user: '0:0',
    networkMode: aptMirrorDir ? 'none' : 'egress',
    env: aptMirrorDir ? {} : proxyEnv(),
    binds: aptMirrorDir ? [`${aptMirrorDir}:${MIRROR_MOUNT}:ro`] : [],
    init: true,
    securityOpt: ['no-new-privileges'],
    pidsLimit: 512,
    memoryBytes: 2 * 1024 ** 3,
    labels: { 'org.xamal.step': 'packages' },
    timeoutMs: 20 * 60_000,
    commitAs: { repo: DERIVED_REPO, tag },
  };
}

/** apt's last lines, for an error that says what it could not install. */
function aptFailure(packages: readonly string[], r: ContainerResult, mirror: string | undefined): XamalError {
  const tail = `${r.stdout}\n${r.stderr}`.trim().split('\n').filter(Boolean).slice(-6).join('\n');
  const from = mirror ? `the repository in ${mirror} (XAMAL_APT_MIRROR_DIR)` : "Debian's archive through the egress proxy (or set XAMAL_APT_MIRROR_DIR)";
  const why = r.timedOut ? 'timed out' : `apt exited ${r.code}`;
  return new XamalError('build_failed', `packages: could not install ${packages.join(' ')} from ${from}: ${why}\n${tail}`);
}

async function mirrorIndexSha(dir: string): Promise<string> {
  for (const name of ['Packages', 'Packages.gz', 'Packages.xz']) {
    const bytes = await readFile(join(dir, name)).catch(() => undefined);
    if (bytes) return createHash('sha256').update(bytes).digest('hex');
  }
  throw new XamalError('validation', `XAMAL_APT_MIRROR_DIR: ${dir} holds no Packages index (expected a flat Debian repository: Packages or Packages.gz beside the .deb files)`);
}

/**
 * The builder `base` with `packages` installed: made once per base digest and list (under a file
 * lock, so concurrent jobs share one installation), then found in the engine by its tag.
 */
export async function ensureDerivedImage(deps: DerivedImageDeps, base: { pinned: string; digest: string }, packages: readonly string[], say: (line: string) => Promise<void>): Promise<{ ref: string; pinned: string; digest: string }> {
  const tag = derivedImageTag(base.digest, packages, deps.aptMirrorDir ? await mirrorIndexSha(deps.aptMirrorDir) : undefined);
  const ref = `${DERIVED_REPO}:${tag}`;
  const found = async () => {
    const info = await deps.docker.inspectImage(ref);
    return info ? { ref, pinned: info.id, digest: info.id } : undefined;
  };
  const kept = await found();
  if (kept) {
    await say(`image: ${packages.join(' ')} installed before in ${ref}`);
    return kept;
  }
  return withFileLock(join(deps.cacheDir, 'locks', `derived-${tag}.lock`), `derived builder ${tag}`, async () => {
    const again = await found();
    if (again) return again;
    await say(`image: installing ${packages.join(' ')} into the builder (${ref})`);
    const r = await runStepContainer(deps.docker, deps.egress, derivedImageContainer(base.pinned, packages, tag, deps.aptMirrorDir), new AbortController().signal);
    if (r.code !== 0 || !r.imageId) throw aptFailure(packages, r, deps.aptMirrorDir);
    await say(`image: derived builder ${ref} (${r.imageId.slice(0, 19)})`);
    return { ref, pinned: r.imageId, digest: r.imageId };
  });
}
