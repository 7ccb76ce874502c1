import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildRequestSchema } from '../../../api/schemas/builds.ts';
import { buildService } from '../../../api/services/builds.ts';
import { gitCredentialEnv, gitRemoteEnvFor, parseGitCredentials } from '../../../core/contracts/git-credentials.ts';
import { LocalExecutor } from '../../../core/index.ts';
import { localStore } from '../../../store/local.ts';
import { memoryQueues } from '../../../testkit/api/memory-queues.ts';
import { serveFiles } from '../../../testkit/static-files.ts';

const TOKEN = 'ghp_private0123456789';
const creds = parseGitCredentials(JSON.stringify({ 'git.example.com': { username: 'x-access-token', token: TOKEN } }), 'creds.json');

describe('the farm\'s git credentials for private repositories', () => {
  it('give git an Authorization header for the URL\'s host only, by environment, over https (http only where the farm fetches http at all)', () => {
    const env = gitCredentialEnv('https://git.example.com/acme/shop.git', creds);
    expect(env).toEqual({ GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'http.https://git.example.com/.extraHeader', GIT_CONFIG_VALUE_0: `Authorization: Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString('base64')}` });
    expect(gitCredentialEnv('https://github.com/acme/shop.git', creds)).toEqual({});
    expect(gitCredentialEnv('http://git.example.com/acme/shop.git', creds)).toEqual({});
    expect(gitCredentialEnv('http://git.example.com/acme/shop.git', creds, true)).toMatchObject({ GIT_CONFIG_KEY_0: 'http.http://git.example.com/.extraHeader' });
    expect(gitCredentialEnv('git@git.example.com:acme/shop.git', creds)).toEqual({});
  });

  it('a bad credentials file is refused naming the path in it, never showing a token', () => {
    const bad = (() => { try { parseGitCredentials(JSON.stringify({ 'git.example.com': { username: 'u', token: 'short' } }), '/etc/xamal/git.json'); } catch (e) { return e as Error & { issues: { path: string; message: string }[] }; } })();
    expect(bad?.issues).toEqual([{ path: '/etc/xamal/git.json: git.example.com.token', message: 'expected a token of at least 8 characters' }]);
    expect(JSON.stringify(bad?.issues)).not.toContain('short');
    expect(() => parseGitCredentials('{', 'f.json')).toThrow(/invalid XAMAL_GIT_CREDENTIALS_FILE/);
  });

  describe('against a git host that answers 401 without them (dumb HTTP on loopback)', () => {
    let dir: string;
    let host: Awaited<ReturnType<typeof serveFiles>>;
    let commit: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'xamal-private-git-'));
      const work = join(dir, 'work');
      await mkdir(work);
      const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, encoding: 'utf8' }).trim();
      git(work, 'init', '-q', '-b', 'main');
      await writeFile(join(work, 'mix.exs'), 'defmodule Shop.MixProject do end\n');
      git(work, 'add', '-A');
      git(work, 'commit', '-q', '-m', 'one');
      commit = git(work, 'rev-parse', 'HEAD');
      await mkdir(join(dir, 'www'));
      git(dir, 'clone', '-q', '--bare', work, join(dir, 'www', 'shop.git'));
      git(join(dir, 'www', 'shop.git'), 'update-server-info');
      host = await serveFiles(join(dir, 'www'), { basicAuth: { username: 'x-access-token', password: TOKEN } });
    });
    afterAll(async () => {
      await host?.close();
      await rm(dir, { recursive: true, force: true });
    });

    it('the API resolves a branch of the private repository with them, and answers the one unreadable error without them', async () => {
      const hostCreds = parseGitCredentials(JSON.stringify({ [new URL(host.url).host]: { username: 'x-access-token', token: TOKEN } }), 'creds.json');
      const submit = (gitRemoteEnv?: ReturnType<typeof gitRemoteEnvFor>) => {
        const q = memoryQueues();
        const builds = buildService({ queues: q.queues, store: localStore(join(dir, 'store')), locks: async () => [], exec: new LocalExecutor(), gitUrls: { allowLocal: false, allowHttp: true }, ...(gitRemoteEnv ? { gitRemoteEnv } : {}) });
        return builds.submit(BuildRequestSchema.parse({ app: 'shop', source: { git: `${host.url}/shop.git`, ref: 'main' }, targets: ['linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0'] }), { name: 'admin', scopes: ['admin'] } as never);
      };
      const withCreds = await submit(gitRemoteEnvFor(hostCreds, true));
      // No builder image here: the target is unresolved, but only after the ref was resolved to the commit.
      expect(withCreds.unresolved.length + withCreds.builds.length).toBe(1);
      expect(host.requests.some((r) => r.authorized)).toBe(true);
      const without = await submit().catch((e: Error & { issues?: { message: string }[] }) => e);
      expect((without as { issues: { message: string }[] }).issues[0]!.message).toBe(`could not read the repository at ${host.url}/shop.git: unreachable or not found`);
      expect(commit).toMatch(/^[0-9a-f]{40}$/);
    });
  });
});
