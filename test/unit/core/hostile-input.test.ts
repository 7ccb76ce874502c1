import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import type { BuildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { BuildJobSchema, CommitSchema } from '../../../core/contracts/build-job.ts';
import {
  AppNameSchema,
  parseSelectorString,
  parseTarget,
  ReleaseNameSchema,
  shellQuote,
  TargetSelectorSchema,
  ValidationError,
  VersionNameSchema,
  XamalError,
} from '../../../core/index.ts';
import { localStore } from '../../../store/local.ts';
import type { ObjectStore } from '../../../store/store.ts';
import { appLayout, releaseDir } from '../../../deployer/commands/layout.ts';
import { removeReleasesCommand } from '../../../deployer/commands/slots.ts';
import { loadDeployConfig } from '../../../deployer/config/load.ts';
import { HostSchema, NameSchema } from '../../../deployer/config/schema.ts';

/** Issue #10 items 7 and 8: generated malformed input and hostile names, each with its count. */

const RUNS = 1000;

/** Names an attacker would try for an app, release, version, tuple or host. */
const HOSTILE = [
  '..',
  '../',
  '../../etc/passwd',
  '/',
  '/etc/passwd',
  'a/b',
  'a/../b',
  'hello/..',
  '.',
  './hello',
  'hello\0',
  '\0',
  'hel\0lo',
  'hello;rm -rf /',
  'hello && id',
  'hello|id',
  '$(id)',
  '`id`',
  'hello$IFS',
  '${HOME}',
  "hello'",
  'hello"',
  'hello\n',
  'hello\nid',
  'hello\r',
  'hello world',
  'hello\t',
  '-rf',
  '--help',
  '*',
  'hello*',
  '~root',
  '%2e%2e%2f',
  '..%2f',
  '\\..\\',
  'hello>x',
  '<x',
  'héllo',
  '',
] as const;

describe('hostile names are refused by the validators, before any store, filesystem or shell use', () => {
  const validators: Record<string, (s: string) => boolean> = {
    'app name': (s) => AppNameSchema.safeParse(s).success,
    'release name': (s) => ReleaseNameSchema.safeParse(s).success,
    'version (API)': (s) => VersionNameSchema.safeParse(s).success,
    'commit': (s) => CommitSchema.safeParse(s).success,
    'target tuple': (s) => parseTarget(s).ok,
    'deploy host': (s) => HostSchema.safeParse(s).success,
    'service/destination/role name': (s) => NameSchema.safeParse(s).success,
    'release dir on a host': (s) => {
      try {
        releaseDir(appLayout('app', undefined), s);
        return true;
      } catch (err) {
        if (err instanceof XamalError && err.code === 'validation') return false;
        throw err;
      }
    },
  };

  it(`refuses all ${HOSTILE.length} hostile names in each of ${Object.keys(validators).length} validators`, () => {
    const accepted: string[] = [];
    let tried = 0;
    for (const [name, ok] of Object.entries(validators)) {
      for (const h of HOSTILE) {
        tried++;
        // `hello*`-like shapes are harmless as tuples only if refused; a deploy host must not carry any of these.
        if (ok(h)) accepted.push(`${name}: ${JSON.stringify(h)}`);
      }
    }
    console.log(`reliability: hostile names → ${tried - accepted.length}/${tried} refused`);
    expect(accepted).toEqual([]);
  });

  it('refuses a build job with a hostile app or release name, naming the field', () => {
    const base = { source: { kind: 'git', url: 'https://x/y.git', commit: 'a'.repeat(40) }, target: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0' };
    for (const h of HOSTILE) {
      const app = BuildJobSchema.safeParse({ ...base, app: h });
      expect(app.success).toBe(false);
      expect(app.error!.issues.map((i) => i.path.join('/'))).toContain('app');
      const rel = BuildJobSchema.safeParse({ ...base, app: 'hello', release: h });
      expect(rel.success).toBe(false);
      expect(rel.error!.issues.map((i) => i.path.join('/'))).toContain('release');
    }
  });

  it('builds no prune command for a hostile version (rm -rf never sees a path outside releases/)', () => {
    for (const h of HOSTILE) expect(() => removeReleasesCommand(appLayout('app', undefined), ['0123456789abcdef', h])).toThrow(/^version: expected/);
  });

  it('the local store refuses a key that would leave its root, touching nothing', async () => {
    const root = await mkdtemp(join(tmpdir(), 'xamal-hostile-'));
    try {
      const store = localStore(join(root, 'store'));
      for (const h of ['../escape', 'a/../../escape', '/abs', 'a//b', 'a\0b']) {
        await expect(store.put(h, 'x')).rejects.toThrow(/invalid store key/);
        await expect(store.get(h)).rejects.toThrow(/invalid store key/);
      }
      expect(execFileSync('find', [root], { encoding: 'utf8' }).trim().split('\n')).toEqual([root]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('the API refuses hostile names with a 4xx before touching the store or the queue', () => {
  let app: FastifyInstance;
  const calls: string[] = [];
  const submitted: unknown[] = [];
  const spy: ObjectStore = new Proxy(localStore('/nonexistent-xamal-hostile'), {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (...args: unknown[]) => (calls.push(`${String(prop)} ${JSON.stringify(args[0])}`), v.apply(target, args)) : v;
    },
  });
  const builds: BuildService = {
    submit: async (req) => (submitted.push(req), { buildSet: 's', builds: [], unresolved: [] }),
    status: async () => undefined,
    logs: async () => undefined,
    cancel: async () => 'unknown',
    buildSet: async () => undefined,
    list: async () => ({ builds: [] }),
  };
  const TOKEN = 'h'.repeat(32);
  beforeAll(async () => {
    app = await buildApp({ token: TOKEN, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(spy), builds } });
  });
  afterAll(async () => app.close());

  it('answers 4xx to every hostile app, version and tuple in artifact paths, queries, resolve and build bodies, with 0 store calls and 0 submitted builds', async () => {
    const C = 'a'.repeat(40);
    const T = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
    const HOST = { os: 'linux', arch: 'x86_64', libc: 'gnu', libcVersion: '2.36', distro: 'debian', distroVersion: '12', libraries: [] };
    const auth = { authorization: `Bearer ${TOKEN}` };
    const seg = (s: string) => encodeURIComponent(s);
    const statuses: number[] = [];
    for (const h of HOSTILE.filter((x) => x !== '')) {
      const requests = [
        { method: 'GET' as const, url: `/v1/artifacts/${seg(h)}/${C}/${T}` },
        { method: 'GET' as const, url: `/v1/artifacts/hello/${seg(h)}/${T}` },
        { method: 'GET' as const, url: `/v1/artifacts/hello/${C}/${seg(h)}` },
        { method: 'GET' as const, url: `/v1/artifacts/${seg(h)}/${C}/${T}/download` },
        { method: 'GET' as const, url: `/v1/artifacts?app=${seg(h)}&version=${C}` },
        { method: 'GET' as const, url: `/v1/artifacts?app=hello&version=${seg(h)}` },
        { method: 'POST' as const, url: '/v1/resolve', payload: { app: h, version: C, host: HOST } },
        { method: 'POST' as const, url: '/v1/resolve', payload: { app: 'hello', version: h, host: HOST } },
        { method: 'POST' as const, url: '/v1/builds', payload: { app: h, source: { git: 'https://x/y.git', commit: C }, targets: [T] } },
        { method: 'POST' as const, url: '/v1/builds', payload: { app: 'hello', release: h, source: { git: 'https://x/y.git', commit: C }, targets: [T] } },
        { method: 'POST' as const, url: '/v1/builds', payload: { app: 'hello', source: { git: 'https://x/y.git', commit: h }, targets: [T] } },
        { method: 'POST' as const, url: '/v1/builds', payload: { app: 'hello', source: { git: 'https://x/y.git', commit: C }, targets: [h] } },
      ];
      for (const r of requests) {
        const res = await app.inject({ ...r, headers: auth });
        statuses.push(res.statusCode);
        expect(res.statusCode, `${r.method} ${r.url} ${JSON.stringify(r.payload ?? '')}`).toBeGreaterThanOrEqual(400);
        expect(res.statusCode).toBeLessThan(500);
      }
    }
    console.log(`reliability: hostile names in API requests → ${statuses.filter((s) => s >= 400 && s < 500).length}/${statuses.length} answered 4xx, ${calls.length} store calls, ${submitted.length} builds submitted`);
    expect(calls).toEqual([]);
    expect(submitted).toEqual([]);
  });
});

/** Every problem has a field path and a message; anything else thrown is a bug. */
function expectValidation(err: unknown): void {
  if (!(err instanceof ValidationError)) throw err;
  expect(err.issues.length).toBeGreaterThan(0);
  for (const i of err.issues) {
    expect(i.path).toMatch(/\S/);
    expect(i.message).toMatch(/\S/);
  }
}

describe('generated malformed selectors and deploy.yml documents', () => {
  it(`parses ${RUNS} generated selector strings and values: each is a selector or a ValidationError with field paths, never another exception`, () => {
    let ok = 0;
    let refused = 0;
    const key = fc.constantFrom('os', 'arch', 'libc', 'distro', 'otp', 'elixir', 'qualifiers', 'x', '', '__proto__', 'constructor');
    const part = fc.tuple(key, fc.oneof(fc.string(), fc.constantFrom(...HOSTILE), fc.stringMatching(/^[0-9.]{0,8}$/))).map(([k, v]) => `${k}=${v}`);
    const text = fc.oneof(fc.string(), fc.array(fc.oneof(part, fc.string()), { maxLength: 6 }).map((p) => p.join(',')));
    fc.assert(
      fc.property(text, fc.anything(), (s, value) => {
        try {
          parseSelectorString(s);
          ok++;
        } catch (err) {
          expectValidation(err);
          refused++;
        }
        const r = TargetSelectorSchema.safeParse(value);
        if (!r.success) for (const i of r.error.issues) expect(typeof i.message).toBe('string');
      }),
      { numRuns: RUNS },
    );
    console.log(`reliability: ${RUNS} generated selectors → ${ok} parsed, ${refused} ValidationError with paths, 0 other exceptions`);
    expect(ok + refused).toBe(RUNS);
  });

  it(`loads ${RUNS} generated deploy.yml documents (mutated valid ones, random YAML, random text): each loads or fails as a ValidationError with field paths`, { timeout: 60_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'xamal-fuzz-yml-'));
    await mkdir(join(root, 'config'));
    const VALID = {
      service: 'my-app',
      servers: { web: { hosts: ['web1.example.com'] }, jobs: { hosts: ['jobs1.example.com'], cmd: 'bin/app jobs' } },
      env: { clear: { LOG_LEVEL: 'info' }, secret: ['SECRET_KEY_BASE'] },
      ssh: { user: 'deploy', port: 22 },
      caddy: { host: 'app.example.com' },
      boot: { limit: 1 },
      health_check: { path: '/up' },
      farm: { url: 'https://farm.example.com', target: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0' },
    };
    const keys = [...Object.keys(VALID), 'servers.web.hosts', 'ssh.port', 'env.clear', 'farm.target', 'release', 'aliases', 'packages', 'retain_releases', 'x-anchor', 'bogus'];
    const hostileValue = fc.oneof(fc.jsonValue(), fc.constantFrom(...HOSTILE), fc.array(fc.constantFrom(...HOSTILE)), fc.dictionary(fc.constantFrom(...HOSTILE), fc.jsonValue()));
    const mutated = fc.array(fc.tuple(fc.constantFrom(...keys), fc.option(hostileValue, { nil: undefined })), { minLength: 1, maxLength: 4 }).map((edits) => {
      const doc = structuredClone(VALID) as Record<string, unknown>;
      for (const [path, v] of edits) {
        const parts = path.split('.');
        let at = doc as Record<string, unknown>;
        for (const p of parts.slice(0, -1)) at = (at[p] && typeof at[p] === 'object' ? at[p] : (at[p] = {})) as Record<string, unknown>;
        if (v === undefined) delete at[parts.at(-1)!];
        else at[parts.at(-1)!] = v;
      }
      return stringify(doc);
    });
    const validText = stringify(VALID);
    const garbled = fc.tuple(fc.nat({ max: validText.length }), fc.string({ maxLength: 12 })).map(([at, s]) => validText.slice(0, at) + s + validText.slice(at));
    const doc = fc.oneof(mutated, garbled, fc.jsonValue().map((v) => stringify(v)), fc.string(), fc.constant('<%= ENV["NOPE"] %>\n'), fc.constant('a: &a [*a]\n'));
    let loaded = 0;
    let refused = 0;
    try {
      await fc.assert(
        fc.asyncProperty(doc, async (text) => {
          await writeFile(join(root, 'config/deploy.yml'), text);
          try {
            await loadDeployConfig({ root, env: {} });
            loaded++;
          } catch (err) {
            expectValidation(err);
            refused++;
          }
        }),
        { numRuns: RUNS },
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
    console.log(`reliability: ${RUNS} generated deploy.yml documents → ${loaded} loaded, ${refused} ValidationError with paths, 0 other exceptions`);
    expect(loaded + refused).toBe(RUNS);
    expect(refused).toBeGreaterThan(RUNS / 2);
  });

  it('reports an alias to no anchor as a YAML problem of its file (it used to escape as a ReferenceError)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'xamal-alias-'));
    try {
      await mkdir(join(root, 'config'));
      await writeFile(join(root, 'config/deploy.yml'), 'service: *nope\n');
      const err = await loadDeployConfig({ root, env: {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues).toEqual([{ path: 'config/deploy.yml', message: expect.stringMatching(/^invalid YAML: .*alias/i) }]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('shellQuote against a real /bin/sh', () => {
  it(`round-trips ${RUNS} generated strings (any Unicode, shell metacharacters, newlines, quotes) through sh -c as single words`, { timeout: 60_000 }, () => {
    const meta = fc.array(fc.constantFrom(...`'"\\$\`!*?[]{}()<>|&;#~= \t\n\r-`.split(''), 'a', 'é', '😀'), { maxLength: 20 }).map((c) => c.join(''));
    const words = fc.sample(fc.oneof(fc.string({ unit: 'binary', maxLength: 30 }), meta, fc.constantFrom(...HOSTILE)).filter((s) => !s.includes('\0')), { numRuns: RUNS });
    const script = `printf '%s\\0' ${words.map(shellQuote).join(' ')}`;
    const out = execFileSync('sh', ['-c', script], { maxBuffer: 64 << 20 }).toString('utf8').split('\0').slice(0, -1);
    const same = out.filter((w, i) => w === words[i]).length;
    console.log(`reliability: shellQuote → ${same}/${words.length} hostile strings came back from sh -c unchanged`);
    expect(out).toEqual(words);
    expect(() => shellQuote('a\0b')).toThrow(/NUL/);
  });
});
