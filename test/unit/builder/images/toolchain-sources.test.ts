import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchSource, mirrorSources } from '../../../../builder/images/toolchain.ts';
import type { ImageBuildDeps } from '../../../../builder/images/rootfs.ts';
import type { ToolchainSource } from '../../../../images/toolchains.ts';

const BODY = Buffer.from('pretend this is otp_src.tar.xz\n'.repeat(1000));
const SHA = createHash('sha256').update(BODY).digest('hex');

describe('toolchain sources are downloaded through the configured origin and kept only when they match their pin', () => {
  let server: Server;
  let cacheDir: string;
  const hits: string[] = [];
  let deps: ImageBuildDeps;
  beforeAll(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'xamal-sources-'));
    server = createServer((req, res) => {
      hits.push(req.url ?? '');
      if (req.url === '/mirror/pool/otp.tar.xz') res.end(BODY);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mirror`;
    deps = { cacheDir, toolchainOrigins: { debian: base } } as unknown as ImageBuildDeps;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await rm(cacheDir, { recursive: true, force: true });
  });
  const source = (over: Partial<ToolchainSource> = {}): ToolchainSource => ({ origin: 'debian', path: 'pool/otp.tar.xz', sha256: SHA, bytes: BODY.length, ...over });
  const leftovers = async () => (await readdir(join(cacheDir, 'toolchains', 'sources'))).filter((f) => f.endsWith('.tmp'));

  it('downloads a matching source once into the cache, under its sha256; the next call does not ask the origin', async () => {
    const file = await fetchSource(deps, source());
    expect(file).toBe(join(cacheDir, 'toolchains', 'sources', `${SHA}-otp.tar.xz`));
    expect(existsSync(file)).toBe(true);
    const before = hits.length;
    expect(await fetchSource(deps, source())).toBe(file);
    expect(hits.length).toBe(before);
  });

  it('refuses a download whose sha256 or size differs from the pin, keeping nothing', async () => {
    await expect(fetchSource(deps, source({ sha256: 'f'.repeat(64) }))).rejects.toThrow(new RegExp(`sha256 ${SHA} \\(${BODY.length} bytes\\), pinned f{64}`));
    await expect(fetchSource(deps, source({ sha256: 'e'.repeat(64), bytes: 10 }))).rejects.toThrow(/larger than its pinned 10 bytes/);
    expect(existsSync(join(cacheDir, 'toolchains', 'sources', `${'f'.repeat(64)}-otp.tar.xz`))).toBe(false);
    expect(await leftovers()).toEqual([]);
  });

  it('fails at once (not retried) on a 4xx, naming the URL and the setting to change; an unknown origin names the setting too', async () => {
    const err = (await fetchSource(deps, source({ path: 'pool/gone.tar.xz', sha256: 'd'.repeat(64) })).then(() => undefined, (e: unknown) => e)) as Error & { code?: string };
    expect(err.code).toBe('unsupported');
    expect(err.message).toMatch(/toolchain source http:\/\/127\.0\.0\.1:\d+\/mirror\/pool\/gone\.tar\.xz: HTTP 404; point XAMAL_TOOLCHAIN_ORIGINS \(debian\) at a mirror that has it/);
    await expect(fetchSource(deps, source({ origin: 'github', sha256: 'c'.repeat(64) }))).rejects.toThrow(/no base URL for origin "github"; set XAMAL_TOOLCHAIN_ORIGINS/);
  });

  it('mirrors picked sources as <origin>/<path> for a static server, once; a damaged copy is written again; a pin without a size downloads by its sha256', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xamal-mirror-'));
    try {
      const pick = { version: '27.3.4.1', source: source() };
      expect(await mirrorSources(deps, dir, [pick])).toEqual([join(dir, 'debian', 'pool', 'otp.tar.xz')]);
      expect((await readFile(join(dir, 'debian', 'pool', 'otp.tar.xz'))).equals(BODY)).toBe(true);
      expect(await mirrorSources(deps, dir, [pick])).toEqual([]);
      await writeFile(join(dir, 'debian', 'pool', 'otp.tar.xz'), 'damaged');
      expect(await mirrorSources(deps, dir, [pick])).toHaveLength(1);
      expect((await readFile(join(dir, 'debian', 'pool', 'otp.tar.xz'))).equals(BODY)).toBe(true);
      const { bytes: _bytes, ...unsized } = source();
      expect(await fetchSource(deps, unsized)).toMatch(/otp\.tar\.xz$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
