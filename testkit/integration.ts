import { randomBytes } from 'node:crypto';
import { builderConfig } from '../builder/config.ts';
import { dockerEngine, type DockerEngine } from '../builder/docker.ts';
import { buildImage } from '../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../builder/images/context.ts';
import { pinnedRef, readLock, type LockFile } from '../images/lock.ts';
import { inject } from 'vitest';

/** A prefix no other test (or run) shares, for queue names and S3 keys: `t-<run>-<name>-<rand>`. */
export function testPrefix(name: string): string {
  const safe = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 30);
  return `t-${inject('runId')}-${safe}-${randomBytes(3).toString('hex')}`;
}

export function services() {
  return inject('services');
}

/** The compiled `xamal` of this run (testkit/cli.ts buildCli, made by the global setup): the CLI tests start. */
export function cliEntry(): string {
  return inject('cli');
}

/**
 * The builder's configuration as tests use it: this run's engine and registry, and toolchain
 * sources from the suite's loopback mirror (testkit/toolchains.ts) instead of the Internet.
 */
export function testBuilderConfig() {
  const cfg = builderConfig();
  const ep = services();
  return { ...cfg, dockerSocket: ep.dockerSocket, registry: ep.registry, toolchainOrigins: { ...cfg.toolchainOrigins, ...inject('toolchainOrigins') } };
}

/**
 * The machine's image lock as the suite's images are in it: without builders compiled from source by
 * hand on this machine (`xamal farm images build --otp …`), which selectors would otherwise prefer
 * (they pick the newest OTP), so tests that resolve selectors see what a fresh machine has.
 */
export async function suiteImageLocks(lockPath: string): Promise<LockFile[]> {
  const lock = await readLock(lockPath);
  return [{ ...lock, images: lock.images.filter((e) => !e.recipe?.toolchain) }];
}

/** The suite's engine and its bookworm runtime image for this machine's arch, pinned (built once, then from the cache): for tests of plain container runs. */
export async function suiteEngineWithRuntime(): Promise<{ docker: DockerEngine; image: string }> {
  const built = await buildImage(imageBuildDeps(testBuilderConfig(), (l) => process.stderr.write(`[images] ${l}\n`)), { suite: 'bookworm', arch: hostArch(), flavour: 'runtime' });
  return { docker: dockerEngine(services().dockerSocket), image: pinnedRef(built.entry, hostArch()) };
}
