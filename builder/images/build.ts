import { existsSync } from 'node:fs';
import { dockerArchitecture, spawnStreaming, timed, ValidationError, XamalError, type Arch } from '../../core/index.ts';
import { withFileLock } from '../../localservices/fs-lock.ts';
import type { DebianSuite } from '../../images/distros.ts';
import { tupleFromFacts, type ImageFacts } from '../../images/facts.ts';
import { probeImage } from './probe.ts';
import { pinnedRef, readLock, upsertLock, writeLock, type LockEntry } from '../../images/lock.ts';
import { recipePlan, REPOSITORY, rootfsCachePath, toolchainImagePlan, type Flavour, type RecipePlan } from '../../images/recipes/debian.ts';
import { buildRootfs, type ImageBuildDeps } from './rootfs.ts';
import { buildToolchainRootfs, type ToolchainBuild } from './toolchain.ts';
import { readToolchainCatalog, toolchainEntries, toolchainKeys } from '../../images/toolchains.ts';
import { getBlob, getManifest, putBlob, putManifest } from '../registry.ts';

export type { ImageBuildDeps };

export interface ImageBuildRequest {
  suite: DebianSuite;
  arch: Arch;
  flavour: Flavour;
  /** Rebuild the image even when the lock has a current one (the rootfs cache is still used). */
  force?: boolean;
  /** Also ignore the cached rootfs (debootstrap again). */
  noCache?: boolean;
  /** A builder with OTP and Elixir compiled from source (images/toolchains.json) instead of the suite's. */
  toolchain?: { otp: string; elixir: string };
}

export interface ImageBuildResult {
  entry: LockEntry;
  rootfs: 'cached' | 'built';
  image: 'current' | 'built';
  timings: Record<string, number>;
}

export const LABEL_PREFIX = 'org.xamal.';

/** What building an image needs on the host besides Docker: debootstrap, and zstd for the rootfs cache. */
export const HOST_TOOLS = ['debootstrap', 'zstd'] as const;

/** Pure: the labels an image carries, from its probed facts and recipe. */
export function imageLabels(facts: ImageFacts, plan: RecipePlan, tuple: string | undefined): Record<string, string> {
  const l: Record<string, string> = {
    [`${LABEL_PREFIX}arch`]: facts.arch,
    [`${LABEL_PREFIX}libc`]: `${facts.libc}${facts.libcVersion}`,
    [`${LABEL_PREFIX}distro`]: `${facts.distro}${facts.distroVersion}`,
    [`${LABEL_PREFIX}recipe`]: `debian-${plan.input.suite}-${plan.input.flavour}-${plan.cacheKey}`,
    [`${LABEL_PREFIX}flavour`]: plan.input.flavour,
  };
  if (facts.otp) l[`${LABEL_PREFIX}otp`] = facts.otp;
  if (facts.erts) l[`${LABEL_PREFIX}erts`] = facts.erts;
  if (facts.elixir) l[`${LABEL_PREFIX}elixir`] = facts.elixir;
  if (facts.libcrypto) l[`${LABEL_PREFIX}libcrypto`] = facts.libcrypto;
  if (tuple) l[`${LABEL_PREFIX}tuple`] = tuple;
  return l;
}

/**
 * Pure: the final tag — the tuple for builders, `<distro><release>-<arch>` for runtimes. Docker tags
 * allow only `[A-Za-z0-9_.-]`, so a tuple's `~` (pre-releases) becomes `_` and `+` (qualifiers) `__`;
 * the exact tuple is in the image's labels and the lock.
 */
export function finalTag(facts: ImageFacts, flavour: Flavour): string {
  const tag = flavour === 'builder' ? tupleFromFacts(facts) : `${facts.distro}${facts.distroVersion}-${facts.arch}`;
  return tag.replace(/~/g, '_').replace(/\+/g, '__');
}

