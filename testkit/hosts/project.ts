import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { runBuild } from '../../builder/apply.ts';
import { testBuilderConfig } from '../integration.ts';
import { prepareTestToolchains, TEST_TOOLCHAINS } from '../toolchains.ts';
import { buildImage } from '../../builder/images/build.ts';
import { imageBuildDeps } from '../../builder/images/context.ts';
import { imagePreparer } from '../../builder/images/prepare.ts';
import type { DebianSuite } from '../../images/distros.ts';
import { predictedTuple } from '../../images/preparable.ts';
import { readToolchainCatalog } from '../../images/toolchains.ts';
import { parseTargetOrThrow } from '../../core/index.ts';
import { buildDeps } from '../../farm/build-deps.ts';
import { servicesConfig } from '../../localservices/config.ts';
import type { ObjectStore } from '../../store/store.ts';
import { testArtifactStore } from '../example-repo.ts';
import type { Lab } from './lab.ts';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../api/app.ts';
import { listen } from '../../api/server.ts';
import { healthService } from '../../api/services/health.ts';
import { storeBackedServices } from '../../api/services/store-backed.ts';
import { testSigner } from '../signing.ts';

/** The Debian releases of a lab's hosts, in the order the host tests deploy them. */
export const LAB_SUITES = ['bullseye', 'bookworm', 'trixie'] as const;

/**
 * A `config/deploy.yml` for `service` on every host of `lab`: examples/hello's release, Caddy with its
 * internal CA on `<service>.lab.test`, the farm at `farmUrl` (its token from the secret
 * `XAMAL_FARM_TOKEN`); `extra` adds or replaces top-level keys (env, health_check, …).
 */
export function labDeployYml(lab: Pick<Lab, 'hosts' | 'privateKeyPath' | 'knownHostsPath'>, o: { service: string; appPort: number; farmUrl: string; extra?: Record<string, unknown> }): string {
  return stringify({
    service: o.service,
    servers: { web: { hosts: lab.hosts.map((h) => h.address) } },
    ssh: { user: 'deploy', keys: [lab.privateKeyPath], known_hosts: lab.knownHostsPath, connect_timeout: 5 },
    caddy: { hosts: [`${o.service}.lab.test`], ssl: 'internal', app_port: o.appPort },
    release: { name: 'hello' },
    health_check: { path: '/up', interval: 0.2, timeout: 60 },
    drain_timeout: 10,
    farm: { url: o.farmUrl, token: 'XAMAL_FARM_TOKEN' },
    ...o.extra,
  });
}

/** Makes `dir` a deploy project (`config/`, `.xamal/`) holding `files` (paths relative to it). */
export async function labProject(dir: string, files: Record<string, string>): Promise<void> {
  await mkdir(join(dir, 'config'), { recursive: true });
  await mkdir(join(dir, '.xamal'), { recursive: true });
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
}

/** The build dependencies of the deploy tests: the store they share across runs, the machine's lock and build cache. */
function labBuild(endpoints: { dockerSocket: string; registry: string }, workDir: string, toolchains: readonly FromSource[] = FROM_SOURCE) {
  const cfg = { ...testBuilderConfig(), ...endpoints };
  const store = testArtifactStore('deploy');
  const images = imageBuildDeps(cfg, () => {});
  const deps = buildDeps({
    dockerSocket: endpoints.dockerSocket,
    store,
    lockPaths: [cfg.localLockPath],
    // Shared across runs, as a farm's cache is (keyed by image digest and lockfile).
    cacheDir: join(servicesConfig().cacheDir, 'test-builds'),
    workRoot: join(workDir, 'work'),
    signer: testSigner(),
    // Builders with OTP and Elixir from source, prepared on demand into the machine's lock (toolchains cached).
    prepareImage: imagePreparer(images, async () => ({ images: toolchains.map((t) => ({ source: 'toolchain' as const, ...t, arches: ['x86_64' as const] })) }), readToolchainCatalog()),
  });
  return { store, images, deps };
}

/** Toolchains compiled from source that the deploy tests build with (the suite compiles at most one OTP). */
export const FROM_SOURCE: readonly FromSource[] = TEST_TOOLCHAINS;

/**
 * examples/hello built at each commit for each lab suite's builder (or only `suites`), into the store
 * the deploy tests share across runs (fixed commits: a warm run finds them built); resolves with that store.
 */
export async function buildLabArtifacts(endpoints: { dockerSocket: string; registry: string }, workDir: string, src: { url: string }, commits: readonly string[], suites: readonly DebianSuite[] = LAB_SUITES): Promise<ObjectStore> {
  const { store, images, deps } = labBuild(endpoints, workDir);
  for (const commit of commits) {
    for (const suite of suites) {
      const image = await buildImage(images, { suite, arch: 'x86_64', flavour: 'builder' });
      await runBuild(deps, { app: 'hello', source: { kind: 'git', url: src.url, commit }, target: parseTargetOrThrow(image.entry.tuple!), mixEnv: 'prod' }, { phase: () => {}, log: () => {} });
    }
  }
  return store;
}

type FromSource = { suite: DebianSuite; otp: string; elixir: string };

/** examples/hello at `commit` built only with each toolchain from source (x86_64; FROM_SOURCE by default), into the same store. */
export async function buildFromSourceArtifacts(endpoints: { dockerSocket: string; registry: string }, workDir: string, src: { url: string }, commit: string, toolchains: readonly FromSource[] = FROM_SOURCE): Promise<string[]> {
  // The suite prepares the builder beside the tests: wait for it (or prepare it, run alone).
  await prepareTestToolchains((line) => process.stderr.write(`[toolchains] ${line}\n`));
  const { deps } = labBuild(endpoints, workDir, toolchains);
  const tuples = toolchains.map((t) => predictedTuple(t.suite, 'x86_64', t.otp, t.elixir));
  for (const tuple of tuples) await runBuild(deps, { app: 'hello', source: { kind: 'git', url: src.url, commit }, target: parseTargetOrThrow(tuple), mixEnv: 'prod' }, { phase: () => {}, log: () => {} });
  return tuples;
}

/**
 * The farm API on the lab's bridge serving `store`'s artifacts, as servers reach a real farm
 * (download links the API signs and serves itself); its URL as the hosts reach it.
 */
export async function labFarmApi(lab: Pick<Lab, 'gateway'>, store: ObjectStore, token: string, ttlSeconds = 120): Promise<{ api: FastifyInstance; url: string }> {
  // An API with no worker of its own publishes the key the lab's artifacts are signed with (the test kit's), as a farm's API processes do (XAMAL_SIGNING_PUBLIC_KEY).
  const api = await buildApp({ token, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(store) }, downloads: { mode: 'api', ttlSeconds }, signingKeys: { current: testSigner().key.publicKey } });
  return { api, url: await listen(api, lab.gateway, 0) };
}
