import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildRequestSchema } from '../../../api/schemas/builds.ts';
import { buildService } from '../../../api/services/builds.ts';
import { gitCredentialEnv, gitRemoteEnvFor, loadGitCredentials, parseGitCredentials } from '../../../core/contracts/git-credentials.ts';
import { LocalExecutor } from '../../../core/index.ts';
import { localStore } from '../../../store/local.ts';
import { memoryQueues } from '../../../testkit/api/memory-queues.ts';
import { serveFiles } from '../../../testkit/static-files.ts';
import { bareRepoWith, git } from '../../../testkit/example-repo.ts';

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

  it('give git over ssh a deploy key, the repository\'s own before its host\'s: that key only, no agent, no user config, host keys from the named file only', () => {
    const keys = parseGitCredentials(JSON.stringify({
      'git.example.com': { username: 'x-access-token', token: TOKEN, ssh_key_file: '/etc/xamal/keys/org', known_hosts_file: '/etc/xamal/known_hosts' },
      'git.example.com/acme/shop': { ssh_key_file: '/etc/xamal/keys/shop', known_hosts_file: '/etc/xamal/known_hosts' },
      'git.example.com:2222': { ssh_key_file: '/etc/xamal/keys/port', known_hosts_file: '/etc/xamal/known_hosts' },
    }), 'creds.json');
    const ssh = (key: string) => `ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/xamal/known_hosts -o GlobalKnownHostsFile=/dev/null -i /etc/xamal/keys/${key}`;
    expect(gitCredentialEnv('git@git.example.com:acme/shop.git', keys)).toEqual({ GIT_SSH_COMMAND: ssh('shop'), GIT_SSH_VARIANT: 'ssh' });
    expect(gitCredentialEnv('ssh://git@git.example.com/acme/shop', keys)).toEqual({ GIT_SSH_COMMAND: ssh('shop'), GIT_SSH_VARIANT: 'ssh' });
    expect(gitCredentialEnv('git@git.example.com:acme/shopfront.git', keys)).toEqual({ GIT_SSH_COMMAND: ssh('org'), GIT_SSH_VARIANT: 'ssh' });
    expect(gitCredentialEnv('ssh://git@git.example.com:2222/acme/shop.git', keys)).toEqual({ GIT_SSH_COMMAND: ssh('port'), GIT_SSH_VARIANT: 'ssh' });
    expect(gitCredentialEnv('git@github.com:acme/shop.git', keys)).toEqual({});
    // https takes the host's token even where the repository has only a deploy key.
    expect(gitCredentialEnv('https://git.example.com/acme/shop.git', keys)).toMatchObject({ GIT_CONFIG_KEY_0: 'http.https://git.example.com/.extraHeader' });
  });

  it('an entry with half a credential, or a path with spaces, is refused naming the field', () => {
    const issues = (json: unknown) => { try { parseGitCredentials(JSON.stringify(json), 'c.json'); return []; } catch (e) { return (e as { issues: { path: string; message: string }[] }).issues; } };
    expect(issues({ 'git.example.com': { ssh_key_file: '/k' } })).toEqual([{ path: 'c.json: git.example.com.known_hosts_file', message: 'expected ssh_key_file and known_hosts_file together (ssh: the deploy key and the host keys it may talk to)' }]);
    expect(issues({ 'git.example.com': { token: TOKEN } })).toEqual([{ path: 'c.json: git.example.com.username', message: 'expected username and token together (https)' }]);
    expect(issues({ 'git.example.com': {} })[0]?.message).toMatch(/^expected username and token \(https\), ssh_key_file and known_hosts_file \(ssh\), or both$/);
    expect(issues({ 'git.example.com': { ssh_key_file: '/my keys/k', known_hosts_file: '/k' } })[0]).toEqual({ path: 'c.json: git.example.com.ssh_key_file', message: 'expected an absolute path without spaces (ssh splits its file options on them)' });
    expect(issues({ 'https://git.example.com': { username: 'u', token: TOKEN } })[0]?.path).toBe('c.json: https://git.example.com');
  });

  it('a deploy key file readable by group or others, or missing, is refused at start naming the entry', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xamal-git-keys-'));
    try {
      await writeFile(join(dir, 'key'), 'k', { mode: 0o644 });
      await writeFile(join(dir, 'known_hosts'), '');
      await writeFile(join(dir, 'creds.json'), JSON.stringify({ 'git.example.com': { ssh_key_file: join(dir, 'key'), known_hosts_file: join(dir, 'missing') } }));
      const err = (() => { try { loadGitCredentials(join(dir, 'creds.json')); } catch (e) { return e as { issues: { path: string; message: string }[] }; } })();
      expect(err?.issues).toEqual([
        { path: `${join(dir, 'creds.json')}: git.example.com.ssh_key_file`, message: `${join(dir, 'key')} is readable by group or others (chmod 600 it: ssh refuses such keys)` },
        { path: `${join(dir, 'creds.json')}: git.example.com.known_hosts_file`, message: `cannot read ${join(dir, 'missing')} (ENOENT)` },
      ]);
      await chmod(join(dir, 'key'), 0o600);
      await writeFile(join(dir, 'creds.json'), JSON.stringify({ 'git.example.com': { ssh_key_file: join(dir, 'key'), known_hosts_file: join(dir, 'known_hosts') } }));
      expect(Object.keys(loadGitCredentials(join(dir, 'creds.json')))).toEqual(['git.example.com']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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
      commit = await bareRepoWith({ 'mix.exs': 'defmodule Shop.MixProject do end\n' }, join(dir, 'work'), join(dir, 'www', 'shop.git'));
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
