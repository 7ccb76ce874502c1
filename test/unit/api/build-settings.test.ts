import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { buildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { openSecrets } from '../../../core/contracts/build-settings.ts';
import { REMOTE_GIT_ONLY } from '../../../core/contracts/git-url.ts';
import { RecordingExecutor } from '../../../core/index.ts';
import type { LockFile } from '../../../images/lock.ts';
import { localStore } from '../../../store/local.ts';
import { memoryQueues } from '../../../testkit/api/memory-queues.ts';
import { FAKE_DIGEST } from '../../../testkit/builder/fake-docker.ts';

const TUPLE = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
const TOKEN = 'admin-token-0123456789abcdefghij';
const LOCK: LockFile = { version: 1, images: [{ ref: 'xamal/builder:t', digest: FAKE_DIGEST, platforms: [{ arch: 'x86_64', digest: FAKE_DIGEST }], resolvedAt: '2025-01-01T00:00:00.000Z', source: 'registry', flavour: 'builder', tuple: TUPLE }] };
const SECRET = 'hexkey-0123456789abcdef';

describe('POST /v1/builds with build settings: environment and secrets', () => {
  let dir: string;
  const key = randomBytes(32);
  const farms: Awaited<ReturnType<typeof buildApp>>[] = [];
  const farm = async (secretsKey?: Buffer) => {
    const q = memoryQueues();
    const store = localStore(join(dir, `store-${farms.length}`));
    const builds = buildService({ queues: q.queues, store, locks: async () => [LOCK], exec: new RecordingExecutor(), gitUrls: REMOTE_GIT_ONLY, ...(secretsKey ? { secretsKey } : {}) });
    const app = await buildApp({ token: TOKEN, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(store), builds } });
    farms.push(app);
    const submit = (body: Record<string, unknown>) =>
      app.inject({ method: 'POST', url: '/v1/builds', headers: { authorization: `Bearer ${TOKEN}` }, payload: { app: 'shop', source: { git: 'https://github.com/acme/shop.git', commit: 'c'.repeat(40) }, targets: [TUPLE], ...body } });
    return { q, submit };
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-build-settings-'));
  });
  afterAll(async () => {
    for (const f of farms) await f.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('puts the environment, the extra packages and the assets inputs in the job and the secrets only sealed with the farm\'s key', async () => {
    const { q, submit } = await farm(key);
    const res = await submit({ env: { SHOP_FLAVOUR: 'mild' }, secrets: { HEX_API_KEY: SECRET }, packages: ['libvips-dev', 'imagemagick'], assets: { inputs: ['lib/**/*.heex', 'assets/**'] } });
    expect(res.statusCode, res.body).toBe(202);
    const id = res.json().builds[0].id as string;
    const data = (await q.queues.status(id))!.data as Record<string, unknown>;
    expect(data.env).toEqual({ SHOP_FLAVOUR: 'mild' });
    expect(data.packages).toEqual(['imagemagick', 'libvips-dev']);
    expect(data.assets).toEqual({ inputs: ['assets/**', 'lib/**/*.heex'] });
    expect(JSON.stringify(data)).not.toContain(SECRET);
    expect(openSecrets(key, data.sealedSecrets as string)).toEqual({ HEX_API_KEY: SECRET });
    expect(res.body).not.toContain(SECRET);
  });

  it('refuses secrets on a farm with no key, and settings the farm sets itself, naming the field (400)', async () => {
    const { submit } = await farm();
    const none = await submit({ secrets: { HEX_API_KEY: SECRET } });
    expect(none.statusCode).toBe(400);
    expect(none.json().message).toBe('secrets: this farm takes no build secrets: it has no XAMAL_BUILD_SECRETS_KEY (shared by its API and workers)');
    expect(none.body).not.toContain(SECRET);
    const reserved = await submit({ env: { MIX_HOME: '/x' } });
    expect(reserved.statusCode).toBe(400);
    expect(reserved.json().message).toBe("body/env/MIX_HOME: set by the farm itself (HOME, PATH, MIX_*, proxies, XAMAL_*): not a build setting");
    const short = await submit({ secrets: { K: 'abc' } });
    expect(short.statusCode).toBe(400);
    expect(short.json().message).toMatch(/^body\/secrets\/K: expected at least 4 characters/);
    const outside = await submit({ assets: { inputs: ['assets/../../etc/**'] } });
    expect(outside.statusCode).toBe(400);
    expect(outside.json().message).toBe('body/assets/inputs/0: expected a path relative to the project root, without empty, "." or ".." parts');
  });
});
