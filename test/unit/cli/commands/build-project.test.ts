import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../../../api/app.ts';
import type { BuildRequest, BuildStatus, SubmitResult } from '../../../../api/schemas/builds.ts';
import type { BuildService } from '../../../../api/services/builds.ts';
import { healthService } from '../../../../api/services/health.ts';
import { storeBackedServices } from '../../../../api/services/store-backed.ts';
import build from '../../../../cli/commands/build.ts';
import type { Io } from '../../../../cli/io.ts';
import { localStore } from '../../../../store/local.ts';

const TOKEN = 'admin-token-0123456789abcdefghij';
const T = 'linux-x86_64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3';
const B = `b${'1'.repeat(32)}`;
const DONE: BuildStatus = { id: B, arch: 'x86_64', state: 'completed', phase: 'done', attemptsMade: 1, createdAt: 1, result: { manifestKey: `artifacts/hello/${'c'.repeat(40)}/${T}/manifest.json`, tuple: T, sha256: 'a'.repeat(64), cached: false } };

describe('xamal build takes its targets from .tool-versions and sends mix.exs\'s elixir: requirement', () => {
  let app: FastifyInstance;
  let dir: string;
  let farm = '';
  const received: BuildRequest[] = [];
  const builds: BuildService = {
    submit: async (req) => (received.push(req), { buildSet: `s${'2'.repeat(32)}`, builds: [{ id: B, tuple: T, status: 'done' }], unresolved: [] } satisfies SubmitResult),
    status: async () => DONE,
    logs: async () => undefined,
    cancel: async () => 'unknown',
    buildSet: async () => undefined,
    list: async () => ({ builds: [] }),
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-build-project-'));
    app = await buildApp({ token: TOKEN, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(localStore(join(dir, 'store'))), builds } });
    farm = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  // The unit project restores stubbed variables after each test.
  beforeEach(() => void vi.stubEnv('XAMAL_FARM_TOKEN', TOKEN));
  afterAll(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (args: string[]) => {
    const err: string[] = [];
    const io: Io = { out: () => {}, err: (t) => void err.push(t), interrupted: () => new Promise(() => {}) };
    const code = await build.run(['--farm', farm, '--app', 'hello', '--git', 'https://github.com/acme/hello.git', '--commit', 'c'.repeat(40), '--json', ...args], io);
    return { code, err: err.join('\n') };
  };

  it('without --target or --matrix: one selector of the erlang and elixir lines, and the requirement beside it', async () => {
    const project = join(dir, 'app');
    await mkdir(project);
    await writeFile(join(project, '.tool-versions'), 'erlang 27.3.4.1\nelixir 1.18.3-otp-27\n');
    await writeFile(join(project, 'mix.exs'), 'defmodule Hello.MixProject do\n  def project, do: [app: :hello, elixir: "~> 1.15"]\nend\n');
    const r = await run(['--project', project]);
    expect(r.code).toBe(0);
    expect(r.err).toContain('targets from .tool-versions: otp=27.3.4.1, elixir=1.18.3');
    expect(received.at(-1)).toMatchObject({ targets: [{ kind: 'selector', selector: { otp: '27.3.4.1', elixir: '1.18.3' } }], elixirRequirement: '~> 1.15' });
  });

  it('explicit targets win over .tool-versions; with neither, the usage error names all three ways', async () => {
    const project = join(dir, 'app');
    expect((await run(['--project', project, '--target', T])).code).toBe(0);
    expect(received.at(-1)!.targets).toEqual([expect.objectContaining({ kind: 'tuple', raw: T })]);
    const empty = await mkdtemp(join(dir, 'empty-'));
    await expect(run(['--project', empty])).rejects.toThrow(/missing --target or --matrix \(or a \.tool-versions with erlang and elixir lines\)/);
  });

  it('with explicit targets an unreadable .tool-versions is not read at all; without them it is an error naming the line', async () => {
    const project = await mkdtemp(join(dir, 'broken-'));
    await writeFile(join(project, '.tool-versions'), 'erlang\n');
    expect((await run(['--project', project, '--target', T])).code).toBe(0);
    await expect(run(['--project', project])).rejects.toThrow(/\.tool-versions/);
  });

  it('--source packs the repository\'s HEAD with git archive, uploads it, and asks for that archive and commit (no remote needed)', async () => {
    const repo = await mkdtemp(join(dir, 'private-'));
    const git = (...a: string[]) => execFileSync('git', a, { cwd: repo, encoding: 'utf8' }).trim();
    git('init', '-q');
    await writeFile(join(repo, 'mix.exs'), 'defmodule Hello.MixProject do\n  def project, do: [app: :hello]\nend\n');
    git('add', '-A');
    git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '-m', 'one');
    const head = git('rev-parse', 'HEAD');
    const err: string[] = [];
    const io: Io = { out: () => {}, err: (t) => void err.push(t), interrupted: () => new Promise(() => {}) };
    expect(await build.run(['--farm', farm, '--app', 'hello', '--source', repo, '--target', T], io)).toBe(0);
    const source = received.at(-1)!.source as { archive: string; sha256: string; commit: string };
    expect(source.commit).toBe(head);
    expect(source.archive).toBe(`sources/${source.sha256}.tar.gz`);
    const stored = await readFile(join(dir, 'store', source.archive));
    expect(createHash('sha256').update(stored).digest('hex')).toBe(source.sha256);
    expect(execFileSync('sh', ['-c', 'gzip -dc | git get-tar-commit-id'], { input: stored, encoding: 'utf8' }).trim()).toBe(head);
    expect(err.join('\n')).toMatch(/upload [0-9a-f]{12}: 100% of \d+ bytes/);
  });

  it('--source with a rev that is no commit there, or with --git too, is a usage error naming it', async () => {
    const io: Io = { out: () => {}, err: () => {}, interrupted: () => new Promise(() => {}) };
    await expect(build.run(['--farm', farm, '--app', 'hello', '--source', dir, '--ref', 'nope', '--target', T], io)).rejects.toThrow(/--source .*: "nope" is not a commit of a git repository there/);
    await expect(build.run(['--farm', farm, '--app', 'hello', '--source', dir, '--git', 'https://git.example/a.git', '--target', T], io)).rejects.toThrow(/give --git or --source, not both/);
  });

  it('sends builder.env, builder.secrets (values from its environment), builder.packages, builder.assets and release.mix_env of the project\'s deploy.yml, with --env and --secret on top', async () => {
    const project = join(dir, 'with-builder');
    await mkdir(join(project, 'config'), { recursive: true });
    await writeFile(join(project, 'mix.exs'), 'defmodule Hello.MixProject do\nend\n');
    await writeFile(join(project, 'config', 'deploy.yml'), 'service: hello\nrelease:\n  mix_env: staging\nbuilder:\n  env:\n    NODE_ENV: production\n  secrets:\n    - HEX_API_KEY\n  packages:\n    - libvips-dev\n  assets:\n    inputs: ["lib/**/*.heex", "assets/**"]\n');
    vi.stubEnv('HEX_API_KEY', 'hexkey-from-ci');
    vi.stubEnv('GIT_TOKEN', 'ghp_from_ci');
    received.length = 0;
    const r = await run(['--project', project, '--target', T, '--env', 'EXTRA=1=2', '--secret', 'GIT_TOKEN']);
    expect(r.code, r.err).toBe(0);
    expect(received[0]).toMatchObject({ mixEnv: 'staging', env: { NODE_ENV: 'production', EXTRA: '1=2' }, secrets: { HEX_API_KEY: 'hexkey-from-ci', GIT_TOKEN: 'ghp_from_ci' }, packages: ['libvips-dev'], assets: { inputs: ['assets/**', 'lib/**/*.heex'] } });
    expect(r.err).not.toContain('hexkey-from-ci');

    vi.stubEnv('HEX_API_KEY', '');
    await expect(run(['--project', project, '--target', T])).rejects.toMatchObject({ code: 'usage', message: expect.stringContaining('secret HEX_API_KEY (builder.secrets or --secret): no value in the environment of xamal build') });

    await writeFile(join(project, 'config', 'deploy.yml'), 'service: hello\nbuilder:\n  env:\n    "bad name": x\n');
    await expect(run(['--project', project, '--target', T])).rejects.toMatchObject({ code: 'validation', issues: [expect.objectContaining({ path: "builder/env/bad name", message: expect.stringContaining("expected an environment variable name") })] });
    await writeFile(join(project, 'config', 'deploy.yml'), 'service: hello\nbuilder:\n  assets:\n    inputs: ["../elsewhere/**"]\n');
    await expect(run(['--project', project, '--target', T])).rejects.toMatchObject({ code: 'validation', issues: [expect.objectContaining({ path: 'builder/assets/inputs/0', message: expect.stringContaining('expected a path relative to the project root') })] });
  });
  it('runs the project\'s pre-build hook (hooks_path of its deploy.yml) before asking the farm; a failing one stops it there; -H skips it', async () => {
    const project = join(dir, 'with-hooks');
    await mkdir(join(project, 'config'), { recursive: true });
    await mkdir(join(project, 'ops', 'hooks'), { recursive: true });
    await writeFile(join(project, 'config', 'deploy.yml'), 'service: shop\nhooks_path: ops/hooks\n');
    const hook = async (body: string) => writeFile(join(project, 'ops', 'hooks', 'pre-build'), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    const marker = join(project, 'pre-build.log');
    await hook(`echo "$XAMAL_SERVICE $XAMAL_VERSION $XAMAL_COMMAND hosts=$XAMAL_HOSTS in $(pwd)" >> ${marker}`);
    received.length = 0;
    const r = await run(['--project', project, '--target', T]);
    expect(r.code, r.err).toBe(0);
    expect(await readFile(marker, 'utf8')).toBe(`shop ${'c'.repeat(40)} build hosts= in ${project}\n`);
    expect(received).toHaveLength(1);

    await hook('echo "not on a Friday" >&2; exit 3');
    await expect(run(['--project', project, '--target', T])).rejects.toMatchObject({ code: 'hook_failed', message: 'hook pre-build failed (exit 3):\nnot on a Friday' });
    expect(received).toHaveLength(1);
    expect((await run(['--project', project, '--target', T, '-H'])).code).toBe(0);
    expect(received).toHaveLength(2);
  });
});
