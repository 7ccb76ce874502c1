import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { XamalError } from '../core/index.ts';
import type { ServicesConfig } from './config.ts';

/** Where the embedded Redis's password lives: beside its data, readable by this user only. */
export function redisPasswordPath(c: Pick<ServicesConfig, 'stateDir'>): string {
  return join(c.stateDir, 'secrets', 'redis.password');
}

const known = new Map<string, string>();

/**
 * The embedded Redis's password: read from its file, or made (32 random bytes, mode 0600) the first
 * time. Clients get it inside the Redis URL (serviceEndpoints), never on a command line.
 */
export function redisPassword(c: Pick<ServicesConfig, 'stateDir'>): string {
  const path = redisPasswordPath(c);
  const cached = known.get(path);
  if (cached) return cached;
  let pw = read(path);
  if (!pw) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    try {
      writeFileSync(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Another process made it first: theirs is the one.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    pw = read(path);
  }
  if (!pw || !/^[A-Za-z0-9]{16,256}$/.test(pw)) throw new XamalError('validation', `${path}: expected the Redis password (16–256 letters and digits)`);
  known.set(path, pw);
  return pw;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
