import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ed25519KeyPair } from '../../../testkit/ssh-keys.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gitSshRelayEnv, parseRelayRequest, relayCommand, scopeProblem, startGitSshRelay, urlNames, type GitSshRelay, type RelayRequest, type RelayScope } from '../../../builder/git-ssh-relay.ts';
import { gitDeployKeysFor, parseGitCredentials } from '../../../core/contracts/git-credentials.ts';
import { bareRepoWith } from '../../../testkit/example-repo.ts';
import { serveGitOverSsh, type GitSshHost } from '../../../testkit/git-ssh-host.ts';

const run = promisify(execFile);
const HELLO = 'xamal-git-ssh 1';
const KEY = { ssh_key_file: '/etc/xamal/keys/billing', known_hosts_file: '/etc/xamal/known_hosts' };
const keys = gitDeployKeysFor(parseGitCredentials(JSON.stringify({ 'git.example/acme/billing': KEY, 'git.example:2222': { ...KEY, ssh_key_file: '/etc/xamal/keys/any' } }), 'creds.json'));
const allowAll = () => true;
const req = (over: Partial<RelayRequest> = {}): RelayRequest => ({ port: 22, destination: 'git@git.example', host: 'git.example', path: 'acme/billing.git', ...over });

describe('the git-over-ssh relay request', () => {
  it('reads what git hands ssh for both URL forms: scp-like (port 22, a relative path) and ssh:// (its port, an absolute path)', () => {
    expect(parseRelayRequest([HELLO, '22', 'git@git.example', "git-upload-pack 'acme/billing.git'"])).toEqual(req());
    expect(parseRelayRequest([HELLO, '2222', 'git@Git.Example', "git-upload-pack '/acme/billing.git'"])).toEqual({ port: 2222, destination: 'git@Git.Example', host: 'git.example', path: '/acme/billing.git' });
    expect(parseRelayRequest([HELLO, '22', 'git.example', "git-upload-pack 'acme/billing.git'"])).toMatchObject({ destination: 'git.example', host: 'git.example' });
  });

  it('refuses pushing, options posing as hosts, quoting tricks, parent directories and ports out of range, naming only the host', () => {
    const problem = (lines: string[]) => (parseRelayRequest(lines) as { problem: string }).problem;
    expect(problem([HELLO, '22', 'git@git.example', "git-receive-pack 'acme/billing.git'"])).toBe('git.example: only fetching (git-upload-pack) is relayed, not pushing');
    expect(problem([HELLO, '22', '-oProxyCommand=sh', "git-upload-pack 'a.git'"])).toBe('expected a host name as [user@]host');
    expect(problem([HELLO, '22', 'git@git.example', "git-upload-pack 'a.git'; rm -rf /'"])).toMatch(/^git\.example: expected git-upload-pack/);
    expect(problem([HELLO, '22', 'git@git.example', "git-upload-pack '../../etc.git'"])).toMatch(/^git\.example: expected git-upload-pack/);
    expect(problem([HELLO, '0', 'git@git.example', "git-upload-pack 'a.git'"])).toBe('expected a port from 1 to 65535');
    expect(problem(['GET / HTTP/1.1', '', '', ''])).toBe('not a git-over-ssh request');
  });

  it("runs the worker's ssh with the repository's deploy key only, strict host keys from its known_hosts file, through the egress proxy", () => {
    const cmd = relayCommand(req(), keys, allowAll, 'socat - PROXY:127.0.0.1:%h:%p,proxyport=4000');
    expect(cmd).toEqual({
      argv: [
        'ssh', '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'StrictHostKeyChecking=yes',
        '-o', 'UserKnownHostsFile=/etc/xamal/known_hosts', '-o', 'GlobalKnownHostsFile=/dev/null', '-i', '/etc/xamal/keys/billing',
        '-o', 'ProxyCommand=socat - PROXY:127.0.0.1:%h:%p,proxyport=4000', '-o', 'ConnectTimeout=30', '-p', '22', '--', 'git@git.example', "git-upload-pack 'acme/billing.git'",
      ],
    });
    // A host entry with its port serves every repository there.
    expect((relayCommand(req({ port: 2222, path: '/other/repo.git' }), keys, allowAll, 'p') as { argv: string[] }).argv).toContain('/etc/xamal/keys/any');
  });

  it('without a deploy key for the repository, or with its host outside XAMAL_DEPS_ALLOW, says so naming the host, the repository and the setting', () => {
    expect(relayCommand(req({ path: 'acme/shop.git' }), keys, allowAll, 'p')).toEqual({
      problems: ['no ssh deploy key for git.example (repository acme/shop) in XAMAL_GIT_CREDENTIALS_FILE: add an entry "git.example" or "git.example/acme/shop" with ssh_key_file and known_hosts_file'],
    });
    expect(relayCommand(req(), undefined, allowAll, 'p')).toMatchObject({ problems: [expect.stringContaining('no ssh deploy key for git.example (repository acme/billing)')] });
    expect(relayCommand(req(), keys, (h, p) => h === 'github.com' && p === 443, 'p')).toEqual({
      problems: ['git.example:22 is not in XAMAL_DEPS_ALLOW (the deps step reaches only the hosts listed there; add git.example:22)'],
    });
  });
});

