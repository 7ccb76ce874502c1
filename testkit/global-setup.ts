import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { builderConfig } from '../builder/config.ts';
import { buildImage, HOST_TOOLS } from '../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../builder/images/context.ts';
import { EGRESS_PACKAGES } from '../builder/egress.ts';
import type { Arch } from '../core/index.ts';
import type { DebianSuite } from '../images/distros.ts';
import { BROWSER_PACKAGES } from './browser.ts';
import { buildCli } from './cli.ts';
import { serveFiles } from './static-files.ts';
import { LAB_TOOLCHAIN_ORIGIN, toolchainMirrorDir } from './toolchains.ts';
import { ensureHostRootfs, HOST_SUITES, LAB_PACKAGES, labDeps, reapStaleLabs } from './hosts/index.ts';
import { ensurePackages, serviceEndpoints, servicesConfig, servicesDown, servicesUp, type ServiceEndpoints, type ServiceName } from '../localservices/index.ts';

/** Debian packages integration tests need besides the services (mix for the example app, test hosts, Chromium for the builds page). */
const TEST_PACKAGES = ['elixir', 'binutils', ...HOST_TOOLS, ...LAB_PACKAGES, ...EGRESS_PACKAGES, ...BROWSER_PACKAGES];

/** Installs the Debian packages tests use (unit tests too: readelf, the host's ERTS); idempotent. */
export async function ensureTestPackages(say: (line: string) => void): Promise<void> {
  await ensurePackages(TEST_PACKAGES, say);
}

declare module 'vitest' {
  export interface ProvidedContext {
    services: ServiceEndpoints;
    runId: string;
    /** Base URL of the loopback toolchain source mirror, as `XAMAL_TOOLCHAIN_ORIGINS` would give it. */
    toolchainOrigins: Record<string, string>;
    /** The compiled CLI (its entry file) this vitest process's integration tests start. */
    cli: string;
  }
}

/**
 * The builder and runtime images the suite uses, prepared once per run (from the rootfs cache when
 * warm), in two lanes: native x86_64 builds and emulated aarch64 builds run side by side.
 */
async function prepareTestImages(say: (line: string) => void): Promise<void> {
  const cfg = builderConfig();
  const deps = imageBuildDeps(cfg, say);
  const host = hostArch();
  const lane = async (arch: Arch, suites: DebianSuite[]) => {
    for (const suite of suites) for (const flavour of ['builder', 'runtime'] as const) await buildImage(deps, { suite, arch, flavour });
  };
  const t0 = Date.now();
  const foreign: Arch = host === 'x86_64' ? 'aarch64' : 'x86_64';
  // A third lane builds the test hosts' roots (Debian 11/12/13 with systemd, sshd, Caddy).
  const hostRoots = async () => {
    const deps = labDeps(say);
    for (const suite of HOST_SUITES) await ensureHostRootfs(deps, suite);
  };
  await Promise.all([lane(host, ['bookworm', 'bullseye', 'trixie']), lane(foreign, ['bookworm']), hostRoots()]);
  say(`test images ready in ${Math.round((Date.now() - t0) / 1000)} s`);
}

/**
 * What integration tests need before any runs: Debian packages, no test labs left by a crashed run,
 * the real services up, the builder and runtime images and the test hosts' roots. Idempotent: a
 * second call (another vitest process of the same run, testkit/suite.ts) finds everything ready
 * and starts nothing. `beside` starts once the services are up and is not waited for (the suite's
 * from-source builder: tests that need it wait for it themselves, testkit/toolchains.ts). Resolves
 * with the services this call started and `beside`'s promise.
 */
export async function prepareIntegrationRun(say: (line: string) => void, beside?: () => Promise<void>): Promise<{ started: ServiceName[]; beside: Promise<void> }> {
  await ensureTestPackages(say);
  // Test hosts left by a crashed run (owner process gone) are torn down first.
  const reaped = await reapStaleLabs(labDeps());
  if (reaped.length) say(`removed test labs left by a crashed run: ${reaped.join(', ')}`);
  const up = await servicesUp(servicesConfig(), undefined, say);
  const besideRun = beside ? beside() : Promise.resolve();
  besideRun.catch(() => {}); // its failure is reported by whoever awaits it
  await prepareTestImages(say);
  return { started: up.started, beside: besideRun };
}

interface SharedRun {
  /** Projects whose teardown has not run yet. */
  users: number;
  ready: Promise<{ services: ServiceEndpoints; runId: string; started: ServiceName[]; mirror: { url: string; close: () => Promise<void> }; cliDir: string; cli: string }>;
}

/**
 * Brings the real services up once for the run (installing what is missing) and stops, at the end,
 * exactly those this run started — services a developer already had up stay up. Both integration
 * projects (farm, hosts) name this file: the first call does the work,
 * every call waits for it, and the last teardown stops the services (vitest runs every project's
 * global setup in its own main process, so the state lives on globalThis).
 */
export default async function setup(project: TestProject) {
  const config = servicesConfig();
  const say = (line: string) => process.stderr.write(`[services] ${line}\n`);
  const g = globalThis as { __xamalIntegrationRun?: SharedRun };
  const run = (g.__xamalIntegrationRun ??= {
    users: 0,
    ready: (async () => {
      const { started } = await prepareIntegrationRun(say);
      const mirror = await serveFiles(toolchainMirrorDir());
      const runId = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
      // This process's own build of the CLI: the suite's two vitest processes never write the same files.
      const cliDir = join(config.stateDir, 'cli', runId);
      return { services: serviceEndpoints(config), runId, started, mirror, cliDir, cli: await buildCli(cliDir) };
    })(),
  });
  run.users++;
  const { services, runId, started, mirror, cliDir, cli } = await run.ready;
  project.provide('services', services);
  project.provide('runId', runId);
  project.provide('toolchainOrigins', { [LAB_TOOLCHAIN_ORIGIN]: `${mirror.url}/${LAB_TOOLCHAIN_ORIGIN}` });
  project.provide('cli', cli);
  return async () => {
    if (--run.users > 0) return;
    delete g.__xamalIntegrationRun;
    await mirror.close();
    await rm(cliDir, { recursive: true, force: true });
    await reapStaleLabs(labDeps());
    if (started.length) await servicesDown(config, started, say);
  };
}
