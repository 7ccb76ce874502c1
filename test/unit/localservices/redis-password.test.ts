import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serviceSpec } from '../../../localservices/catalog.ts';
import { servicesConfig } from '../../../localservices/config.ts';
import { serviceEndpoints } from '../../../localservices/endpoints.ts';
import { redisPassword, redisPasswordPath } from '../../../localservices/secrets.ts';

describe('the embedded Redis requires a password', () => {
  const dirs: string[] = [];
  const config = async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'xamal-redis-pw-'));
    dirs.push(stateDir);
    return servicesConfig({ XAMAL_STATE_DIR: stateDir });
  };
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  it('makes one random password per state directory, in a file only its owner reads, and keeps it', async () => {
    const c = await config();
    const pw = redisPassword(c);
    expect(pw).toMatch(/^[0-9a-f]{64}$/);
    expect((await stat(redisPasswordPath(c))).mode & 0o777).toBe(0o600);
    expect((await readFile(redisPasswordPath(c), 'utf8')).trim()).toBe(pw);
    expect(redisPassword(c)).toBe(pw);
    expect(redisPassword(await config())).not.toBe(pw);
  });

  it('puts the password in a mode-0600 config file, never on redis-server\'s command line', async () => {
    const c = await config();
    const spec = serviceSpec(c, 'redis');
    const pw = redisPassword(c);
    expect(spec.argv.join(' ')).not.toContain(pw);
    expect(spec.files).toEqual([{ path: spec.argv[1], content: `requirepass ${pw}\nmaxmemory 256mb\nmaxmemory-policy noeviction\n`, mode: 0o600 }]);
    expect(spec.ready).toEqual({ kind: 'redis-ping', port: c.redisPort, password: pw });
  });

  it('gives the farm\'s clients the password inside the Redis URL they read from config', async () => {
    const c = await config();
    const url = new URL(serviceEndpoints(c).redisUrl);
    expect([url.hostname, url.port, url.password]).toEqual(['127.0.0.1', String(c.redisPort), redisPassword(c)]);
  });
});
