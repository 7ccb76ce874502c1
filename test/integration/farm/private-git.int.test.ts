import { execFileSync } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBuild } from '../../../builder/apply.ts';
import { hostArch } from '../../../builder/images/context.ts';
import { DEFAULT_LIMITS } from '../../../builder/plan.ts';
import { gitRemoteEnvFor, parseGitCredentials } from '../../../core/contracts/git-credentials.ts';
import { parseTargetOrThrow } from '../../../core/index.ts';
import { localStore } from '../../../store/local.ts';
import { helloRepo } from '../../../testkit/example-repo.ts';
import { serveFiles } from '../../../testkit/static-files.ts';
import { workerBase, type WorkerBase } from '../../../testkit/builder/worker-base.ts';

/**
 * Issue 20 item 4 against the real engine: the app's repository on a git host that answers 401
 * without credentials (dumb HTTP on loopback); the worker fetches it with the farm's credentials
 * for that host (XAMAL_GIT_CREDENTIALS_FILE) and builds it, and without them fails with the one
 * answer for an unreadable repository.
 */
describe('a private repository built with the farm\'s git credentials (issue 20)', () => {
  const TOKEN = 'ghp_private0123456789';
  let tmp: string;
  let base: WorkerBase;
  let host: Awaited<ReturnType<typeof serveFiles>>;
  let commit: string;

  beforeAll(async () => {
    ({ tmp, base } = await workerBase('private-git-int'));
    const repo = await helloRepo(join(tmp, 'work'));
    commit = repo.commit;
    await mkdir(join(tmp, 'www'));
    execFileSync('git', ['clone', '-q', '--bare', join(tmp, 'work'), join(tmp, 'www', 'hello.git')]);
    execFileSync('git', ['update-server-info'], { cwd: join(tmp, 'www', 'hello.git') });
    host = await serveFiles(join(tmp, 'www'), { basicAuth: { username: 'x-access-token', password: TOKEN } });
  }, 1_800_000);
  afterAll(async () => {
    await host?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('fetches and builds it with them; without them the build fails as for any unreadable repository', { timeout: 600_000 }, async () => {
    const creds = parseGitCredentials(JSON.stringify({ [new URL(host.url).host]: { username: 'x-access-token', token: TOKEN } }), 'creds.json');
    const job = { app: 'hello', source: { kind: 'git' as const, url: `${host.url}/hello.git`, commit }, target: parseTargetOrThrow(`linux-${hostArch()}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`), mixEnv: 'prod' };
    const hooks = { phase: () => {}, log: () => {} };
    const without = await runBuild({ ...base, cacheDir: join(tmp, 'cache-without'), store: localStore(join(tmp, 'store-without')), limits: DEFAULT_LIMITS }, job, hooks).catch((e: Error) => e);
    expect((without as Error).message).toBe(`could not read the repository at ${host.url}/hello.git: unreachable or not found`);
    expect(host.requests.filter((r) => !r.authorized).length).toBeGreaterThan(0);

    const built = await runBuild({ ...base, store: localStore(join(tmp, 'store')), limits: DEFAULT_LIMITS, gitRemoteEnv: gitRemoteEnvFor(creds, true) }, job, hooks);
    expect(built.manifest.commit).toBe(commit);
    expect(host.requests.filter((r) => r.authorized).length).toBeGreaterThan(0);
  });
});
