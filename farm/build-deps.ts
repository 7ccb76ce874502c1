import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BuildDeps } from '../builder/apply.ts';
import type { BuilderConfig } from '../builder/config.ts';
import { dockerEngine } from '../builder/docker.ts';
import { cacheKeeper } from '../builder/cache-use.ts';
import { DEFAULT_EVICTION, type EvictionPolicy } from '../builder/eviction.ts';
import { hostArch, imageBuildDeps } from '../builder/images/context.ts';
import { imagePreparer, type ImagePreparer } from '../builder/images/prepare.ts';
import { hexpmTagDigest } from '../builder/images/pin.ts';
import { registryReader } from '../builder/registry.ts';
import { DEFAULT_DEPS_ALLOW, EGRESS_PACKAGES, egressProxy, parseAllowList, type AllowEntry } from '../builder/egress.ts';
import { DEFAULT_LIMITS, type BuildLimits, type DepsNetwork } from '../builder/plan.ts';
import type { MixToolsSettings } from '../builder/mix-tools.ts';
import type { ArtifactSigner } from '../builder/provenance.ts';
import { LocalExecutor } from '../core/index.ts';
import { COMMITTED_LOCK_PATH, readCatalog } from '../images/catalog.ts';
import { readToolchainCatalog } from '../images/toolchains.ts';
import { readLock } from '../images/lock.ts';
import { ensurePackages } from '../localservices/index.ts';
import type { ObjectStore } from '../store/store.ts';

/** What a build worker runs on: the engine, the store, the image locks and the worker's own directories. */
export interface BuildDepsOptions {
  dockerSocket: string;
  /** The engine's call timeout (builderConfig's dockerCallTimeoutMs; default DEFAULT_DOCKER_CALL_TIMEOUT_MS). */
  dockerCallTimeoutMs?: number;
  store: ObjectStore;
  /** Build cache (mix deps/ and _build, git mirrors), shared by the builds of this worker. */
  cacheDir: string;
  /** Parent of per-job scratch directories. */
  workRoot: string;
  /** The image lock files whose pinned builder images builds may use (default: the committed lock). */
  lockPaths: readonly string[];
  /** The deps step's network (default `egress`, through the proxy to the hosts of `depsAllow`). */
  depsNetwork?: DepsNetwork;
  /** Hosts the deps step may reach (default DEFAULT_DEPS_ALLOW). */
  depsAllow?: readonly AllowEntry[];
  /** The egress proxy's directory (short: it holds a unix socket); default a fresh one under the system tmp. */
  egressDir?: string;
  limits?: BuildLimits;
  maxLogBytes?: number;
  /** Size and age limits of the build cache (default 20 GiB, 30 days); entries running builds use are never evicted. */
  cacheEviction?: EvictionPolicy;
  /** Prepares a builder the catalog names but no lock holds yet, before the job builds (absent: such a job fails). */
  prepareImage?: ImagePreparer;
  /** The registry hexpm tags are resolved through (XAMAL_HEXPM_REGISTRY): a tag that moved there is refused before its image is pulled. */
  hexpmRegistry?: string;
  /** Where Hex and rebar3 come from (builder/mix-tools.ts); absent: builds have neither. */
  mixTools?: MixToolsSettings;
  /** The farm's credentials for private git repositories (builder/config.ts XAMAL_GIT_CREDENTIALS_FILE). */
  gitRemoteEnv?: BuildDeps['gitRemoteEnv'];
  /** The farm's ssh deploy keys for the deps step's git dependencies over ssh (builder/config.ts XAMAL_GIT_CREDENTIALS_FILE). */
  gitDeployKeys?: BuildDeps['gitDeployKeys'];
  /** Extra Debian packages come from this flat repository on disk (XAMAL_APT_MIRROR_DIR) instead of Debian's archive. */
  aptMirrorDir?: string;
  /** Signs every artifact (the farm's key: XAMAL_SIGNING_KEY_FILE, or the embedded farm's own; builder/provenance.ts artifactSigner). */
  signer: ArtifactSigner;
}

