import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../../api/app.ts';
import { healthService } from '../../../../api/services/health.ts';
import { storeBackedServices } from '../../../../api/services/store-backed.ts';
import { farmArtifacts, resolveKey } from '../../../../cli/commands/deploy.ts';
import { LocalExecutor, type HostFingerprint } from '../../../../core/index.ts';
import { localStore } from '../../../../store/local.ts';
import { baseConfig, testContext } from '../../../../testkit/deployer/context.ts';

const TOKEN = 'admin-token-0123456789abcdefghij';

const host = (over: Partial<HostFingerprint> = {}): HostFingerprint => ({
  os: 'linux', arch: 'x86_64', libc: 'gnu', libcVersion: '2.36', distro: 'debian', distroVersion: '12', distroCodename: 'bookworm',
  libraries: ['libc.so.6', 'libcrypto.so.3', 'libtinfo.so.6'], hostname: 'web-1', kernel: '6.1.0', ...over,
});

describe('deploy: one resolve per kind of host', () => {
  it('hosts that differ only in name, kernel or the order of their libraries share one answer', () => {
    expect(resolveKey(host({ hostname: 'web-2', kernel: '6.1.99', libraries: ['libtinfo.so.6', 'libc.so.6', 'libcrypto.so.3'] }))).toBe(resolveKey(host()));
  });

  it('a host with another library, libc or release asks on its own', () => {
    const base = resolveKey(host());
    expect(resolveKey(host({ libraries: ['libc.so.6', 'libtinfo.so.6'] }))).not.toBe(base);
    expect(resolveKey(host({ libcVersion: '2.31' }))).not.toBe(base);
    expect(resolveKey(host({ distroVersion: '13' }))).not.toBe(base);
  });
});

describe('deploy: a version the farm has no artifact of for a host', () => {
  let dir: string;
  let app: FastifyInstance;
  let farm = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-deploy-missing-'));
    app = await buildApp({ token: TOKEN, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(localStore(join(dir, 'store'))) } });
    farm = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('fails naming the exact xamal build line: origin, full commit, and the selector on the host\'s arch and release', async () => {
    const repo = join(dir, 'shop');
    await mkdir(repo);
    const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim();
    git('init', '-q');
    git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '--allow-empty', '-m', 'one');
    git('remote', 'add', 'origin', 'https://git.example/acme/shop.git');
    const commit = git('rev-parse', 'HEAD');
    const { ctx } = testContext({ config: { ...baseConfig, farm: { url: farm, target: 'otp=27' } }, env: { XAMAL_FARM_TOKEN: TOKEN } });
    const exec = new LocalExecutor({ ...process.env, GIT_DIR: join(repo, '.git') });
    const source = farmArtifacts(ctx, commit.slice(0, 10), exec)!;
    const err = await source.resolve('web1', host({ distroVersion: '13', libcVersion: '2.41' })).then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).toMatch(/^farm: no artifact of shop /);
    expect(err?.message.split('\n').at(-1)).toBe(`to build one for this host: xamal build --farm ${farm} --app shop --git https://git.example/acme/shop.git --commit ${commit} --target arch=x86_64,distro=debian13,otp=27`);
  });
});
