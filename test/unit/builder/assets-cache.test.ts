import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assetsCacheKey, assetsPatternRegExp, hashAssetsInputs, patternRoot, type AssetsKeyParts } from '../../../builder/assets-cache.ts';
import { loadBuilderSettings, loadDeployConfig } from '../../../deployer/config/load.ts';
import { PROJECT_ROOT } from '../../../localservices/config.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xamal-assets-cache-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A project at `<dir>/<name>` holding `files` (relative path → text). */
async function project(name: string, files: Record<string, string>): Promise<string> {
  const root = join(dir, name);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

const SHOP_LIKE = {
  'mix.exs': 'defmodule Shop.MixProject do\nend\n',
  'assets/js/app.js': 'import "./cart.js";\n',
  'assets/js/cart.js': 'export const cart = 1;\n',
  'lib/shop/web/page.html.heex': '<p class="text-sm">hi</p>\n',
  'lib/shop/catalog/search.ex': 'defmodule Shop.Catalog.Search do\nend\n',
  'priv/static/robots.txt': 'User-agent: *\n',
};
const INPUTS = ['assets/**', 'lib/**/*.heex'];

describe('assets inputs: path patterns', () => {
  it('`*` and `?` stay within a name, `**` spans directories (none included), a trailing `**` is everything below', () => {
    const m = (pattern: string, path: string) => assetsPatternRegExp(pattern).test(path);
    expect(m('assets/**', 'assets/js/app.js')).toBe(true);
    expect(m('assets/**', 'assets')).toBe(false);
    expect(m('assets/**', 'assetsx/app.js')).toBe(false);
    expect(m('lib/**/*.heex', 'lib/page.heex')).toBe(true);
    expect(m('lib/**/*.heex', 'lib/shop/web/page.html.heex')).toBe(true);
    expect(m('lib/**/*.heex', 'lib/shop/web/page.ex')).toBe(false);
    expect(m('lib/*.ex', 'lib/shop/a.ex')).toBe(false);
    expect(m('tailwind.config.js', 'tailwind.config.js')).toBe(true);
    expect(m('tailwind.config.js', 'tailwindxconfigxjs')).toBe(false);
    expect(m('assets/app.?s', 'assets/app.js')).toBe(true);
    expect(m('assets/app.?s', 'assets/app.tsx')).toBe(false);
  });

  it('a pattern\'s files all lie under its names before the first wildcard', () => {
    expect(patternRoot('assets/**')).toBe('assets');
    expect(patternRoot('lib/shop/**/*.heex')).toBe('lib/shop');
    expect(patternRoot('lib/*/web/*.ex')).toBe('lib');
    expect(patternRoot('tailwind.config.js')).toBe('');
  });
});

describe('assets inputs: hashed from the checkout', () => {
  it('changes when a matching file or one of the source\'s priv/static files changes, not when another file does', async () => {
    const base = await hashAssetsInputs(await project('a', SHOP_LIKE), INPUTS);
    expect(base).toEqual({ hash: expect.stringMatching(/^[0-9a-f]{64}$/), files: 4 });
    expect(await hashAssetsInputs(await project('a-again', SHOP_LIKE), INPUTS)).toEqual(base);
    expect(await hashAssetsInputs(await project('lib-only', { ...SHOP_LIKE, 'lib/shop/catalog/search.ex': 'defmodule Shop.Catalog.Search do\n  def x, do: 1\nend\n' }), INPUTS)).toEqual(base);
    const changes: Record<string, Record<string, string>> = {
      js: { 'assets/js/cart.js': 'export const cart = 2;\n' },
      heex: { 'lib/shop/web/page.html.heex': '<p class="text-lg">hi</p>\n' },
      static: { 'priv/static/robots.txt': 'User-agent: bot\n' },
      added: { 'assets/css/app.css': 'body{}\n' },
    };
    for (const [name, change] of Object.entries(changes)) {
      const other = await hashAssetsInputs(await project(`changed-${name}`, { ...SHOP_LIKE, ...change }), INPUTS);
      expect(other, name).not.toEqual(base);
      expect(other, name).toHaveProperty('hash');
    }
    // A file moved to another name is another input.
    const { 'assets/js/cart.js': cart, ...rest } = SHOP_LIKE;
    expect(await hashAssetsInputs(await project('renamed', { ...rest, 'assets/js/basket.js': cart }), INPUTS)).not.toEqual(base);
  });

  it('says why it cannot hash — a pattern matching nothing, a link among the inputs — so the step runs', async () => {
    expect(await hashAssetsInputs(await project('typo', SHOP_LIKE), ['asset/**'])).toEqual({ problem: 'the input pattern asset/** matches no file' });
    const linked = await project('linked', SHOP_LIKE);
    await symlink('/etc/hostname', join(linked, 'assets', 'js', 'host.js'));
    expect(await hashAssetsInputs(linked, INPUTS)).toEqual({ problem: 'assets/js/host.js is a symbolic link' });
    const linkedStatic = await project('linked-static', SHOP_LIKE);
    await rm(join(linkedStatic, 'priv', 'static'), { recursive: true });
    await symlink('/etc', join(linkedStatic, 'priv', 'static'));
    expect(await hashAssetsInputs(linkedStatic, INPUTS)).toEqual({ problem: 'priv/static is a symbolic link' });
  });
});

describe('assets cache key', () => {
  const parts: AssetsKeyParts = {
    app: 'shop', imageDigest: `sha256:${'d'.repeat(64)}`, mixEnv: 'prod', lockHash: 'lock', configHash: 'config',
    command: ['mix', 'assets.deploy'], env: { A: '1', B: '2' }, patterns: INPUTS, inputsHash: 'inputs',
  };

  it('is equal only when every part is: app, image, MIX_ENV, mix.lock, config, command, environment, patterns and inputs', () => {
    const key = assetsCacheKey(parts);
    expect(key).toMatch(/^assets-[0-9a-f]{32}$/);
    expect(assetsCacheKey({ ...parts, env: { B: '2', A: '1' }, patterns: [...INPUTS].reverse() })).toBe(key);
    const changes: Partial<AssetsKeyParts>[] = [
      { app: 'twin' }, { imageDigest: `sha256:${'e'.repeat(64)}` }, { mixEnv: 'staging' }, { lockHash: 'lock2' }, { configHash: 'config2' },
      { command: ['mix', 'assets.build'] }, { env: { A: '1' } }, { patterns: ['assets/**'] }, { inputsHash: 'inputs2' },
    ];
    const keys = changes.map((c) => assetsCacheKey({ ...parts, ...c }));
    expect(new Set([key, ...keys]).size).toBe(changes.length + 1);
  });
});

describe('examples/shop declares what its assets step reads', () => {
  it('its deploy.yml names the bundler\'s sources and the code of its asset tasks (digest, JSON), and every pattern matches files there', async () => {
    const shop = join(PROJECT_ROOT, 'examples', 'shop');
    const settings = await loadBuilderSettings(shop, {});
    expect(settings?.assets?.inputs).toEqual(['assets/**', 'lib/mix/tasks/**', 'lib/shop/assets/**', 'lib/shop/json/**']);
    expect(await hashAssetsInputs(shop, settings!.assets!.inputs)).toHaveProperty('hash');
    // The whole file is a valid deploy configuration, not a builder section alone.
    expect((await loadDeployConfig({ root: shop, env: {} })).config.builder.assets).toEqual(settings!.assets);
  });
});
