import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostArch } from '../../../builder/images/context.ts';
import { farmClient } from '../../../deployer/farm-client.ts';
import { s3Store } from '../../../store/s3.ts';
import { helloMixExsWithReleaseStep, helloRepo } from '../../../testkit/example-repo.ts';
import { wireFarm, type WiredFarm } from '../../../testkit/farm.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';
import { workerBase } from '../../../testkit/builder/worker-base.ts';

const run = promisify(execFile);

/**
 * Issue 20 item 2's acceptance, against the real farm (API, BullMQ worker on Redis, s3rver, dockerd):
 * a build request with a secret and an environment variable. Its mix.exs prints both whenever Mix
 * evaluates it: the deps step gets the secret, compile does not, and the secret is found nowhere —
 * not in the build log, the manifest, any object of the store, any Redis key of the farm, or the
 * argv of any process on the machine while the build runs.
 */
describe('build secrets reach the deps step only and are found nowhere else (issue 20)', () => {
  const SECRET = `s3cr3t-${randomBytes(12).toString('hex')}`;
  const prefix = testPrefix('build-secrets');
  let tmp: string;
  let farm: WiredFarm | undefined;

  beforeAll(async () => {
    await workerBase('build-secrets-image'); // the bookworm builder, built once
    tmp = await mkdtemp(join(tmpdir(), 'xamal-build-secrets-'));
  }, 1_800_000);
  afterAll(async () => {
    await farm?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('the deps step sees it, compile does not; logs, manifest, store, Redis and argv hold it 0 times', { timeout: 600_000 }, async () => {
    const ep = services();
    const store = s3Store({ ...ep.s3, prefix: `${prefix}/` });
    const token = randomBytes(16).toString('hex');
    farm = await wireFarm({ settings: { redisUrl: ep.redisUrl, prefix }, store, dockerSocket: ep.dockerSocket, cacheDir: join(tmp, 'cache'), workRoot: join(tmp, 'work'), token, host: '127.0.0.1', concurrency: 1 });
    const prelude = 'IO.puts("xamal-secret-seen=" <> (System.get_env("SHOP_TOKEN") || "none") <> " flavour=" <> (System.get_env("SHOP_FLAVOUR") || "none"))';
    const repo = await helloRepo(join(tmp, 'repo'), { 'mix.exs': helloMixExsWithReleaseStep(':ok', prelude) });
    const client = farmClient(farm.url, token);

    // Every process's argv, sampled while the build runs (bounded: at most 20 minutes of samples).
    let sampling = true;
    const argvHits: string[] = [];
    let samples = 0;
    const sampler = (async () => {
      for (const until = Date.now() + 1_200_000; sampling && Date.now() < until; samples++) {
        const { stdout } = await run('ps', ['-eo', 'args'], { maxBuffer: 16 * 1024 * 1024 });
        for (const line of stdout.split('\n')) if (line.includes(SECRET)) argvHits.push(line);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const tuple = `linux-${hostArch()}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`;
    const submitted = await client.submit({ app: 'hello', source: { git: repo.url, commit: repo.commit }, targets: [tuple], env: { SHOP_FLAVOUR: 'mild' }, secrets: { SHOP_TOKEN: SECRET } });
    const id = submitted.body.builds[0]!.id;
    let st = await client.status(id);
    for (const until = Date.now() + 540_000; Date.now() < until && st.state !== 'completed' && st.state !== 'failed'; st = await client.status(id)) await new Promise((r) => setTimeout(r, 250));
    sampling = false;
    await sampler;
    expect(st.state, st.failedReason).toBe('completed');

    const log = await client.logs(id);
    // The deps step got it (and its value was cut from the log); compile and everything after did not.
    expect(log).toMatch(/==> deps:[\s\S]*xamal-secret-seen=\[secret SHOP_TOKEN\] flavour=mild[\s\S]*==> compile:/);
    expect(log.slice(log.indexOf('==> compile:'))).toContain('xamal-secret-seen=none flavour=mild');
    expect(log.slice(log.indexOf('==> compile:'))).not.toContain('[secret SHOP_TOKEN]');

    // The store: every object, tarballs unpacked.
    const keys = (await Promise.all(['artifacts/', 'logs/', 'build-sets/', 'sources/'].map((p) => store.list(p)))).flat();
    let storeHits = 0;
    for (const key of keys) {
      const body = (await store.get(key))!;
      const text = key.endsWith('.tar.gz') ? gunzipSync(body).toString('latin1') : body.toString('latin1');
      if (text.includes(SECRET)) storeHits++;
    }
    expect(keys.some((k) => k.endsWith('manifest.json'))).toBe(true);

    // Redis: every key of this farm's queues, read by its type.
    const url = new URL(ep.redisUrl);
    const auth = url.password ? ['-a', decodeURIComponent(url.password)] : [];
    const cli = async (...args: string[]) => (await run('redis-cli', ['-h', url.hostname, '-p', url.port, ...auth, '--no-auth-warning', ...args], { maxBuffer: 64 * 1024 * 1024 })).stdout;
    const redisKeys = (await cli('--scan', '--pattern', `${prefix}*`)).split('\n').filter(Boolean);
    let redisHits = 0;
    const read: Record<string, string[]> = { string: ['GET'], hash: ['HGETALL'], list: ['LRANGE', '0', '-1'], set: ['SMEMBERS'], zset: ['ZRANGE', '0', '-1'], stream: ['XRANGE', '-', '+'] };
    for (const k of redisKeys) {
      const type = (await cli('TYPE', k)).trim();
      const [cmd, ...rest] = read[type] ?? ['GET'];
      if ((await cli(cmd!, k, ...rest)).includes(SECRET)) redisHits++;
    }
    expect(redisKeys.length).toBeGreaterThan(3);
    expect(url.protocol).toBe('redis:');

    // Nothing of it left on tmpfs.
    expect((await readdir('/dev/shm')).filter((n) => n.startsWith('xamal-secrets-'))).toEqual([]);
    expect({ argvHits, storeHits, redisHits, inLog: log.includes(SECRET) }).toEqual({ argvHits: [], storeHits: 0, redisHits: 0, inLog: false });
    expect(samples).toBeGreaterThan(10);
    console.log(`reliability: build secret → 0 of ${samples} argv samples, 0 of ${keys.length} store objects, 0 of ${redisKeys.length} Redis keys, 0 log lines held it; the deps step saw it, compile did not`);
  });
});
