import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519KeyPair } from '../../../testkit/ssh-keys.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildRequestSchema } from '../../../api/schemas/builds.ts';
import { buildService } from '../../../api/services/builds.ts';
import { checkoutGitSource } from '../../../builder/source.ts';
import { gitRemoteEnvFor, loadGitCredentials } from '../../../core/contracts/git-credentials.ts';
import { LocalExecutor } from '../../../core/index.ts';
import { localStore } from '../../../store/local.ts';
import { memoryQueues } from '../../../testkit/api/memory-queues.ts';
import { bareRepoWith } from '../../../testkit/example-repo.ts';
import { serveGitOverSsh, type GitSshHost } from '../../../testkit/git-ssh-host.ts';

/**
 * Issue 20 item 4 over ssh: a private repository on a git host over SSH on loopback that lets in one
 * deploy key. The farm's credentials file names that key and the host's key for the repository; the
 * worker's fetch (its mirror) and the API's ls-remote use them, with nothing from ~/.ssh or an agent.
 */
describe("a private repository over ssh, with the farm's deploy key", () => {
  let dir: string;
  let host: GitSshHost;
  let commit: string;
  let credsFile: string;
  const exec = new LocalExecutor();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-git-ssh-'));
    commit = await bareRepoWith({ 'mix.exs': 'defmodule Shop.MixProject do end\n' }, join(dir, 'work'), join(dir, 'srv', 'acme', 'shop.git'));
    const deployKey = ed25519KeyPair();
    await writeFile(join(dir, 'deploy_key'), deployKey.private, { mode: 0o600 });
    host = await serveGitOverSsh(join(dir, 'srv'), deployKey.public);
    await writeFile(join(dir, 'known_hosts'), `${host.knownHostsLine}\n`);
    credsFile = join(dir, 'creds.json');
    await writeFile(credsFile, JSON.stringify({ [`${new URL(host.url).host}/acme/shop`]: { ssh_key_file: join(dir, 'deploy_key'), known_hosts_file: join(dir, 'known_hosts') } }));
  });
  afterAll(async () => {
    await host?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("the worker's fetch gets the commit with the deploy key; without it the fetch fails with the one unreadable-repository answer and no login got in", async () => {
    const url = `${host.url}/acme/shop.git`;
    const env = gitRemoteEnvFor(loadGitCredentials(credsFile), false)(url);
    const dest = join(dir, 'checkout');
    const { fetched } = await checkoutGitSource(exec, join(dir, 'mirror'), url, commit, dest, env);
    expect(fetched).toBe(true);
    expect(await readFile(join(dest, 'mix.exs'), 'utf8')).toContain('Shop.MixProject');
    expect(host.logins).toEqual([{ accepted: true }]);
    // The mirror keeps no credential: nothing of the key or its path in its config.
    expect(await readFile(join(dir, 'mirror', 'config'), 'utf8')).not.toContain('deploy_key');

    // Without credentials for it: the farm's own ssh, which has neither the deploy key nor the host's key.
    const without = await checkoutGitSource(exec, join(dir, 'mirror-without'), url, commit, join(dir, 'checkout-without'), gitRemoteEnvFor(undefined, false)(url)).catch((e: Error) => e);
    expect((without as Error).message).toBe(`could not read the repository at ${host.url.replace('git@', '')}/acme/shop.git: unreachable or not found`);
    expect(host.logins.filter((l) => l.accepted)).toHaveLength(1);
  });

  it('a host presenting another host key than the file names is refused before any login', async () => {
    await writeFile(join(dir, 'other_known_hosts'), `${host.knownHostsLine.split(' ')[0]} ${ed25519KeyPair().public.trim().split(/\s+/).slice(0, 2).join(' ')}\n`);
    const creds = JSON.parse(await readFile(credsFile, 'utf8')) as Record<string, { known_hosts_file: string }>;
    for (const e of Object.values(creds)) e.known_hosts_file = join(dir, 'other_known_hosts');
    await writeFile(join(dir, 'creds-other.json'), JSON.stringify(creds));
    const url = `${host.url}/acme/shop.git`;
    const before = host.logins.length;
    const r = await checkoutGitSource(exec, join(dir, 'mirror-other'), url, commit, join(dir, 'checkout-other'), gitRemoteEnvFor(loadGitCredentials(join(dir, 'creds-other.json')), false)(url)).catch((e: Error) => e);
    expect(r).toBeInstanceOf(Error);
    expect(host.logins.length).toBe(before);
  });

  it("the API resolves a branch of it with the deploy key (git ls-remote), and answers the one unreadable error without", async () => {
    const submit = (gitRemoteEnv?: ReturnType<typeof gitRemoteEnvFor>) => {
      const q = memoryQueues();
      const builds = buildService({ queues: q.queues, store: localStore(join(dir, 'store')), locks: async () => [], exec, gitUrls: { allowLocal: false, allowHttp: false }, ...(gitRemoteEnv ? { gitRemoteEnv } : {}) });
      return builds.submit(BuildRequestSchema.parse({ app: 'shop', source: { git: `${host.url}/acme/shop.git`, ref: 'main' }, targets: ['linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0'] }), { name: 'admin', scopes: ['admin'] } as never);
    };
    const logins = host.logins.length;
    const withKey = await submit(gitRemoteEnvFor(loadGitCredentials(credsFile), false));
    expect(withKey.unresolved.length + withKey.builds.length).toBe(1);
    expect(host.logins.slice(logins)).toContainEqual({ accepted: true });
    const without = await submit(gitRemoteEnvFor(undefined, false)).catch((e: Error & { issues?: { message: string }[] }) => e);
    expect((without as { issues: { message: string }[] }).issues[0]!.message).toBe(`could not read the repository at ${host.url.replace('git@', '')}/acme/shop.git: unreachable or not found`);
  });
});
