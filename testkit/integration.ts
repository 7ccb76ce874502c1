import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';

/** A prefix no other test (or run) shares, for queue names and S3 keys: `t-<run>-<name>-<rand>`. */
export function testPrefix(name: string): string {
  const safe = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 30);
  return `t-${inject('runId')}-${safe}-${randomBytes(3).toString('hex')}`;
}

export function services() {
  return inject('services');
}
