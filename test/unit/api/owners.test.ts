import { REMOTE_GIT_ONLY } from '../../../core/contracts/git-url.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { farmConfig } from '../../../api/config.ts';
import { hashToken, parseTokenEntries } from '../../../api/auth.ts';
import { checkMayBuild, checkMayCancel, registryProblems, repositoryKey, type Caller } from '../../../api/owners.ts';
import { parseGithubHooks } from '../../../api/routes/github.ts';
import { parseAppRegistry } from '../../../api/schemas/apps.ts';
import { buildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { buildJobId, BuildJobSchema } from '../../../core/contracts/build-job.ts';
import { RecordingExecutor } from '../../../core/index.ts';
import type { LockFile } from '../../../images/lock.ts';
import { localStore } from '../../../store/local.ts';
import { FAKE_DIGEST } from '../../../testkit/builder/fake-docker.ts';
import { memoryQueues } from '../../../testkit/api/memory-queues.ts';

const X86 = 'linux-x86_64-gnu2.36-debian12-otp27.3.4-elixir1.18.3';
const COMMIT = 'c'.repeat(40);
const HELLO_REPO = 'https://github.com/acme/hello.git';
const FORK = 'https://github.com/mallory/hello.git';
const ADMIN = 'admin-token-0123456789abcdefghij';
const CI = 'ci-token-0123456789abcdefghijklmn';
const OTHER = 'other-token-0123456789abcdefghijk';
const LOCK: LockFile = {
  version: 1,
  images: [{ ref: 'xamal/builder:t', digest: FAKE_DIGEST, platforms: [{ arch: 'x86_64', digest: FAKE_DIGEST }], resolvedAt: '2025-01-01T00:00:00.000Z', source: 'registry', flavour: 'builder', tuple: X86 }],
};

const registry = parseAppRegistry({
  apps: {
    hello: { repositories: [HELLO_REPO], tokens: ['ci'], git_dependencies: ['git@github.com:acme/billing.git'] },
    other: { repositories: ['https://github.com/acme/other'], tokens: ['other'], archives: true },
  },
});
const token = (name: string, scopes: ('read' | 'build' | 'admin')[] = ['build', 'read']): Caller => ({ kind: 'token', token: { name, scopes } });
const refusal = (fn: () => void) => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err as Error & { code?: string };
  }
};

describe('app owners: who may build and cancel an app (api/owners.ts)', () => {
  it('lets a token allowed for the app build it from its registered repository, with or without .git or a trailing slash', () => {
    for (const git of [HELLO_REPO, 'https://github.com/acme/hello', 'https://GitHub.com/acme/hello.git/']) {
      expect(refusal(() => checkMayBuild(registry, 'hello', { git }, token('ci')))).toBeUndefined();
    }
    expect(repositoryKey('HTTPS://GitHub.com/Acme/hello.git')).toBe('https://github.com/Acme/hello');
  });

  it('refuses a build of the app from another repository with 403 naming the app and its registered repository, admin tokens included', () => {
    for (const caller of [token('ci'), token('admin', ['admin'])]) {
      const err = refusal(() => checkMayBuild(registry, 'hello', { git: FORK }, caller));
      expect(err?.code).toBe('forbidden');
      expect(err?.message).toBe(`app hello is registered to ${HELLO_REPO}; this build names ${FORK} (XAMAL_APPS_FILE)`);
    }
  });

  it('refuses a token not allowed for the app with 403 naming the token and the allowed ones, on build and on cancel', () => {
    const build = refusal(() => checkMayBuild(registry, 'hello', { git: HELLO_REPO }, token('other')));
    expect(build?.code).toBe('forbidden');
    expect(build?.message).toBe('token other may not build app hello (tokens allowed: ci; XAMAL_APPS_FILE)');
    const cancel = refusal(() => checkMayCancel(registry, 'hello', token('other')));
    expect(cancel?.message).toBe('token other may not cancel builds of app hello (tokens allowed: ci; XAMAL_APPS_FILE)');
    expect(refusal(() => checkMayCancel(registry, 'hello', token('ci')))).toBeUndefined();
    expect(refusal(() => checkMayCancel(registry, 'hello', token('ops', ['admin'])))).toBeUndefined();
  });

  it('refuses an unregistered app, and an archive for an app that takes none; allows archives where the app says so, to its tokens only', () => {
    expect(refusal(() => checkMayBuild(registry, 'unknown', { git: HELLO_REPO }, token('ci')))?.message).toMatch(/^app unknown is not registered on this farm/);
    expect(refusal(() => checkMayBuild(registry, 'hello', { archive: 'sources/x.tar.gz' }, token('ci')))?.message).toMatch(/^app hello is built from its repositories only/);
    expect(refusal(() => checkMayBuild(registry, 'other', { archive: 'sources/x.tar.gz' }, token('other')))).toBeUndefined();
    expect(refusal(() => checkMayBuild(registry, 'other', { archive: 'sources/x.tar.gz' }, token('ci')))?.code).toBe('forbidden');
  });

  it('checks only the repository of a webhook delivery (its secret already proved who sends it)', () => {
    expect(refusal(() => checkMayBuild(registry, 'hello', { git: HELLO_REPO }, { kind: 'webhook', repository: 'acme/hello' }))).toBeUndefined();
    expect(refusal(() => checkMayBuild(registry, 'hello', { git: FORK }, { kind: 'webhook', repository: 'mallory/hello' }))?.code).toBe('forbidden');
  });

  it('allows everything without a registry (an open farm)', () => {
    expect(refusal(() => checkMayBuild(undefined, 'hello', { git: FORK }, token('anyone')))).toBeUndefined();
    expect(refusal(() => checkMayCancel(undefined, 'hello', token('anyone')))).toBeUndefined();
  });

  it('reports at start every token name no token has and every webhook that builds an app from elsewhere', () => {
    const hooks = parseGithubHooks({
      repos: {
        'acme/hello': { secret: 's'.repeat(16), app: 'hello', git: HELLO_REPO },
        'mallory/hello': { secret: 's'.repeat(16), app: 'hello', git: FORK },
        'acme/ghost': { secret: 's'.repeat(16), app: 'ghost', git: 'https://github.com/acme/ghost.git' },
      },
    });
    expect(registryProblems(registry, ['admin', 'ci'], hooks).map((i) => i.path)).toEqual([
      'XAMAL_APPS_FILE/apps/other/tokens/0',
      'XAMAL_GITHUB_HOOKS_FILE/repos/mallory/hello/git',
      'XAMAL_GITHUB_HOOKS_FILE/repos/acme/ghost/app',
    ]);
  });

  it('takes only ssh git URLs as git_dependencies, naming the entry and the form expected; none by default', () => {
    expect(registry.apps.other!.git_dependencies).toEqual([]);
    expect(() => parseAppRegistry({ apps: { hello: { repositories: [HELLO_REPO], git_dependencies: ['git@github.com:acme/billing.git', 'https://github.com/acme/ledger.git'] } } })).toThrow(
      /apps\/hello\/git_dependencies\/1[\s\S]*expected an ssh git URL like git@github\.com:acme\/billing\.git/,
    );
  });

  it('reports every bad entry of an apps file at once, with its path', () => {
    expect(() => parseAppRegistry({ apps: { Hello: { repositories: [] }, hello: { repositories: [], tokens: ['Bad Name'] }, x: { owners: [] } } })).toThrow(
      /apps\/Hello[\s\S]*apps\/hello\/tokens\/0[\s\S]*apps\/hello\/repositories[\s\S]*apps\/x/,
    );
  });
});