describe("the relay's scope: what one build may fetch with the farm's deploy keys", () => {
  const locked = ['git@git.example:acme/billing.git', 'ssh://git@git.example:2222/acme/ledger.git'];

  it('names a repository by ssh URL whatever its form: scp-like or ssh://, with or without .git, port 22 written or not', () => {
    expect(urlNames('git@git.example:acme/billing.git', req())).toBe(true);
    expect(urlNames('ssh://git@Git.Example/acme/billing', req({ path: '/acme/billing.git' }))).toBe(true);
    expect(urlNames('ssh://git@git.example:22/acme/billing.git', req())).toBe(true);
    expect(urlNames('ssh://git@git.example:2222/acme/billing.git', req())).toBe(false);
    expect(urlNames('git@git.example:acme/billing-2.git', req())).toBe(false);
    expect(urlNames('https://git.example/acme/billing.git', req())).toBe(false);
  });

  it("lets through what mix.lock names and, on a farm with an app registry, what the app's owner entry also lists", () => {
    expect(scopeProblem(req(), { app: 'shop', locked })).toBeUndefined();
    expect(scopeProblem(req({ port: 2222, path: '/acme/ledger.git' }), { app: 'shop', locked, registered: ['ssh://git@git.example:2222/acme/ledger'] })).toBeUndefined();
  });

  it('refuses a repository mix.lock does not name, one the owner entry does not list, and everything when the lock is missing, naming what to change', () => {
    const scope: RelayScope = { app: 'shop', locked };
    expect(scopeProblem(req({ path: 'acme/payroll.git' }), scope)).toBe("git.example/acme/payroll is not a git dependency in the project's mix.lock (the farm fetches over ssh only the repositories mix.lock names: commit mix.lock with it)");
    expect(scopeProblem(req(), { ...scope, registered: [] })).toBe(`app shop may not fetch git.example/acme/billing with the farm's deploy keys: an admin adds its URL to "git_dependencies" of app shop in XAMAL_APPS_FILE`);
    expect(scopeProblem(req(), { app: 'shop', locked: { none: 'the project has no mix.lock' } })).toBe("git.example/acme/billing: the project has no mix.lock; the farm fetches over ssh only the git dependencies the project's mix.lock names");
  });
});

