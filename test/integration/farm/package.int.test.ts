import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildApp } from '../../../api/app.ts';
import { loadCliPackage } from '../../../api/cli-package.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { PROJECT_ROOT } from '../../../localservices/config.ts';
import { localStore } from '../../../store/local.ts';

/** Issue 21 item 1: the package a user installs runs with node alone, from its compiled CLI. */

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const run = (file: string, args: string[], opts: { cwd: string; env: Record<string, string> }) =>
  new Promise<Run>((resolve) =>
    execFile(file, args, { ...opts, maxBuffer: 16 << 20 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) || 1 : 0, stdout, stderr })),
  );

describe('the installable package', () => {
  let tmp: string | undefined;
  let tarball: string | undefined;
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('npm pack, then the tarball unpacked into an empty directory and its runtime dependencies installed offline (--omit=dev) with a new HOME: xamal --version, deploy --help and config run there with node alone, without the sources or tsx', { timeout: 300_000 }, async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-package-'));
    const home = join(tmp, 'home');
    const prefix = join(tmp, 'install');
    const project = join(tmp, 'project');
    await Promise.all([home, prefix, join(project, 'config')].map((d) => mkdir(d, { recursive: true })));
    const { version } = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
    const path = process.env.PATH ?? '/usr/bin:/bin';
    // npm's own download cache stays the machine's (`npm ci` of this checkout filled it; the install
    // below is --offline: tests reach nothing but loopback); HOME is new.
    const npmEnv = { PATH: path, HOME: home, npm_config_cache: join(homedir(), '.npm'), npm_config_update_notifier: 'false' };

    const pack = await run('npm', ['pack', '--pack-destination', tmp, '--loglevel=error'], { cwd: PROJECT_ROOT, env: npmEnv });
    expect(pack.code, pack.stderr).toBe(0);
    tarball = join(tmp, pack.stdout.trim().split('\n').pop()!);
    expect(tarball).toMatch(new RegExp(`xamal-${version.replaceAll('.', '\\.')}\\.tgz$`));
    // The tarball unpacked and its runtime dependencies installed from this checkout's lockfile, offline
    // (a user's `npm install` resolves the same ranges against the registry, which tests do not reach).
    execFileSync('tar', ['-xzf', tarball, '-C', prefix]);
    const installed = join(prefix, 'package');
    const packed = (await readdir(installed)).sort();
    await copyFile(join(PROJECT_ROOT, 'package-lock.json'), join(installed, 'package-lock.json'));
    const install = await run('npm', ['ci', '--omit=dev', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: installed, env: npmEnv });
    expect(install.code, install.stderr).toBe(0);

    expect(existsSync(join(installed, 'dist', 'xamal.mjs'))).toBe(true);
    expect(packed).toEqual(['README.md', 'api', 'bin', 'deployer', 'dist', 'examples', 'images', 'package.json']);
    // The runtime dependencies are the versions package.json pins.
    const { dependencies } = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const dep of ['bullmq', 'ioredis', '@aws-sdk/client-s3', 'ssh2', 's3rver']) {
      const got = JSON.parse(await readFile(join(installed, 'node_modules', dep, 'package.json'), 'utf8')) as { version: string };
      expect(got.version, dep).toBe(dependencies[dep]);
    }
    expect(existsSync(join(installed, 'node_modules', 'tsx'))).toBe(false);
    expect(existsSync(join(installed, 'node_modules', 'vitest'))).toBe(false);

    await writeFile(join(project, 'config', 'deploy.yml'), 'service: hello\nservers:\n  - 203.0.113.10\n');
    // The package's `bin`, run as a user's shell runs it (its shebang: node from PATH).
    const { bin } = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as { bin: { xamal: string } };
    const xamal = join(installed, bin.xamal);
    const env = { PATH: path, HOME: home };
    const v = await run(xamal, ['--version'], { cwd: project, env });
    expect(v).toEqual({ code: 0, stdout: `xamal ${version}\n`, stderr: '' });
    const help = await run(xamal, ['deploy', '--help'], { cwd: project, env });
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: xamal deploy /);
    expect(help.stdout).toMatch(/\n  -h, --hosts HOSTS /);
    const config = await run(xamal, ['config'], { cwd: project, env });
    expect(config.code, config.stderr).toBe(0);
    expect(config.stdout).toMatch(/^service: hello$/m);
    expect(config.stdout).toContain('203.0.113.10');
    // The documentation pages ship too (read from the package's own files).
    const docs = await run(xamal, ['docs', 'servers'], { cwd: project, env });
    expect(docs.code, docs.stderr).toBe(0);
    expect(docs.stdout).toMatch(/servers/);
  });

  it("the GitHub Actions example's install step, run as written against a farm serving the packed tarball (XAMAL_CLI_PACKAGE): downloads it by the pinned version, checks the sha256 the farm states and installs a xamal that runs; a wrong sha256 stops it before npm runs", { timeout: 300_000 }, async () => {
    expect(tarball, 'the tarball the test above packed').toBeDefined();
    const dir = await mkdtemp(join(tmp!, 'ci-'));
    const [runner, stub, prefix, home] = ['runner', 'stub', 'prefix', 'home'].map((d) => join(dir, d)) as [string, string, string, string];
    await Promise.all([runner, stub, prefix, home].map((d) => mkdir(d, { recursive: true })));
    const app = await buildApp({ token: 'x'.repeat(32), services: { health: healthService({}), ...storeBackedServices(localStore(join(dir, 'store'))) }, logLevel: 'silent', cliPackage: await loadCliPackage(tarball!) });
    try {
      const farm = await app.listen({ host: '127.0.0.1', port: 0 });
      const info = (await (await fetch(`${farm}/v1/cli`)).json()) as { sha256: string; version: string };
      expect(info.sha256).toBe(createHash('sha256').update(await readFile(tarball!)).digest('hex'));
      const wf = parse(await readFile(join(PROJECT_ROOT, 'examples/github-actions.yml'), 'utf8')) as { env: Record<string, string>; jobs: Record<string, { steps: { name?: string; run?: string }[] }> };
      const script = wf.jobs.build!.steps.find((st) => st.name === 'Install xamal')!.run!;
      // npm on PATH is a stand-in that records its arguments and installs the downloaded file: unpacked,
      // with the runtime dependencies the test above installed from the lockfile (the registry a
      // runner's npm reaches is not loopback; the sha256 check proved the file is the packed one).
      const record = join(dir, 'npm-args');
      await writeFile(join(stub, 'npm'), [
        '#!/bin/sh',
        'set -e',
        `printf '%s\\n' "$@" > ${record}`,
        'for last; do :; done',
        `mkdir -p ${prefix}/lib/node_modules ${prefix}/bin`,
        `tar -xzf "$last" -C ${prefix}/lib/node_modules && mv ${prefix}/lib/node_modules/package ${prefix}/lib/node_modules/xamal`,
        `ln -s ${join(tmp!, 'install', 'package', 'node_modules')} ${prefix}/lib/node_modules/xamal/node_modules`,
        `ln -s ${prefix}/lib/node_modules/xamal/bin/xamal.mjs ${prefix}/bin/xamal`,
        '',
      ].join('\n'), { mode: 0o755 });
      const env = (sha256: string) => ({ PATH: `${stub}:${prefix}/bin:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: home, RUNNER_TEMP: runner, XAMAL_FARM_URL: farm, XAMAL_CLI_VERSION: wf.env.XAMAL_CLI_VERSION!, XAMAL_CLI_SHA256: sha256 });

      const wrong = await run('bash', ['-c', script], { cwd: dir, env: env('0'.repeat(64)) });
      expect(wrong.code).not.toBe(0);
      expect(wrong.stdout + wrong.stderr).toMatch(/FAILED/);
      expect(existsSync(record), 'npm ran after a failed sha256 check').toBe(false);

      const ok = await run('bash', ['-c', script], { cwd: dir, env: env(info.sha256) });
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toContain(`xamal ${info.version}`);
      expect((await readFile(record, 'utf8')).trim().split('\n')).toEqual(['install', '--global', '--no-audit', '--no-fund', join(runner, 'xamal.tgz')]);
    } finally {
      await app.close();
    }
  });
});
