import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shopBuildEnv, SHOP_ESBUILD_VERSION, writeNpmRegistryStandin } from '../../../testkit/shop-example.ts';

describe('the npm registry stand-in for examples/shop', () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves esbuild\'s version document naming a tarball whose sha512 is the integrity it gives', async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-npm-standin-'));
    const { integrity } = await writeNpmRegistryStandin(dir, 'http://10.0.0.2', 'x86_64');
    const doc = JSON.parse(await readFile(join(dir, '@esbuild', 'linux-x64', SHOP_ESBUILD_VERSION), 'utf8')) as { name: string; version: string; dist: { tarball: string; integrity: string } };
    expect(doc).toEqual({ name: '@esbuild/linux-x64', version: SHOP_ESBUILD_VERSION, dist: { integrity, tarball: `http://10.0.0.2/@esbuild/linux-x64/-/linux-x64-${SHOP_ESBUILD_VERSION}.tgz` } });
    const tgz = await readFile(join(dir, new URL(doc.dist.tarball).pathname));
    expect(`sha512-${createHash('sha512').update(tgz).digest('base64')}`).toBe(integrity);
  });

  it('points the build at the served dependency (pinned to its commit) and registry', () => {
    expect(shopBuildEnv('http://10.0.0.2', 'a'.repeat(40))).toEqual({ SHOP_HASH_GIT: 'http://10.0.0.2/shop_hash.git', SHOP_HASH_REF: 'a'.repeat(40), NPM_CONFIG_REGISTRY: 'http://10.0.0.2' });
  });
});
