/**
 * examples/shop as the benchmarks build it (P1, P2): its git dependency (examples/shop_hash, served
 * over git's dumb HTTP) and the npm registry stand-in holding the esbuild its `mix assets.deploy`
 * fetches, both on an address of a network namespace of the bench's own (testkit/egress/netns.ts) —
 * what test/integration/farm/shop-example.int.test.ts builds. The farm's deps and assets steps reach
 * that address through its egress proxy alone (`allow`). For the raw `docker run` side, `rawProxy`
 * is the same proxy program (tinyproxy) with the same filter on the machine's loopback, reached with
 * `--network host` (the project's dockerd has no bridge), i.e. the farm's arrangement minus the
 * per-step network namespace.
 * And the engine lock the integration tests take (PREAMBLE: benchmarks that use the engine take it),
 * held per pair of runs with the services and the farm up only inside it (`withPairFarm`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { EGRESS_PACKAGES, proxyConfig, proxyFilter, type AllowEntry } from '../builder/egress.ts';
import { ensurePackages } from '../localservices/index.ts';
import { hostArch } from '../builder/images/context.ts';
import { upTestNetns } from '../testkit/egress/netns.ts';
import { serveShopHashRepo, shopAssetsInputs, shopBuildEnv, shopRepo, writeNpmRegistryStandin } from '../testkit/shop-example.ts';
import type { BuildAssets } from '../core/contracts/build-settings.ts';
import { prepare, say, startBenchFarm, stopStartedServices, type BenchFarm } from './farm.ts';

export interface ShopSources {
  /** examples/shop's repository (file://) and its working tree, for new commits. */
  url: string;
  repoDir: string;
  commit: string;
  /** The build env that points the shop at the served dependency and registry. */
  env: Record<string, string>;
  /** What the egress proxy must allow: the served address, port 80. */
  allow: AllowEntry[];
  /** What its assets step reads, as its config/deploy.yml declares it (sent with each build, as `xamal build` does). */
  assets: BuildAssets;
  close(): Promise<void>;
}

/** The shop's repository at `<dir>/repos/shop` and its dependency and registry served from a namespace. */
export async function shopSources(dir: string): Promise<ShopSources> {
  const www = join(dir, 'www');
  await mkdir(www, { recursive: true });
  const netns = await upTestNetns('bench', www);
  // Stopped with ^C or a signal: the namespace, its link and its server go too.
  const onSignal = () => void netns.close().finally(() => process.exit(130));
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  const close = async () => {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    await netns.close();
  };
  try {
    const base = `http://${netns.allowed}`;
    await writeNpmRegistryStandin(www, base, hostArch());
    const hashCommit = await serveShopHashRepo(join(dir, 'repos'), www);
    const repoDir = join(dir, 'repos', 'shop');
    const { url, commit } = await shopRepo(repoDir);
    return { url, repoDir, commit, env: shopBuildEnv(base, hashCommit), allow: [{ host: netns.allowed, port: 80 }], assets: await shopAssetsInputs(), close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** tinyproxy with the farm's configuration and filter for `allow`, on a loopback port: `http://127.0.0.1:<port>`. */
export async function rawProxy(dir: string, allow: readonly AllowEntry[]): Promise<{ url: string; close(): void }> {
  await ensurePackages(EGRESS_PACKAGES, say); // the farm installs its proxy the same way (farm/build-deps.ts)
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const filterPath = join(dir, 'allow.filter');
  const confPath = join(dir, 'tinyproxy.conf');
  await writeFile(filterPath, proxyFilter(allow));
  await writeFile(confPath, proxyConfig({ port, filterPath }));
  const child: ChildProcess = spawn('tinyproxy', ['-d', '-c', confPath], { stdio: 'ignore' });
  child.on('error', () => {});
  const end = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((r) => {
      const s = connect({ host: '127.0.0.1', port }, () => (s.destroy(), r(true)));
      s.on('error', () => r(false));
    });
    if (up) break;
    if (Date.now() > end || child.exitCode !== null) throw new Error(`tinyproxy did not listen on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `http://127.0.0.1:${port}`, close: () => void child.kill('SIGTERM') };
}

/** The lock the integration tests take around the engine and the lab (PREAMBLE.md). */
export const ENGINE_LOCK = '/tmp/xamal-int.lock';

let lockHeldByCaller = false;

/**
 * `--lock-held`: whoever started the bench holds ENGINE_LOCK for its whole run (`flock
 * /tmp/xamal-int.lock npx tsx bench/…`, e.g. several benches in one turn), so it is not taken again
 * per pair (a second flock on it from here would wait for ever).
 */
export function engineLockHeldByCaller(held: boolean | undefined): void {
  lockHeldByCaller = held === true;
}

/**
 * Runs `fn` holding ENGINE_LOCK (flock(1), as the tests take it), so other users' runs go between
 * two of these calls. The lock is held by a `flock … cat` child and let go by closing its stdin.
 */
export async function withEngineLock<T>(fn: () => Promise<T>): Promise<T> {
  if (lockHeldByCaller) return fn();
  const t0 = Date.now();
  const child = spawn('flock', [ENGINE_LOCK, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => b.toString().includes('locked') && resolve());
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`flock ${ENGINE_LOCK} exited with ${code}`)));
  });
  const waited = Date.now() - t0;
  if (waited > 1000) say(`(waited ${Math.round(waited / 1000)} s for ${ENGINE_LOCK})`);
  try {
    return await fn();
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.stdin!.end();
    await exited;
  }
}

/**
 * Runs `fn` with a farm (store and caches under `dir`, kept across calls) holding the engine lock:
 * the services are brought up first and the ones this call started stopped after (their ports and
 * the engine's data root are the same for every checkout on this machine, so nothing of ours may
 * stay up while others run between two pairs).
 */
export function withPairFarm<T>(dir: string, allow: AllowEntry[] | undefined, fn: (farm: BenchFarm) => Promise<T>): Promise<T> {
  return withEngineLock(async () => {
    try {
      await prepare(['bookworm']);
      const farm = await startBenchFarm(dir, 1, allow);
      try {
        return await fn(farm);
      } finally {
        await farm.close();
      }
    } finally {
      await stopStartedServices();
    }
  });
}