let proxies = 0;

/** The one place a build worker's dependencies are made (`xamal farm up`, `xamal farm worker`, test kit, benchmarks). */
export function buildDeps(o: BuildDepsOptions): BuildDeps {
  return {
    docker: dockerEngine(o.dockerSocket, o.dockerCallTimeoutMs),
    exec: new LocalExecutor(),
    store: o.store,
    locks: () => Promise.all(o.lockPaths.map((p) => readLock(p))),
    cacheDir: o.cacheDir,
    workRoot: o.workRoot,
    limits: o.limits ?? DEFAULT_LIMITS,
    depsNetwork: o.depsNetwork ?? 'egress',
    egress: egressProxy({ dir: o.egressDir ?? join(tmpdir(), `xamal-egress-${process.pid}-${++proxies}`), allow: o.depsAllow ?? parseAllowList(DEFAULT_DEPS_ALLOW) }),
    hostArch: hostArch(),
    signer: o.signer,
    ...(o.maxLogBytes !== undefined ? { maxLogBytes: o.maxLogBytes } : {}),
    cacheKeeper: cacheKeeper(o.cacheDir, o.cacheEviction ?? DEFAULT_EVICTION),
    ...(o.prepareImage ? { prepareImage: o.prepareImage } : {}),
    ...(o.mixTools ? { mixTools: o.mixTools } : {}),
    ...(o.gitRemoteEnv ? { gitRemoteEnv: o.gitRemoteEnv } : {}),
    ...(o.gitDeployKeys ? { gitDeployKeys: o.gitDeployKeys } : {}),
    ...(o.aptMirrorDir ? { aptMirrorDir: o.aptMirrorDir } : {}),
    ...(o.hexpmRegistry ? { upstreamDigest: hexpmTagDigest(registryReader(o.hexpmRegistry)) } : {}),
  };
}

/** The image locks a farm on this machine builds with: the committed pins, then the images built here. */
export function farmLockPaths(cfg: BuilderConfig): string[] {
  return [COMMITTED_LOCK_PATH, cfg.localLockPath];
}

/** A worker's dependencies as configured by the environment (builderConfig), signing with `signer`. */
export function configuredBuildDeps(cfg: BuilderConfig, store: ObjectStore, signer: ArtifactSigner): BuildDeps {
  return buildDeps({
    signer,
    dockerSocket: cfg.dockerSocket,
    dockerCallTimeoutMs: cfg.dockerCallTimeoutMs,
    store,
    cacheDir: join(cfg.cacheDir, 'builds'),
    workRoot: cfg.workRoot,
    lockPaths: farmLockPaths(cfg),
    depsNetwork: cfg.depsNetwork,
    depsAllow: cfg.depsAllow,
    egressDir: join(cfg.services.runDir, `egress-${process.pid}`),
    maxLogBytes: cfg.maxLogBytes,
    limits: cfg.limits,
    cacheEviction: cfg.cacheEviction,
    hexpmRegistry: cfg.hexpmRegistry,
    mixTools: cfg.mixTools,
    gitRemoteEnv: cfg.gitRemoteEnv,
    gitDeployKeys: cfg.gitDeployKeys,
    ...(cfg.aptMirrorDir ? { aptMirrorDir: cfg.aptMirrorDir } : {}),
    // The images this machine builds (xamal farm images build), prepared on demand into its local lock.
    prepareImage: imagePreparer(imageBuildDeps(cfg, () => {}), () => readCatalog(), readToolchainCatalog()),
  });
}

/** Installs what the egress proxy runs on (tinyproxy, socat, nsenter) when the deps step uses it. */
export async function ensureEgressTools(cfg: Pick<BuilderConfig, 'depsNetwork'>, say: (line: string) => void = () => {}): Promise<void> {
  if (cfg.depsNetwork === 'egress') await ensurePackages(EGRESS_PACKAGES, say);
}
