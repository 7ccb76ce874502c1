import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serviceSpec } from '../../../localservices/catalog.ts';
import { servicesConfig } from '../../../localservices/config.ts';
import { BUILD_JOB_OPTIONS } from '../../../queue/producer.ts';

describe('the embedded Redis is bounded in memory and never evicts', () => {
  const dirs: string[] = [];
  const config = async (env: Record<string, string> = {}) => {
    const stateDir = await mkdtemp(join(tmpdir(), 'xamal-redis-mem-'));
    dirs.push(stateDir);
    return servicesConfig({ XAMAL_STATE_DIR: stateDir, ...env });
  };
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  it('its config file sets maxmemory 256mb with the noeviction policy BullMQ requires; the command line sets neither', async () => {
    const spec = serviceSpec(await config(), 'redis');
    const conf = spec.files[0]!.content.split('\n');
    expect(conf).toContain('maxmemory 256mb');
    expect(conf).toContain('maxmemory-policy noeviction');
    expect(spec.argv.join(' ')).not.toMatch(/maxmemory/);
  });

  it('takes its limit from XAMAL_REDIS_MAXMEMORY, and refuses a value Redis would not read, naming the setting', async () => {
    expect(serviceSpec(await config({ XAMAL_REDIS_MAXMEMORY: '2GB' }), 'redis').files[0]!.content).toContain('maxmemory 2gb\n');
    await expect(config({ XAMAL_REDIS_MAXMEMORY: 'lots' })).rejects.toThrow(/XAMAL_REDIS_MAXMEMORY[\s\S]*256mb/);
    await expect(config({ XAMAL_REDIS_MAXMEMORY: '0mb' })).rejects.toThrow(/XAMAL_REDIS_MAXMEMORY/);
  });

  it('keeps finished build jobs by count as well as by age: 10,000 completed for 7 days, 1,000 failed for 30 days', () => {
    expect(BUILD_JOB_OPTIONS.removeOnComplete).toEqual({ age: 7 * 24 * 3600, count: 10_000 });
    expect(BUILD_JOB_OPTIONS.removeOnFail).toEqual({ age: 30 * 24 * 3600, count: 1_000 });
  });
});
