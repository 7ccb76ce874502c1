import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { parseGithubHooks } from '../../../api/routes/github.ts';
import { buildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import type { Command, CommandResult, Executor } from '../../../core/index.ts';
import { REMOTE_GIT_ONLY, type GitUrlPolicy } from '../../../core/contracts/git-url.ts';
import type { BuildQueues } from '../../../queue/index.ts';
import { localStore } from '../../../store/local.ts';

const TOKEN = 'z'.repeat(32);
const SECRET = 'fuzz-webhook-secret-0123456789';
const T = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
/** What git says about a closed port; it must never reach an answer. */
const GIT_WORDS = 'Failed to connect to 127.0.0.1 port 6379: Connection refused';
const WEBHOOKS = 600;
const URLS = 400;

/** `git ls-remote`, answered from the URL: unreachable, no such ref, or a commit. */
class FakeGit implements Executor {
  async run(cmd: Command): Promise<CommandResult> {
    const url = String(cmd.argv.at(-2));
    if (url.length % 3 === 0) return { code: 128, stdout: '', stderr: `fatal: unable to access '${url}': ${GIT_WORDS}\n` };
    if (url.length % 3 === 1) return { code: 0, stdout: '', stderr: '' };
    return { code: 0, stdout: `${'b'.repeat(40)}\trefs/heads/main\n`, stderr: '' };
  }
}

/** Queues that take every job (what is refused is refused before). */
const queues = {
  enqueue: async () => ({ id: `b${'0'.repeat(32)}` }),
  status: async () => undefined,
  logs: async () => undefined,
  cancel: async () => 'unknown' as const,
  depth: async () => ({}),
  close: async () => {},
} as unknown as BuildQueues;

/** Header values HTTP can carry (no CR, LF or NUL): anything else is refused before the app sees it. */
const headerText = fc.string({ maxLength: 80 }).filter((s) => /^[\t\x20-\x7e]*$/.test(s));
const PROTO_NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', '__defineGetter__', 'prototype'];

const webhookPayload = fc.oneof(
  fc.jsonValue(),
  { weight: 3, arbitrary: fc.record(
    {
      action: fc.oneof(fc.constant('published'), fc.string(), fc.jsonValue()),
      release: fc.oneof(fc.record({ tag_name: fc.oneof(fc.constantFrom('v1.2.0', '-x', 'a..b', '', 'v1 2', 'x'.repeat(300)), fc.string(), fc.jsonValue()) }), fc.jsonValue()),
      repository: fc.oneof(
        { weight: 4, arbitrary: fc.record({ full_name: fc.constantFrom('acme/hello', 'acme/local') }) },
        fc.record({ full_name: fc.oneof(fc.constantFrom(...PROTO_NAMES), fc.string(), fc.jsonValue()) }),
        fc.jsonValue(),
      ),
      ref: fc.oneof(fc.constantFrom('refs/tags/v1', 'refs/heads/main'), fc.string(), fc.jsonValue()),
      after: fc.oneof(fc.constantFrom('c'.repeat(40), '0'.repeat(40), 'HEAD'), fc.string(), fc.jsonValue()),
      deleted: fc.oneof(fc.boolean(), fc.jsonValue()),
    },
    { requiredKeys: ['repository'] },
  ) },
);

const anyDelivery = fc.record({
  payload: webhookPayload,
  raw: fc.oneof({ weight: 1, arbitrary: fc.string() }, { weight: 5, arbitrary: fc.constant(null) }),
  signature: fc.oneof({ weight: 4, arbitrary: fc.constant('valid') }, fc.constant('absent'), headerText),
  event: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('release', 'push', 'ping', 'issues') }, headerText, fc.constant(undefined)),
  delivery: fc.oneof({ weight: 4, arbitrary: fc.uuid() }, fc.constantFrom('replayed-delivery-1', 'replayed-delivery-2'), headerText, fc.constant(undefined)),
  contentType: fc.constantFrom('application/json', 'application/json', 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded'),
});

/** Signed, well-formed deliveries of a configured repository whose release tag, tag push or event varies: they reach the build service. */
const signedDelivery = fc.record({
  payload: fc.oneof(
    fc.record({ action: fc.constantFrom('published', 'created'), release: fc.record({ tag_name: fc.oneof(fc.constantFrom('v1.2.0', 'release/2026-01', '-rc', 'a..b', 'v1 2'), fc.string()) }), repository: fc.record({ full_name: fc.constantFrom('acme/hello', 'acme/local') }) }),
    fc.record({ ref: fc.oneof(fc.constantFrom('refs/tags/v1', 'refs/heads/main'), fc.string()), after: fc.oneof(fc.constantFrom('c'.repeat(40), '0'.repeat(40)), fc.string()), repository: fc.record({ full_name: fc.constantFrom('acme/hello', 'acme/local') }) }),
  ),
  raw: fc.constant(null),
  signature: fc.constant('valid'),
  event: fc.constantFrom('release', 'release', 'push', 'push', 'ping'),
  delivery: fc.oneof({ weight: 5, arbitrary: fc.uuid() }, fc.constant('replayed-delivery-3')),
  contentType: fc.constant('application/json'),
});