/** The registry repository of a flavour: `xamal/builder`, or under the deps' own namespace (a test's, so its tags move nobody else's). */
const repositoryOf = (deps: ImageBuildDeps, flavour: Flavour) => (deps.namespace ? REPOSITORY[flavour].replace(/^xamal\//, `${deps.namespace}/`) : REPOSITORY[flavour]);

/** The tag part of the recipe's staging tag. */
const stagingTag = (plan: RecipePlan) => plan.stagingTag.slice(plan.stagingTag.indexOf(':') + 1);

const sameRecipe = (e: LockEntry, req: ImageBuildRequest) =>
  e.recipe?.suite === req.suite && e.recipe.arch === req.arch && e.recipe.flavour === req.flavour && e.recipe.toolchain?.otp === req.toolchain?.otp && e.recipe.toolchain?.elixir === req.toolchain?.elixir;

/** Pure but for reading the committed toolchain catalog: the image's plan, and its toolchain build when it has one. */
function planFor(deps: ImageBuildDeps, req: ImageBuildRequest): { plan: RecipePlan; toolchain?: ToolchainBuild } {
  const recipe = { suite: req.suite, arch: req.arch, mirror: deps.mirror, hostArch: deps.hostArch };
  if (!req.toolchain) return { plan: recipePlan({ ...recipe, flavour: req.flavour }) };
  if (req.flavour !== 'builder') throw new ValidationError([{ path: 'flavour', message: 'OTP and Elixir from source make builder images; runtime images stay distro-only' }], 'image request');
  const entries = toolchainEntries(readToolchainCatalog(), req.suite, req.toolchain.otp, req.toolchain.elixir, { arch: req.arch, hostArch: deps.hostArch }, deps.toolchainPrefer);
  const base = recipePlan({ ...recipe, flavour: 'toolchain-base' });
  const keys = toolchainKeys(base.cacheKey, entries.otp, entries.elixir);
  return { plan: toolchainImagePlan(base, req.toolchain, keys.image), toolchain: { suite: req.suite, arch: req.arch, ...entries, keys } };
}

/** How an image is named in progress lines. */
const describe = (req: ImageBuildRequest) => `${req.suite}/${req.arch}/${req.flavour}${req.toolchain ? ` (OTP ${req.toolchain.otp} from source, Elixir ${req.toolchain.elixir})` : ''}`;

/** The locked image of this recipe when it is current and the engine has (or can pull) it. */
async function currentImage(deps: ImageBuildDeps, req: ImageBuildRequest, plan: RecipePlan, timings: Record<string, number>): Promise<LockEntry | undefined> {
  const lock = await readLock(deps.localLockPath);
  const current = lock.images.find((e) => sameRecipe(e, req));
  if (!current || current.recipe?.key !== plan.cacheKey || req.force) return undefined;
  const ref = pinnedRef(current, req.arch);
  if (!(await deps.docker.inspectImage(ref))) await timed(timings, 'pull', () => deps.docker.pull(ref));
  return (await deps.docker.inspectImage(ref)) ? current : undefined;
}

/** `docker import` of the cached rootfs under the staging tag, then the probe run in it. */
async function importAndProbe(deps: ImageBuildDeps, req: ImageBuildRequest, plan: RecipePlan, cacheFile: string, timings: Record<string, number>): Promise<ImageFacts> {
  const what = describe(req);
  const repo = `${deps.registry}/${repositoryOf(deps, req.flavour)}`;
  const imageId = await timed(timings, 'import', async () => {
    const unzstd = spawnStreaming(plan.decompress(cacheFile));
    const [id] = await Promise.all([deps.docker.importTarball(unzstd.stdout, repo, stagingTag(plan), plan.changes), unzstd.done]);
    return id;
  });
  if (plan.foreign) await deps.ensureEmulation(req.arch);
  return timed(timings, 'probe', () => probeImage(deps.docker, imageId, req.arch, what));
}

/**
 * Pushes the staging image and rewrites its config in the registry (platform, probed labels) under
 * the final tag, without re-uploading layers; resolves with the new manifest's digest.
 */
async function publishImage(deps: ImageBuildDeps, req: ImageBuildRequest, plan: RecipePlan, labels: Record<string, string>, tag: string): Promise<string> {
  const repoPath = repositoryOf(deps, req.flavour);
  await deps.docker.push(`${deps.registry}/${repoPath}`, stagingTag(plan));
  const { manifest } = await getManifest(deps.registry, repoPath, stagingTag(plan));
  const config = JSON.parse((await getBlob(deps.registry, repoPath, manifest.config.digest)).toString('utf8')) as Record<string, unknown> & {
    config?: Record<string, unknown>;
  };
  const platform = dockerArchitecture(req.arch);
  const next = {
    ...config,
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: 'linux',
    config: { ...(config.config ?? {}), Labels: labels },
  };
  if (!platform.variant) delete (next as { variant?: string }).variant;
  const configBytes = Buffer.from(JSON.stringify(next));
  const configDigest = await putBlob(deps.registry, repoPath, configBytes);
  return putManifest(deps.registry, repoPath, tag, { ...manifest, config: { ...manifest.config, digest: configDigest, size: configBytes.length } });
}

/** Records the entry in the machine's lock, replacing this recipe's old one. */
async function recordInLock(deps: ImageBuildDeps, req: ImageBuildRequest, entry: LockEntry): Promise<void> {
  // Read-modify-write under a file lock: builds in other processes write the same lock.
  await withFileLock(`${deps.localLockPath}.lock`, 'the local image lock', async () => {
    const fresh = await readLock(deps.localLockPath);
    await writeLock(deps.localLockPath, upsertLock({ ...fresh, images: fresh.images.filter((e) => !sameRecipe(e, req)) }, entry));
  });
}

/**
 * Builds (or confirms) one image from a Debian suite: rootfs from cache or debootstrap, `docker
 * import`, probe by running it, rewrite its config in the registry with the right platform and the
 * probed labels, pull it back by digest, and record the digest in the machine's lock.
 */
export async function buildImage(deps: ImageBuildDeps, req: ImageBuildRequest): Promise<ImageBuildResult> {
  const timings: Record<string, number> = {};
  const { plan, toolchain } = planFor(deps, req);
  const what = describe(req);
  const current = await currentImage(deps, req, plan, timings);
  if (current) return { entry: current, rootfs: 'cached', image: 'current', timings };

  const cacheFile = rootfsCachePath(deps.cacheDir, plan);
  await deps.ensureTools(HOST_TOOLS);
  let rootfs: ImageBuildResult['rootfs'] = 'cached';
  if (req.noCache || !existsSync(cacheFile)) {
    await (toolchain ? buildToolchainRootfs(deps, toolchain, plan, cacheFile, timings) : buildRootfs(deps, plan, cacheFile, timings));
    rootfs = 'built';
  } else {
    deps.say(`${what}: rootfs from cache ${cacheFile}`);
  }

  const facts = await importAndProbe(deps, req, plan, cacheFile, timings);
  const tuple = req.flavour === 'builder' ? tupleFromFacts(facts) : undefined;
  const tag = finalTag(facts, req.flavour);
  const digest = await timed(timings, 'publish', () => publishImage(deps, req, plan, imageLabels(facts, plan, tuple), tag));

  const repo = `${deps.registry}/${repositoryOf(deps, req.flavour)}`;
  const pinned = `${repo}@${digest}`;
  await timed(timings, 'pull', () => deps.docker.pull(pinned));
  const info = await deps.docker.inspectImage(pinned);
  if (!info || info.architecture !== dockerArchitecture(req.arch).architecture) {
    throw new XamalError('external', `${what}: pulled ${pinned} but it reports architecture ${info?.architecture ?? 'none'}`);
  }
  await deps.docker.removeImage(`${repo}:${stagingTag(plan)}`);

  const entry: LockEntry = {
    ref: `${repo}:${tag}`,
    digest,
    platforms: [{ arch: req.arch, digest }],
    resolvedAt: new Date().toISOString(),
    source: 'recipe',
    flavour: req.flavour,
    facts,
    ...(tuple ? { tuple } : {}),
    recipe: { suite: req.suite, arch: req.arch, flavour: req.flavour, key: plan.cacheKey, ...(req.toolchain ? { toolchain: req.toolchain } : {}) },
  };
  await recordInLock(deps, req, entry);
  deps.say(`${what}: ${entry.ref} @ ${digest}${tuple ? ` (${tuple})` : ''}`);
  return { entry, rootfs, image: 'built', timings };
}
