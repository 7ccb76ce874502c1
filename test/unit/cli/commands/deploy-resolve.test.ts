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
import { isXamalError, LocalExecutor, XamalError, type HostFingerprint } from '../../../../core/index.ts';
import type { FarmClient } from '../../../../deployer/farm-client.ts';
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

describe('deploy --build: the farm builds what a host has no artifact for, and the deploy waits', () => {
  const TUPLE = 'linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3';
  const SHA = 'a'.repeat(64);
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-deploy-build-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A checkout at `dir/name` with one commit, and `origin` when given. */
  const checkout = async (name: string, origin?: string) => {
    const repo = join(dir, name);
    await mkdir(repo);
    const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim();
    git('init', '-q');
    execFileSync('sh', ['-c', 'echo "defmodule Shop.MixProject do end" > mix.exs'], { cwd: repo });
    git('add', '-A');
    git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '-m', 'one');
    if (origin) git('remote', 'add', 'origin', origin);
    return { commit: git('rev-parse', 'HEAD'), exec: new LocalExecutor({ ...process.env, GIT_DIR: join(repo, '.git') }) };
  };

  /** The farm's side, as the deploy sees it through its client: no artifact until the build completed. */
  function farm(end: 'completed' | 'failed') {
    const seen = { submitted: [] as unknown[], uploads: 0, statusCalls: 0 };
    let built = false;
    const states = [{ state: 'active', phase: 'deps' }, { state: 'active', phase: 'compile' }, end === 'completed' ? { state: 'completed', phase: 'done' } : { state: 'failed', failedReason: 'compile failed with exit code 1' }];
    const client = {
      async resolve() {
        if (!built) throw new XamalError('not_found', 'farm: no artifact of shop for this host');
        return { artifact: { tuple: TUPLE, sha256: SHA } };
      },
      async submit(body: unknown) {
        seen.submitted.push(body);
        return { status: 202, body: { buildSet: 's', builds: [{ id: 'b1', tuple: TUPLE, status: 'queued' }], unresolved: [] } };
      },
      async status(id: string) {
        const st = states[Math.min(seen.statusCalls++, states.length - 1)]!;
        if (st.state === 'completed') built = true;
        return { id, arch: 'x86_64', attemptsMade: 0, createdAt: 0, ...st };
      },
      async logs() {
        return '==> compile: mix release\n** (CompileError) lib/shop.ex:3: undefined function nope/0\n';
      },
      async uploadSource() {
        seen.uploads++;
        return { archive: `sources/${'b'.repeat(64)}.tar.gz`, sha256: 'b'.repeat(64), size: 10 };
      },
    } as unknown as FarmClient;
    return { client, seen };
  }

  const deployCtx = () => testContext({ config: { ...baseConfig, farm: { url: 'http://127.0.0.1:1', target: 'otp=27' } }, env: { XAMAL_FARM_TOKEN: TOKEN } }).ctx;

  it('asks for the host\'s build from the checkout\'s origin at the full commit, says each phase, and deploys what it built', async () => {
    const { commit, exec } = await checkout('with-origin', 'https://git.example/acme/shop.git');
    const { client, seen } = farm('completed');
    const said: string[] = [];
    const source = farmArtifacts(deployCtx(), commit.slice(0, 10), exec, { client, build: { say: (l) => void said.push(l), pollMs: 1 } })!;
    await expect(source.resolve('web1', host({ distroVersion: '13', libcVersion: '2.41' }))).resolves.toEqual({ tuple: TUPLE, sha256: SHA });
    expect(seen.submitted).toEqual([{ app: 'shop', source: { git: 'https://git.example/acme/shop.git', commit }, targets: [{ otp: '27', arch: 'x86_64', distro: 'debian13' }], mixEnv: 'prod' }]);
    expect(said).toEqual([
      `web1: the farm has no artifact of shop ${commit.slice(0, 10)} for this host; building it`,
      `build ${TUPLE}: active (deps)`,
      `build ${TUPLE}: active (compile)`,
      `build ${TUPLE}: completed`,
    ]);
    expect(seen.uploads).toBe(0);
  });

  it('uploads the commit when the checkout has no origin', async () => {
    const { commit, exec } = await checkout('no-origin');
    const { client, seen } = farm('completed');
    const source = farmArtifacts(deployCtx(), commit, exec, { client, build: { say: () => {}, pollMs: 1 } })!;
    await source.resolve('web1', host());
    expect(seen.uploads).toBe(1);
    expect(seen.submitted).toEqual([{ app: 'shop', source: { archive: `sources/${'b'.repeat(64)}.tar.gz`, sha256: 'b'.repeat(64), commit }, targets: [{ otp: '27', arch: 'x86_64', distro: 'debian12' }], mixEnv: 'prod' }]);
  });

  it('a failed build fails the host with the build\'s log tail and reason', async () => {
    const { commit, exec } = await checkout('failing', 'https://git.example/acme/shop.git');
    const { client } = farm('failed');
    const source = farmArtifacts(deployCtx(), commit, exec, { client, build: { say: () => {}, pollMs: 1 } })!;
    const err = await source.resolve('web1', host()).then(() => undefined, (e: unknown) => e as Error);
    expect(isXamalError(err) && err.code).toBe('build_failed');
    expect(err?.message).toBe(`the farm's build of shop ${commit} for this host failed\n--- ${TUPLE} failed:\n==> compile: mix release\n** (CompileError) lib/shop.ex:3: undefined function nope/0\ncompile failed with exit code 1`);
  });
});