const webhookDelivery = fc.oneof(anyDelivery, signedDelivery);

const HOSTILE_URLS = [
  '-u@h:x',
  'u@-h:x',
  '--upload-pack=touch /tmp/pwned',
  'ssh://-oProxyCommand=id@h/x',
  'ssh://%2DoProxyCommand=id@h/x',
  'ext::sh -c touch% /tmp/pwned',
  'a@ext::sh',
  'fd::3',
  'file:///etc',
  'file://otherhost/x',
  '/var/lib/xamal',
  'https://user:ghp_token@github.com/a/b.git',
  'http://127.0.0.1:6379/',
  'git://127.0.0.1:6379/x',
  'https://[::1]:6379/x',
  'constructor',
  '__proto__',
];

const gitUrl = fc.oneof(
  fc.constantFrom(...HOSTILE_URLS),
  fc.webUrl({ validSchemes: ['https', 'http', 'ssh', 'git', 'file', 'git+ssh', 'ftp', 'ext'], authoritySettings: { withUserInfo: true, withPort: true, withIPv4: true, withIPv6: true }, withQueryParameters: true, withFragments: true }),
  fc.tuple(fc.stringMatching(/^-?[a-z0-9._-]{0,12}$/), fc.stringMatching(/^-?[a-z0-9.:[\]-]{0,20}$/), fc.string({ maxLength: 30 })).map(([u, h, p]) => `${u}@${h}:${p}`),
  fc.tuple(fc.constantFrom('-', ' ', '\n', '\u0000', 'ext::', '\t'), fc.webUrl()).map(([pre, u]) => pre + u),
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 100 }),
);

const gitSource = fc.record({ git: gitUrl, pick: fc.oneof(fc.constant('commit'), fc.constant('ref'), fc.string({ maxLength: 20 })) }).map(({ git, pick }) =>
  pick === 'commit' ? { git, commit: 'a'.repeat(40) } : { git, ref: pick === 'ref' ? 'main' : pick },
);

describe('the webhook and the git URL check under hostile input', () => {
  let root: string;
  const apps: FastifyInstance[] = [];
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'xamal-fuzz-gh-'));
    const githubHooks = parseGithubHooks({
      repos: {
        'acme/hello': { secret: SECRET, app: 'hello', git: 'https://github.com/acme/hello.git', matrix: { otp: ['27'] } },
        'acme/local': { secret: SECRET, app: 'hello', git: 'file:///srv/repos/hello.git', targets: [T] },
      },
    });
    const make = async (gitUrls: GitUrlPolicy) => {
      const store = localStore(join(root, `store-${apps.length}`));
      const builds = buildService({ queues, store, locks: async () => [], exec: new FakeGit(), gitUrls });
      const app = await buildApp({ token: TOKEN, logLevel: 'silent', githubHooks, services: { health: healthService({}), ...storeBackedServices(store), builds } });
      apps.push(app);
    };
    await make(REMOTE_GIT_ONLY);
    await make({ allowLocal: true, allowHttp: true });
  });
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.close()));
    await rm(root, { recursive: true, force: true });
  });

  it(`answers ${WEBHOOKS} generated webhook deliveries and ${URLS} generated git URLs (each to a strict and a permissive farm) with 0 5xx, and never with git's own words`, { timeout: 60_000 }, async () => {
    const fives: string[] = [];
    const leaks: string[] = [];
    let requests = 0;
    const record = (what: string, r: { statusCode: number; body: string }) => {
      requests++;
      if (r.statusCode >= 500) fives.push(`${r.statusCode} ${what} → ${r.body.slice(0, 200)}`);
      if (r.body.includes(GIT_WORDS)) leaks.push(`${what} → ${r.body.slice(0, 200)}`);
    };
    await fc.assert(
      fc.asyncProperty(webhookDelivery, async (d) => {
        const body = d.raw ?? JSON.stringify(d.payload) ?? '';
        const signature = d.signature === 'valid' ? `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}` : d.signature === 'absent' ? undefined : d.signature;
        const headers: Record<string, string> = { 'content-type': d.contentType };
        if (signature !== undefined) headers['x-hub-signature-256'] = signature;
        if (d.event !== undefined) headers['x-github-event'] = d.event;
        if (d.delivery !== undefined) headers['x-github-delivery'] = d.delivery;
        const r = await apps[requests % 2]!.inject({ method: 'POST', url: '/v1/hooks/github', headers, payload: body });
        record(`webhook ${JSON.stringify(d).slice(0, 300)}`, r);
      }),
      { numRuns: WEBHOOKS },
    );
    await fc.assert(
      fc.asyncProperty(gitSource, async (source) => {
        for (const app of apps) {
          const r = await app.inject({ method: 'POST', url: '/v1/builds', headers: { authorization: `Bearer ${TOKEN}` }, payload: { app: 'hello', source, targets: [T] } });
          record(`build ${JSON.stringify(source)}`, r);
        }
      }),
      { numRuns: URLS },
    );
    console.log(`reliability: webhook and URL fuzz → ${requests} requests, ${fives.length} 5xx`);
    expect(requests).toBe(WEBHOOKS + URLS * apps.length);
    expect(fives).toEqual([]);
    expect(leaks).toEqual([]);
  });
});
