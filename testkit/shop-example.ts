import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Arch } from '../core/index.ts';
import type { BuildAssets } from '../core/contracts/build-settings.ts';
import { loadBuilderSettings } from '../deployer/config/load.ts';
import { PROJECT_ROOT } from '../localservices/config.ts';
import { exampleRepo, git } from './example-repo.ts';

/**
 * examples/shop as the farm builds it in tests: its git dependency (examples/shop_hash) served over
 * git's dumb HTTP and an npm registry stand-in holding the esbuild package its `mix assets.deploy`
 * fetches — both static files under one directory that a test serves on an address the build's
 * egress proxy allows (testkit/egress/netns.ts).
 */

/** The esbuild version examples/shop's `shop.esbuild` task fetches (the project's own dev dependency). */
export const SHOP_ESBUILD_VERSION = '0.28.2';

const ESBUILD_PLATFORM: Partial<Record<Arch, string>> = { x86_64: 'linux-x64', aarch64: 'linux-arm64' };

/**
 * The package tarball npm fetched for this project (`~/.npm/_cacache`, content-addressed by the
 * integrity package-lock.json records): the registry's own bytes, so its sha512 is the registry's.
 */
async function cachedEsbuildTarball(pkg: string): Promise<{ tgz: Buffer; integrity: string }> {
  const lock = JSON.parse(await readFile(join(PROJECT_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; integrity?: string }> };
  const entry = lock.packages[`node_modules/@esbuild/${pkg}`];
  if (entry?.version !== SHOP_ESBUILD_VERSION || !entry.integrity?.startsWith('sha512-')) {
    throw new Error(`package-lock.json has no @esbuild/${pkg}@${SHOP_ESBUILD_VERSION} with a sha512 integrity`);
  }
  const hex = Buffer.from(entry.integrity.slice('sha512-'.length), 'base64').toString('hex');
  const path = join(homedir(), '.npm', '_cacache', 'content-v2', 'sha512', hex.slice(0, 2), hex.slice(2, 4), hex.slice(4));
  const cached = await readFile(path).catch(() => undefined);
  if (!cached) return packInstalled(pkg);
  const actual = sha512(cached);
  if (actual !== entry.integrity) throw new Error(`npm's cache holds a corrupt @esbuild/${pkg} tarball (${actual})`);
  return { tgz: cached, integrity: entry.integrity };
}

const sha512 = (data: Buffer) => `sha512-${createHash('sha512').update(data).digest('base64')}`;

/** Without npm's cache: the installed package (node_modules) packed as npm packs one (entries under `package/`). */
async function packInstalled(pkg: string): Promise<{ tgz: Buffer; integrity: string }> {
  const dir = join(PROJECT_ROOT, 'node_modules', '@esbuild', pkg);
  if (!existsSync(join(dir, 'bin', 'esbuild'))) throw new Error(`@esbuild/${pkg}@${SHOP_ESBUILD_VERSION} is neither in npm's cache nor installed (${dir}); run \`npm ci\` once`);
  const tgz = execFileSync('tar', ['-czf', '-', '--owner=0', '--group=0', '--transform', 's,^\\.,package,', '-C', dir, '.'], { maxBuffer: 64 * 1024 * 1024 });
  return { tgz, integrity: sha512(tgz) };
}

/**
 * Writes the registry's answers for `@esbuild/<platform>@version` under `www` as a static server
 * serves them at `baseUrl`: the version document (`/@esbuild/<platform>/<version>`, naming the
 * tarball and its integrity) and the tarball (`/@esbuild/<platform>/-/<platform>-<version>.tgz`).
 */
export async function writeNpmRegistryStandin(www: string, baseUrl: string, arch: Arch): Promise<{ integrity: string }> {
  const pkg = ESBUILD_PLATFORM[arch];
  if (!pkg) throw new Error(`examples/shop's esbuild task has no package for ${arch} (x86_64 and aarch64 only)`);
  const { tgz, integrity } = await cachedEsbuildTarball(pkg);
  const dir = join(www, '@esbuild', pkg);
  await mkdir(join(dir, '-'), { recursive: true });
  const file = `${pkg}-${SHOP_ESBUILD_VERSION}.tgz`;
  await writeFile(join(dir, '-', file), tgz);
  const doc = { name: `@esbuild/${pkg}`, version: SHOP_ESBUILD_VERSION, dist: { integrity, tarball: `${baseUrl}/@esbuild/${pkg}/-/${file}` } };
  await writeFile(join(dir, SHOP_ESBUILD_VERSION), JSON.stringify(doc));
  return { integrity };
}

/** examples/shop_hash as a bare repository under `www` (served as `<baseUrl>/shop_hash.git`); its commit. */
export async function serveShopHashRepo(work: string, www: string): Promise<string> {
  const { commit } = await exampleRepo('shop_hash', join(work, 'shop_hash'));
  const bare = join(www, 'shop_hash.git');
  git(work, 'clone', '-q', '--bare', '--no-local', join(work, 'shop_hash'), bare);
  // One pack instead of loose objects: a dumb-HTTP fetch is then a few requests, not one per object.
  git(bare, 'repack', '-a', '-d', '-q');
  git(bare, 'update-server-info');
  return commit;
}

/** The build environment that points examples/shop at the served dependency and registry. */
export function shopBuildEnv(baseUrl: string, shopHashCommit: string): Record<string, string> {
  return { SHOP_HASH_GIT: `${baseUrl}/shop_hash.git`, SHOP_HASH_REF: shopHashCommit, NPM_CONFIG_REGISTRY: baseUrl };
}

/** What examples/shop's assets step reads, as its config/deploy.yml declares it (`builder.assets`): what `xamal build` sends. */
export async function shopAssetsInputs(): Promise<BuildAssets> {
  const settings = await loadBuilderSettings(join(PROJECT_ROOT, 'examples', 'shop'), {});
  if (!settings?.assets) throw new Error('examples/shop/config/deploy.yml declares no builder.assets');
  return settings.assets;
}

/** examples/shop as a git repository at `dir`; its file:// URL and commit. */
export function shopRepo(dir: string): Promise<{ url: string; commit: string }> {
  return exampleRepo('shop', dir);
}