describe('POST /v1/builds and DELETE /v1/builds/:id with an app registry', () => {
  let app: FastifyInstance;
  let dir: string;
  const q = memoryQueues();
  const exec = new RecordingExecutor();
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-owners-'));
    const store = localStore(join(dir, 'store'));
    const tokens = parseTokenEntries(`ci:build+read:${hashToken(CI).toString('hex')}; other:build+read:${hashToken(OTHER).toString('hex')}`);
    const builds = buildService({ queues: q.queues, store, locks: async () => [LOCK], exec, apps: registry, gitUrls: REMOTE_GIT_ONLY });
    app = await buildApp({ token: ADMIN, tokens, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(store), builds } });
  });
  afterAll(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  const submit = (bearer: string, git: string, appName = 'hello') =>
    app.inject({ method: 'POST', url: '/v1/builds', headers: { authorization: `Bearer ${bearer}` }, payload: { app: appName, source: { git, commit: COMMIT }, targets: [X86] } });
  const cancel = (bearer: string, id: string) => app.inject({ method: 'DELETE', url: `/v1/builds/${id}`, headers: { authorization: `Bearer ${bearer}` } });

  it('a build of hello from another repository is refused with 403 naming the app and its repository, and nothing is enqueued', async () => {
    const res = await submit(CI, FORK);
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({ statusCode: 403, error: 'forbidden', message: `app hello is registered to ${HELLO_REPO}; this build names ${FORK} (XAMAL_APPS_FILE)` });
    expect(await q.queues.status(buildJobId(BuildJobSchema.parse({ app: 'hello', source: { kind: 'git', url: FORK, commit: COMMIT }, target: X86 })))).toBeUndefined();
  });

  it('a token not allowed for hello gets 403 on build, and no git command runs for it', async () => {
    const before = exec.commands.length;
    const res = await submit(OTHER, HELLO_REPO);
    expect(res.statusCode).toBe(403);
    expect(res.json().message).toBe('token other may not build app hello (tokens allowed: ci; XAMAL_APPS_FILE)');
    expect(exec.commands.length).toBe(before);
  });

  it('the allowed token builds hello from its repository; another app\'s token gets 403 on cancel, hello\'s token and the admin may cancel', async () => {
    const res = await submit(CI, HELLO_REPO);
    expect(res.statusCode).toBe(202);
    const id = res.json().builds[0].id as string;
    // The job carries what hello's owner entry lets its builds fetch with the farm's deploy keys (the worker's relay holds it to that).
    expect((await q.queues.status(id))?.data).toMatchObject({ gitDependencies: ['git@github.com:acme/billing.git'] });
    const refused = await cancel(OTHER, id);
    expect(refused.statusCode).toBe(403);
    expect(refused.json().message).toBe('token other may not cancel builds of app hello (tokens allowed: ci; XAMAL_APPS_FILE)');
    expect(q.cancelled).toEqual([]);
    expect((await cancel(CI, id)).json()).toEqual({ id, outcome: 'removed' });
    expect((await cancel(ADMIN, id)).statusCode).toBe(200);
    expect((await cancel(OTHER, `b${'f'.repeat(32)}`)).statusCode).toBe(404);
  });
});

describe('XAMAL_APPS_FILE', () => {
  it('is read as the path of the app registry; unset, the farm is open', () => {
    expect(farmConfig({}).appsFile).toBeUndefined();
    expect(farmConfig({ XAMAL_APPS_FILE: '/etc/xamal/apps.json' }).appsFile).toBe('/etc/xamal/apps.json');
  });
});