/** A loopback port leading to the relay's unix socket, as socat does inside a deps container's namespace. */
async function portToSocket(socket: string): Promise<Server> {
  const server = createServer((c) => {
    const u = connect(socket);
    c.pipe(u).pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

describe('the relay end to end: git, its GIT_SSH_COMMAND, the relay and a private ssh host on loopback', () => {
  let dir: string;
  let host: GitSshHost;
  let commit: string;
  let relay: GitSshRelay | undefined;
  let bridge: Server | undefined;
  const said: string[] = [];
  let privateKey: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-relay-'));
    commit = await bareRepoWith({ 'billing.ex': 'defmodule Billing do\nend\n' }, join(dir, 'work'), join(dir, 'srv', 'acme', 'billing.git'));
    const deployKey = ed25519KeyPair();
    privateKey = deployKey.private;
    await writeFile(join(dir, 'deploy_key'), deployKey.private, { mode: 0o600 });
    host = await serveGitOverSsh(join(dir, 'srv'), deployKey.public);
    await writeFile(join(dir, 'known_hosts'), `${host.knownHostsLine}\n`);
  });
  afterAll(async () => {
    await relay?.stop();
    bridge?.close();
    await host?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const clone = async (url: string, dest: string, creds: object | undefined, scope: RelayScope = { app: 'shop', locked: [url] }) => {
    await relay?.stop();
    bridge?.close();
    const deployKeys = creds ? gitDeployKeysFor(parseGitCredentials(JSON.stringify(creds), 'creds.json')) : undefined;
    relay = await startGitSshRelay({ keys: deployKeys, scope, allows: allowAll, proxyCommand: 'socat - TCP:%h:%p', say: (l) => void said.push(l) });
    bridge = await portToSocket(relay.socket);
    const env = { ...process.env, ...gitSshRelayEnv((bridge.address() as AddressInfo).port), GIT_TERMINAL_PROMPT: '0' };
    return run('git', ['clone', '-q', url, dest], { env, timeout: 60_000 }).then(
      () => ({ ok: true as const, problems: [...relay!.problems] }),
      (e: Error & { stderr?: string }) => ({ ok: false as const, stderr: e.stderr ?? '', problems: [...relay!.problems] }),
    );
  };

  it('clones over ssh:// and scp-like URLs with the farm\'s deploy key; the key\'s content is in no line the relay wrote', { timeout: 60_000 }, async () => {
    const creds = { [`${host.address}:${host.port}/acme/billing`]: { ssh_key_file: join(dir, 'deploy_key'), known_hosts_file: join(dir, 'known_hosts') } };
    const r = await clone(`${host.url}/acme/billing.git`, join(dir, 'c1'), creds);
    expect(r).toEqual({ ok: true, problems: [] });
    expect(await readFile(join(dir, 'c1', 'billing.ex'), 'utf8')).toContain('Billing');
    expect((await run('git', ['-C', join(dir, 'c1'), 'rev-parse', 'HEAD'])).stdout.trim()).toBe(commit);
    expect(host.logins).toEqual([{ accepted: true }]);
    expect(said).toContain(`git over ssh: fetching /acme/billing.git from ${host.address}:${host.port} with the farm's deploy key`);
    const keyBody = privateKey.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    expect(said.join('\n')).not.toContain(keyBody.slice(0, 40));
    expect(said.join('\n')).not.toContain('deploy_key');
  });

  it('without a key for that host: git fails, the relay names the host, the repository and the setting, and no login is attempted', { timeout: 60_000 }, async () => {
    const before = host.logins.length;
    const r = await clone(`${host.url}/acme/billing.git`, join(dir, 'c2'), undefined);
    expect(r.ok).toBe(false);
    const where = `${host.address}:${host.port}`;
    expect(r.problems).toEqual([`git over ssh to ${where}: no ssh deploy key for ${where} (repository acme/billing) in XAMAL_GIT_CREDENTIALS_FILE: add an entry "${where}" or "${where}/acme/billing" with ssh_key_file and known_hosts_file`]);
    expect(host.logins.length).toBe(before);
  });

  it("a repository outside the build's scope is refused before any key is looked up: no login, the reason names the app and XAMAL_APPS_FILE", { timeout: 60_000 }, async () => {
    const creds = { [`${host.address}:${host.port}`]: { ssh_key_file: join(dir, 'deploy_key'), known_hosts_file: join(dir, 'known_hosts') } };
    const url = `${host.url}/acme/billing.git`;
    const before = host.logins.length;
    const where = `${host.address}:${host.port}`;
    const r = await clone(url, join(dir, 'c4'), creds, { app: 'shop', locked: [url], registered: [] });
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([`git over ssh to ${where}: app shop may not fetch ${where}/acme/billing with the farm's deploy keys: an admin adds its URL to "git_dependencies" of app shop in XAMAL_APPS_FILE`]);
    const notLocked = await clone(url, join(dir, 'c5'), creds, { app: 'shop', locked: [`${host.url}/acme/other.git`] });
    expect(notLocked.problems).toEqual([expect.stringContaining(`${where}/acme/billing is not a git dependency in the project's mix.lock`)]);
    expect(host.logins.length).toBe(before);
  });

  it('a host presenting a key its known_hosts file does not hold is refused by ssh, and the relay says why', { timeout: 60_000 }, async () => {
    const other = ed25519KeyPair().public.trim().split(/\s+/);
    await writeFile(join(dir, 'wrong_known_hosts'), `[${host.address}]:${host.port} ${other[0]} ${other[1]}\n`);
    const creds = { [`${host.address}:${host.port}`]: { ssh_key_file: join(dir, 'deploy_key'), known_hosts_file: join(dir, 'wrong_known_hosts') } };
    const before = host.logins.length;
    const r = await clone(`${host.url}/acme/billing.git`, join(dir, 'c3'), creds);
    expect(r.ok).toBe(false);
    expect(r.problems.join('\n')).toMatch(/git over ssh to 127\.0\.0\.1:\d+ failed: .*(Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED)/);
    expect(host.logins.length).toBe(before);
  });
});
