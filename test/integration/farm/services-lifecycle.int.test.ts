import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { servicesConfig, servicesDown, servicesStatus, servicesUp, type ServicesConfig } from '../../../localservices/index.ts';

/** Every pid running with our state dir on its command line (what `down` must leave at zero). */
function pidsMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (cmd.includes(needle) && !/\) Z /.test(stat)) out.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return out;
}

describe('the service harness lifecycle (own state dir and ports)', () => {
  let config: ServicesConfig;
  let stateDir: string;

  afterAll(async () => {
    if (config) await servicesDown(config);
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('starts each service once, starts nothing the second time, and stops every process it started', async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'xamal-lifecycle-'));
    config = servicesConfig({
      XAMAL_STATE_DIR: stateDir,
      // Its own engine: the run's dockerd holds the default data root.
      XAMAL_ENGINE_DIR: join(stateDir, 'engine'),
      XAMAL_REDIS_PORT: '26379',
      XAMAL_S3_PORT: '24568',
      XAMAL_REGISTRY_PORT: '25000',
    });

    const first = await servicesUp(config);
    expect(first.started.sort()).toEqual(['dockerd', 'redis', 'registry', 's3']);
    const pidsBefore = (await servicesStatus(config)).map((s) => s.pid);
    expect(pidsBefore.every((p) => typeof p === 'number')).toBe(true);

    const second = await servicesUp(config);
    expect(second.started).toEqual([]);
    expect(second.alreadyUp.sort()).toEqual(['dockerd', 'redis', 'registry', 's3']);
    expect((await servicesStatus(config)).map((s) => s.pid)).toEqual(pidsBefore);

    // dockerd started containerd for us; it must go too.
    const containerdPidfile = join(config.runDir, 'docker-exec', 'containerd', 'containerd.pid');
    const containerd = Number((await readFile(containerdPidfile, 'utf8')).trim());
    expect(containerd).toBeGreaterThan(1);
    expect(pidsMentioning(stateDir).length + pidsMentioning(config.runDir).length).toBeGreaterThanOrEqual(4);

    const stopped = await servicesDown(config);
    expect(stopped.sort()).toEqual(['dockerd', 'redis', 'registry', 's3']);
    expect(pidsMentioning(stateDir)).toEqual([]);
    expect(pidsMentioning(config.runDir)).toEqual([]);
    expect(existsSync(`/proc/${containerd}`) && !/\) Z /.test(readFileSync(`/proc/${containerd}/stat`, 'utf8'))).toBe(false);
    expect((await servicesStatus(config)).every((s) => !s.running)).toBe(true);

    expect(await servicesDown(config)).toEqual([]);
  });

  it('refuses to start a service whose port another process holds, naming the port and the setting', async () => {
    const squatter = (await import('node:net')).createServer().listen(27379, '127.0.0.1');
    await new Promise((r) => squatter.once('listening', r));
    const dir = await mkdtemp(join(tmpdir(), 'xamal-squat-'));
    try {
      const c = servicesConfig({ XAMAL_STATE_DIR: dir, XAMAL_REDIS_PORT: '27379' });
      await expect(servicesUp(c, ['redis'])).rejects.toThrow(/127\.0\.0\.1:27379 is in use.*XAMAL_REDIS_PORT/);
      expect((await servicesStatus(c, ['redis']))[0]!.running).toBe(false);
    } finally {
      squatter.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
