import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../localservices/config.ts';
import { cliBaseEnv } from '../../../testkit/config.ts';
import { startOwnRedis, type OwnRedis } from '../../../testkit/redis.ts';
import { testPrefix } from '../../../testkit/integration.ts';
import { testSigningKey, testSigningKeyPath } from '../../../testkit/signing.ts';

const DRAIN_MS = 4_000;
/**
 * Node's own exit after the command returns (bin/xamal.mjs gives connections 0.5 s), plus slack for a
 * loaded machine (the suite runs two lanes on 2 cores). Measured on a quiet machine: 4.7 s for a 4 s
 * drain; the code before this test kept running for minutes.
 */
const EXIT_MARGIN_MS = 3_000;

/**
 * Starts `xamal <args>` as its own process, waits until it prints `ready`, stops Redis, sends SIGTERM
 * and measures how long the process takes to exit.
 */
async function sigtermWithRedisGone(args: string[], ready: RegExp, redis: OwnRedis, env: Record<string, string>) {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'xamal.mjs'), ...args], {
    cwd: PROJECT_ROOT,
    env: { ...cliBaseEnv(), HOME: process.env.HOME ?? '/root', XAMAL_REDIS_URL: redis.url, XAMAL_DRAIN_MS: String(DRAIN_MS), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    for (let i = 0; i < 600 && !ready.test(out); i++) {
      if (child.exitCode !== null) throw new Error(`xamal ${args.join(' ')} exited early:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(out).toMatch(ready);
    redis.kill();
    // Let the connections notice that Redis is gone (they start reconnecting).
    await new Promise((r) => setTimeout(r, 1_000));
    const t0 = Date.now();
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), DRAIN_MS + 30_000))]);
    return { code, ms: Date.now() - t0, out };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

describe('a farm process told to stop while Redis is unreachable', () => {
  const dirs: string[] = [];
  const redises: OwnRedis[] = [];
  afterAll(async () => {
    for (const r of redises) r.kill();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const ownRedis = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xamal-shutdown-'));
    dirs.push(dir);
    const r = await startOwnRedis(dir);
    redises.push(r);
    return { dir, redis: r };
  };

  it('an idle `xamal farm worker` exits within its drain timeout after SIGTERM', { timeout: 90_000 }, async () => {
    const { dir, redis } = await ownRedis();
    testSigningKey(); // made on first use: a worker refuses to start without its signing key
    const r = await sigtermWithRedisGone(['farm', 'worker'], /^worker: /m, redis, { XAMAL_STATE_DIR: dir, XAMAL_QUEUE_PREFIX: testPrefix('stop-worker'), XAMAL_SIGNING_KEY_FILE: testSigningKeyPath() });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/SIGTERM: finishing current builds/);
    expect(r.ms, r.out).toBeLessThan(DRAIN_MS + EXIT_MARGIN_MS);
  });

  it('`xamal farm up` exits within its drain timeout after SIGTERM', { timeout: 120_000 }, async () => {
    const { redis } = await ownRedis();
    // The run's services are up already (global setup): farm up starts none and stops none.
    const r = await sigtermWithRedisGone(['farm', 'up', '--no-example', '--port', '0'], /serving; press Ctrl-C/, redis, { XAMAL_QUEUE_PREFIX: testPrefix('stop-up') });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/SIGTERM: stopping/);
    expect(r.ms, r.out).toBeLessThan(DRAIN_MS + EXIT_MARGIN_MS);
  });
});
