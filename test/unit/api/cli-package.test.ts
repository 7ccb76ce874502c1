import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { loadCliPackage, type ServedCliPackage } from '../../../api/cli-package.ts';
import { farmConfig } from '../../../api/config.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { localStore } from '../../../store/local.ts';

const TOKEN = 'x'.repeat(32);
let dir: string;
let app: FastifyInstance | undefined;
const body = gzipSync(Buffer.from('package/package.json stand-in'));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xamal-cli-package-'));
  await writeFile(join(dir, 'xamal-1.2.3.tgz'), body);
  await writeFile(join(dir, 'xamal-1.2.3-plain.tgz'), 'not gzip');
  await writeFile(join(dir, 'other-1.0.0.tgz'), body);
});
afterAll(() => rm(dir, { recursive: true, force: true }));
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function build(cliPackage?: ServedCliPackage): Promise<FastifyInstance> {
  app = await buildApp({ token: TOKEN, services: { health: healthService({}), ...storeBackedServices(localStore('/nonexistent-xamal-store')) }, logLevel: 'silent', ...(cliPackage ? { cliPackage } : {}) });
  return app;
}

describe('the xamal package a farm serves to CI runners (GET /v1/cli)', () => {
  it('describes the tarball (version from its name, sha256 and size of its bytes) and serves exactly those bytes, without a token', async () => {
    const a = await build(await loadCliPackage(join(dir, 'xamal-1.2.3.tgz')));
    const sha256 = createHash('sha256').update(body).digest('hex');
    const info = await a.inject({ method: 'GET', url: '/v1/cli' });
    expect(info.statusCode).toBe(200);
    expect(info.json()).toEqual({ name: 'xamal', version: '1.2.3', file: 'xamal-1.2.3.tgz', sha256, size: body.length, url: '/v1/cli/xamal-1.2.3.tgz' });
    const tgz = await a.inject({ method: 'GET', url: '/v1/cli/xamal-1.2.3.tgz' });
    expect(tgz.statusCode).toBe(200);
    expect(tgz.headers['content-type']).toBe('application/gzip');
    expect(tgz.headers['x-checksum-sha256']).toBe(sha256);
    expect(createHash('sha256').update(tgz.rawPayload).digest('hex')).toBe(sha256);
  });

  it('answers 404 for another version, naming the one it serves', async () => {
    const a = await build(await loadCliPackage(join(dir, 'xamal-1.2.3.tgz')));
    const res = await a.inject({ method: 'GET', url: '/v1/cli/xamal-1.2.4.tgz' });
    expect(res.statusCode).toBe(404);
    expect(res.json().message).toContain('this farm serves xamal-1.2.3.tgz');
  });

  it('answers 404 naming the setting when the farm serves no package', async () => {
    const res = await (await build()).inject({ method: 'GET', url: '/v1/cli' });
    expect(res.statusCode).toBe(404);
    expect(res.json().message).toContain('XAMAL_CLI_PACKAGE');
  });

  it('refuses at start a file that is not named xamal-<version>.tgz, is not gzip, or is missing, naming XAMAL_CLI_PACKAGE', async () => {
    await expect(loadCliPackage(join(dir, 'other-1.0.0.tgz'))).rejects.toThrow(/XAMAL_CLI_PACKAGE: expected the path of an npm pack tarball named xamal-<version>\.tgz/);
    await expect(loadCliPackage(join(dir, 'xamal-1.2.3-plain.tgz'))).rejects.toThrow(/XAMAL_CLI_PACKAGE: expected a gzip tarball/);
    await expect(loadCliPackage(join(dir, 'xamal-9.9.9.tgz'))).rejects.toThrow(/XAMAL_CLI_PACKAGE: no such file/);
  });

  it('is configured by XAMAL_CLI_PACKAGE', () => {
    expect(farmConfig({ XAMAL_CLI_PACKAGE: '/srv/xamal-1.2.3.tgz' }).cliPackagePath).toBe('/srv/xamal-1.2.3.tgz');
    expect(farmConfig({}).cliPackagePath).toBeUndefined();
  });
});
