import { appendFile, chown, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { runPipelineToFile, runChecked, timed, type Arch, type Executor } from '../../core/index.ts';
import { buildUserEntries, BUILD_USER, SLIM_PATHS, type RecipePlan } from '../../images/recipes/debian.ts';
import type { DockerEngine } from '../docker.ts';

/** What building images needs: the engine, registry, caches, host tools and the toolchain sources. */
export interface ImageBuildDeps {
  docker: DockerEngine;
  exec: Executor;
  registry: string;
  cacheDir: string;
  localLockPath: string;
  mirror: string;
  hostArch: Arch;
  /** Makes foreign-arch binaries runnable (binfmt + qemu); called before a foreign build. */
  ensureEmulation: (arch: Arch) => Promise<void>;
  /** Installs missing host tools (Debian packages) before they are used. */
  ensureTools: (packages: readonly string[]) => Promise<void>;
  /** Registry namespace instead of `xamal` (tests: their tags move no one else's). */
  namespace?: string;
  /** Base URL of each toolchain source origin (XAMAL_TOOLCHAIN_ORIGINS; images/toolchains.json). */
  toolchainOrigins: Readonly<Record<string, string>>;
  /** The origins sources are fetched from, in order (XAMAL_TOOLCHAIN_PREFER; upstream first by default). */
  toolchainPrefer: readonly string[];
  say: (line: string) => void;
}

/** debootstrap → slim → build user → tar | zstd into the cache (atomically). */
export async function buildRootfs(deps: ImageBuildDeps, plan: RecipePlan, cacheFile: string, timings: Record<string, number>): Promise<void> {
  await mkdir(join(deps.cacheDir, 'work'), { recursive: true });
  const work = await mkdtemp(join(deps.cacheDir, 'work', `${plan.input.suite}-${plan.input.arch}-`));
  const root = join(work, 'rootfs');
  try {
    if (plan.foreign) await deps.ensureEmulation(plan.input.arch);
    deps.say(`${plan.input.suite}/${plan.input.arch}/${plan.input.flavour}: debootstrap (${plan.packages.join(', ')})`);
    await timed(timings, 'debootstrap', () => runChecked(deps.exec, plan.debootstrap(root)));
    if (plan.secondStage) {
      deps.say(`${plan.input.suite}/${plan.input.arch}: debootstrap second stage under emulation`);
      await timed(timings, 'secondStage', () => runChecked(deps.exec, plan.secondStage!(root)));
    }
    for (const p of SLIM_PATHS) await rm(join(root, p), { recursive: true, force: true });
    for (const p of ['var/lib/apt/lists/partial', 'var/cache/apt/archives/partial', 'var/log']) await mkdir(join(root, p), { recursive: true });
    const u = buildUserEntries();
    await appendFile(join(root, 'etc/passwd'), u.passwd);
    await appendFile(join(root, 'etc/group'), u.group);
    await appendFile(join(root, 'etc/shadow'), u.shadow);
    await mkdir(join(root, BUILD_USER.home.slice(1)), { recursive: true });
    await chown(join(root, BUILD_USER.home.slice(1)), BUILD_USER.uid, BUILD_USER.gid);
    await timed(timings, 'tar', () => packDir(plan, root, cacheFile));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Packs `dir` (numeric owners, xattrs) into a zstd tarball at `file`, atomically. */
export async function packDir(plan: RecipePlan, dir: string, file: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await runPipelineToFile([plan.tar(dir), plan.compress], tmp);
  await rename(tmp, file);
}

/** Unpacks a zstd tarball made by `packDir` or `buildRootfs` into `dir` (owners kept: these are our own). */
export async function unpackInto(exec: Executor, file: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await runChecked(exec, { argv: ['tar', '--numeric-owner', '--xattrs', '-I', 'zstd', '-xf', file, '-C', dir], label: 'unpack rootfs' });
}
