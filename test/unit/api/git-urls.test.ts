import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { buildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { createLogger, type Command, type CommandResult, type Executor } from '../../../core/index.ts';
import { REMOTE_GIT_ONLY, type GitUrlPolicy } from '../../../core/contracts/git-url.ts';
import type { BuildQueues } from '../../../queue/index.ts';
import { localStore } from '../../../store/local.ts';

const TOKEN = 'g'.repeat(32);
const AUTH = { authorization: `Bearer ${TOKEN}` };
const T = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
const C = 'a'.repeat(40);

/** `git ls-remote` as a remote that cannot be read answers it (git's words name the closed port). */
class UnreachableGit implements Executor {
  readonly ran: Command[] = [];
  constructor(private readonly how: 'exit' | 'timeout' = 'exit') {}
  async run(cmd: Command): Promise<CommandResult> {
    this.ran.push(cmd);
    if (this.how === 'timeout') throw new Error(`timed out after 30000 ms: git ls-remote`);
    return { code: 128, stdout: '', stderr: "fatal: unable to access 'https://127.0.0.1:6379/x.git/': Failed to connect to 127.0.0.1 port 6379: Connection refused\n" };
  }
}

/** Queues that take nothing: every test here is decided before a job exists. */
const noQueues = {
  enqueue: async () => {
    throw new Error('no job may be enqueued in these tests');
  },
  status: async () => undefined,
  logs: async () => undefined,
  cancel: async () => 'unknown' as const,
  depth: async () => ({}),
  close: async () => {},
} as unknown as BuildQueues;

describe('POST /v1/builds: which git URLs the farm fetches', () => {
  let root: string;
  const logged: string[] = [];
  const apps: FastifyInstance[] = [];
  const exec = new UnreachableGit();
  const app = async (gitUrls: GitUrlPolicy, ex: Executor = exec) => {
    const store = localStore(join(root, 'store'));
    const logger = createLogger({ level: 'info', destination: new Writable({ write: (b, _e, cb) => (logged.push(String(b)), cb()) }) });
    const builds = buildService({ queues: noQueues, store, locks: async () => [], exec: ex, gitUrls, logger });
    const a = await buildApp({ token: TOKEN, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(store), builds } });
    apps.push(a);
    return a;
  };
  const submit = (a: FastifyInstance, source: object) => a.inject({ method: 'POST', url: '/v1/builds', headers: AUTH, payload: { app: 'hello', source, targets: [T] } });
  const message = (r: { json(): unknown }) => (r.json() as { message: string }).message;
  /** Past the URL check: with no builder image pinned here, the request ends at "no target can be built". */
  const passed = (r: { statusCode: number; json(): unknown }, url: string) => {
    expect(r.statusCode, url).toBe(422);
    expect(message(r), url).toMatch(/^no target can be built/);
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'xamal-git-urls-'));
  });
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.close()));
    await rm(root, { recursive: true, force: true });
  });

  it('refuses file:// and local paths with 400 naming source/git unless the farm allows local sources', async () => {
    const strict = await app(REMOTE_GIT_ONLY);
    const local = await app({ allowLocal: true, allowHttp: false });
    for (const url of ['file:///srv/repos/other-team.git', '/srv/repos/other-team.git']) {
      const refused = await submit(strict, { git: url, commit: C });
      expect(refused.statusCode, url).toBe(400);
      expect(message(refused)).toMatch(/^source\/git: file:\/\/ URLs and local paths are refused.*XAMAL_GIT_ALLOW_LOCAL=1/);
      passed(await submit(local, { git: url, commit: C }), url);
    }
  });

  it('refuses http:// and git:// with 400 unless the farm allows them; https and ssh pass', async () => {
    const strict = await app(REMOTE_GIT_ONLY);
    const http = await app({ allowLocal: false, allowHttp: true });
    for (const url of ['http://git.example/a.git', 'git://git.example/a.git']) {
      expect(message(await submit(strict, { git: url, commit: C }))).toMatch(/^source\/git: .* is unencrypted and refused/);
      passed(await submit(http, { git: url, commit: C }), url);
    }
    for (const url of ['https://git.example/a.git', 'ssh://git@git.example/a.git', 'git@git.example:a.git']) passed(await submit(strict, { git: url, commit: C }), url);
  });

  it('refuses credentials in the URL with 400 naming source/git and saying to use a deploy key, without echoing them', async () => {
    const a = await app({ allowLocal: true, allowHttp: true });
    for (const url of ['https://ci:ghp_SECRET123@github.com/acme/hello.git', 'https://ghp_SECRET123@github.com/acme/hello.git']) {
      const r = await submit(a, { git: url, ref: 'main' });
      expect(r.statusCode).toBe(400);
      expect(message(r)).toMatch(/source\/git: must not carry credentials.*deploy key or a git credential helper/);
      expect(r.body).not.toContain('ghp_SECRET123');
    }
  });

  it('answers a URL or host starting with "-" with 400 (it was a 500), running no git', async () => {
    const a = await app({ allowLocal: true, allowHttp: true });
    const before = exec.ran.length;
    for (const url of ['-u@h:x', 'u@-h:x', 'ssh://-oProxyCommand=touch%20x@h/x', '--upload-pack=x']) {
      const r = await submit(a, { git: url, ref: 'main' });
      expect(r.statusCode, url).toBe(400);
      expect(message(r)).toMatch(/source\/git: /);
    }
    expect(exec.ran.length).toBe(before);
  });

  it('answers a remote git cannot read with one generic 400; git\'s own words reach only the server log', async () => {
    for (const [ex, words] of [[new UnreachableGit('exit'), /Connection refused/], [new UnreachableGit('timeout'), /timed out after 30000 ms/]] as const) {
      const a = await app(REMOTE_GIT_ONLY, ex);
      logged.length = 0;
      const r = await submit(a, { git: 'https://127.0.0.1:6379/x.git', ref: 'main' });
      expect(r.statusCode).toBe(400);
      expect(message(r)).toBe('source/git: could not read the repository at https://127.0.0.1:6379/x.git: unreachable or not found');
      expect(r.body).not.toMatch(/refused|timed out|port 6379:/i);
      expect(logged.join('')).toMatch(words);
      expect(ex.ran[0]).toMatchObject({ argv: ['git', 'ls-remote', '--', 'https://127.0.0.1:6379/x.git', 'main'], env: { GIT_TERMINAL_PROMPT: '0' } });
    }
  });
});
