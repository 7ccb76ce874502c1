import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { displayCommand, LocalExecutor, RecordingExecutor, sensitive, SYSTEM_ENV, XamalError, exitCodeFor } from '../../../core/index.ts';
import { HOOK_NAMES, hookCommand, hookEnv, localPerformer, runHook, type HookDetails } from '../../../deployer/hooks.ts';
import { Secrets } from '../../../deployer/secrets.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'xamal-hooks-'));
  await mkdir(join(root, '.xamal/hooks'), { recursive: true });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const details: HookDetails = {
  service: 'shop',
  version: '1a2b3c4',
  hosts: ['a.example.com', 'b.example.com'],
  roles: ['web', 'jobs'],
  destination: 'staging',
  performer: 'Ada',
  recordedAt: new Date('2025-01-02T03:04:05Z'),
  lock: true,
  command: 'deploy',
  runtime: 42.4,
};
const secrets = new Secrets(new Map([['DB_PASSWORD', sensitive('s3cret-value-xyz')]]), ['.xamal/secrets']);

async function hook(name: string, body: string, mode = 0o755) {
  const path = join(root, '.xamal/hooks', name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, mode);
}

const opts = () => ({ root, hooksPath: '.xamal/hooks', executor: new LocalExecutor(SYSTEM_ENV), secrets });

describe('hooks', () => {
  it('has the eight Kamal-style lifecycle hooks', () => {
    expect(HOOK_NAMES).toEqual(['pre-connect', 'pre-build', 'pre-deploy', 'pre-app-boot', 'post-app-boot', 'pre-caddy-switch', 'post-caddy-switch', 'post-deploy']);
  });

  it('gives a hook the XAMAL_* facts, and the secrets only to pre-connect, pre-deploy and post-deploy', () => {
    const env = hookEnv('post-deploy', details, secrets);
    expect(Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('XAMAL_')))).toEqual({
      XAMAL_SERVICE: 'shop',
      XAMAL_VERSION: '1a2b3c4',
      XAMAL_SERVICE_VERSION: 'shop@1a2b3c4',
      XAMAL_HOSTS: 'a.example.com,b.example.com',
      XAMAL_ROLES: 'web,jobs',
      XAMAL_DESTINATION: 'staging',
      XAMAL_PERFORMER: 'Ada',
      XAMAL_RECORDED_AT: '2025-01-02T03:04:05.000Z',
      XAMAL_LOCK: 'true',
      XAMAL_COMMAND: 'deploy',
      XAMAL_SUBCOMMAND: '',
      XAMAL_RUNTIME: '42',
    });
    expect(String(env.DB_PASSWORD)).toBe('[REDACTED]');
    expect(hookEnv('pre-build', details, secrets).DB_PASSWORD).toBeUndefined();
    expect(hookEnv('pre-deploy', details, secrets).DB_PASSWORD).toBeDefined();
  });

  it('builds the hook as its path for argv, in the project directory, with secrets redacted when shown', () => {
    const cmd = hookCommand('pre-deploy', details, { root, hooksPath: '.xamal/hooks', secrets });
    expect(cmd.argv).toEqual([join(root, '.xamal/hooks/pre-deploy')]);
    expect(cmd.cwd).toBe(root);
    expect(displayCommand(cmd)).toContain('DB_PASSWORD=[REDACTED]');
    expect(displayCommand(cmd)).not.toContain('s3cret-value-xyz');
  });

  it('skips a hook that does not exist', async () => {
    const exec = new RecordingExecutor();
    expect(await runHook('pre-connect', details, { ...opts(), executor: exec })).toEqual({ ran: false });
    expect(exec.commands).toEqual([]);
  });

  it('runs an executable hook, which sees its environment and the secrets', async () => {
    await hook('pre-deploy', 'echo "$XAMAL_SERVICE_VERSION to $XAMAL_DESTINATION by $XAMAL_PERFORMER"; test "$DB_PASSWORD" = s3cret-value-xyz && echo has-secret');
    const said: string[] = [];
    const r = await runHook('pre-deploy', details, { ...opts(), say: (l) => said.push(l) });
    expect(r).toEqual({ ran: true, stdout: 'shop@1a2b3c4 to staging by Ada\nhas-secret\n', stderr: '' });
    expect(said).toEqual(['[pre-deploy] shop@1a2b3c4 to staging by Ada', '[pre-deploy] has-secret']);
  });

  it('aborts with hook_failed naming the hook when it exits non-zero, its output scrubbed of secrets', async () => {
    await hook('pre-deploy', 'echo "db password is $DB_PASSWORD" >&2; exit 7');
    const said: string[] = [];
    const err = await runHook('pre-deploy', details, { ...opts(), say: (l) => said.push(l) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(XamalError);
    expect((err as XamalError).code).toBe('hook_failed');
    expect(exitCodeFor('hook_failed')).toBe(11);
    expect((err as XamalError).message).toBe('hook pre-deploy failed (exit 7):\ndb password is [REDACTED]');
    expect(said.join('\n')).not.toContain('s3cret-value-xyz');
  });

  it('refuses a hook file that is not executable, naming it', async () => {
    await hook('post-deploy', 'exit 0', 0o644);
    await expect(runHook('post-deploy', details, opts())).rejects.toThrow('hook post-deploy: .xamal/hooks/post-deploy is not executable (chmod +x .xamal/hooks/post-deploy)');
  });

  it('finds hooks under a configured hooks_path', async () => {
    await mkdir(join(root, 'ops/hooks'), { recursive: true });
    await writeFile(join(root, 'ops/hooks/pre-build'), '#!/bin/sh\necho from-ops\n', { mode: 0o755 });
    expect(await runHook('pre-build', details, { ...opts(), hooksPath: 'ops/hooks' })).toMatchObject({ ran: true, stdout: 'from-ops\n' });
  });

  it('names the performer from git user.name, else the login', async () => {
    expect(await localPerformer(new RecordingExecutor(() => ({ stdout: 'Grace Hopper\n' })), {})).toBe('Grace Hopper');
    expect(await localPerformer(new RecordingExecutor(() => ({ code: 1 })), { USER: 'deploy' })).toBe('deploy');
  });
});
