import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { hashToken, parseTokenEntries } from '../../../api/auth.ts';
import { signDownload } from '../../../api/downloads.ts';
import { parseGithubHooks } from '../../../api/routes/github.ts';
import type { BuildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { createLogger } from '../../../core/index.ts';
import { localStore } from '../../../store/local.ts';

/** Issue #10 item 11: tokens and secrets never appear in the API's logs (pino output captured and grepped). */

const ADMIN = 'ADMINTOKEN-s3cr3t-0123456789abcdef';
const READER = 'READERTOKEN-s3cr3t-0123456789abcdef';
const WRONG = 'WRONGTOKEN-s3cr3t-0123456789abcdef';
const HOOK_SECRET = 'HOOKSECRET-s3cr3t-0123456789';
const URL_SECRET = 'URLSECRET-s3cr3t-0123456789abcdef0123456789';
const BODY_SECRET = 'BODYSECRET-s3cr3t-0123456789';
const GIT_PASSWORD = 'GITPASSWORD-s3cr3t-0123456789';

describe('secrets in API logs', () => {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'xamal-redact-'));
    // pino writes the API's lines to stderr: every line of this test is captured.
    process.stderr.write = ((chunk: string | Uint8Array) => {
      lines.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    }) as typeof process.stderr.write;
  });
  afterAll(async () => {
    process.stderr.write = write;
    await rm(root, { recursive: true, force: true });
  });

  it('logs requests carrying bearer tokens, webhook signatures, signed download links and secrets in bodies with 0 occurrences of any of them', async () => {
    const failing: BuildService = {
      submit: async () => {
        throw new Error(`git ls-remote https://ci:${GIT_PASSWORD}@git.example/acme/hello.git failed`);
      },
      status: async () => undefined,
      logs: async () => undefined,
      cancel: async () => 'unknown',
      buildSet: async () => undefined,
      list: async () => ({ builds: [] }),
    };
    const githubHooks = parseGithubHooks({ repos: { 'acme/hello': { secret: HOOK_SECRET, app: 'hello', git: 'https://github.com/acme/hello.git', matrix: { otp: ['27'] } } } });
    const app = await buildApp({
      token: ADMIN,
      tokens: parseTokenEntries(`reader:read:${hashToken(READER).toString('hex')}`),
      logLevel: 'trace',
      githubHooks,
      downloads: { secret: URL_SECRET, mode: 'api' },
      services: { health: healthService({}), ...storeBackedServices(localStore(join(root, 'store'))), builds: failing },
    });
    const grant = signDownload(URL_SECRET, { key: 'artifacts/hello/x.tar.gz', sha256: 'a'.repeat(64), filename: 'x.tar.gz', exp: Math.floor(Date.now() / 1000) + 60 });
    const hookBody = JSON.stringify({ action: 'published', release: { tag_name: 'v1' }, repository: { full_name: 'acme/hello' } });
    const requests = [
      { method: 'GET' as const, url: '/v1/builds/b' + '0'.repeat(32), headers: { authorization: `Bearer ${ADMIN}` } },
      { method: 'GET' as const, url: '/v1/builds/b' + '0'.repeat(32), headers: { authorization: `Bearer ${WRONG}` } },
      { method: 'POST' as const, url: '/v1/builds', headers: { authorization: `Bearer ${READER}` }, payload: { app: 'hello' } },
      { method: 'POST' as const, url: '/v1/builds', headers: { authorization: `Bearer ${ADMIN}` }, payload: { app: 'hello', token: BODY_SECRET, password: BODY_SECRET, source: { git: `https://u:${GIT_PASSWORD}@x.example/y.git`, commit: 'a'.repeat(40) }, targets: ['linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0'] } },
      { method: 'POST' as const, url: '/v1/builds', headers: { authorization: `Bearer ${ADMIN}` }, payload: { app: 'hello', source: { git: `https://u:${GIT_PASSWORD}@x.example/y.git`, commit: 'a'.repeat(40) }, targets: ['linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0'] } },
      { method: 'POST' as const, url: '/v1/hooks/github', headers: { 'content-type': 'application/json', 'x-github-event': 'release', 'x-hub-signature-256': `sha256=${createHmac('sha256', HOOK_SECRET).update(hookBody).digest('hex')}` }, payload: hookBody },
      { method: 'POST' as const, url: '/v1/hooks/github', headers: { 'content-type': 'application/json', 'x-github-event': 'release', 'x-hub-signature-256': `sha256=${HOOK_SECRET}` }, payload: hookBody },
      { method: 'GET' as const, url: `/v1/downloads/${grant}` },
      { method: 'GET' as const, url: `/v1/downloads/${grant}x` },
      { method: 'GET' as const, url: `/v1/artifacts?app=hello&version=${'a'.repeat(40)}&token=${BODY_SECRET}`, headers: { authorization: `Bearer ${ADMIN}` } },
    ];
    const statuses: number[] = [];
    for (const r of requests) statuses.push((await app.inject(r)).statusCode);
    // And the shared logger itself, given secrets in the fields REDACT_PATHS names.
    const logger = createLogger({ level: 'info', name: 'worker' });
    logger.info({ token: ADMIN, secret: HOOK_SECRET, env: { SECRET_KEY_BASE: BODY_SECRET }, job: { password: BODY_SECRET, authorization: `Bearer ${ADMIN}` } }, 'with secrets');
    await app.close();

    const text = lines.join('');
    const secrets = { ADMIN, READER, WRONG, HOOK_SECRET, URL_SECRET, BODY_SECRET, GIT_PASSWORD, grant };
    const found = Object.entries(secrets).flatMap(([name, s]) => (text.includes(s) ? [name] : []));
    const logLines = text.split('\n').filter(Boolean).length;
    console.log(`reliability: ${requests.length} requests (statuses ${statuses.join(' ')}) → ${logLines} log lines, ${found.length} occurrences of ${Object.keys(secrets).length} secrets${found.length ? ` (${found.join(', ')})` : ''}`);
    expect(logLines).toBeGreaterThan(requests.length);
    expect(text).toContain('[REDACTED]');
    expect(found).toEqual([]);
  });
});
