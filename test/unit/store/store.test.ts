import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { XamalError } from '../../../core/errors/index.ts';
import { localStore } from '../../../store/local.ts';
import { storeError, storeOp } from '../../../store/store.ts';
import { storeContract } from '../../../testkit/store-contract.ts';

describe('the local-disk store', () => {
  storeContract('local disk', async () => localStore(await mkdtemp(join(tmpdir(), 'xamal-local-store-'))));
});

describe('storeOp', () => {
  const gone = { is: (err: unknown) => (err as Error).message === 'gone', value: 'missing' as const };

  it("gives the operation's result", async () => {
    expect(await storeOp('get', 'a/b', async () => 'body', gone)).toBe('body');
  });

  it('gives the missing value for a failure that means the object is not there', async () => {
    expect(await storeOp('get', 'a/b', () => Promise.reject(new Error('gone')), gone)).toBe('missing');
  });

  it('turns any other failure (and every failure without ifMissing) into unavailable, naming operation and key', async () => {
    for (const missing of [gone, undefined]) {
      const err = await storeOp('head', 'a/b', () => Promise.reject(new Error(missing ? 'timeout' : 'gone')), missing).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(XamalError);
      expect(err).toMatchObject({ code: 'unavailable', message: `store: head a/b failed: ${missing ? 'timeout' : 'gone'}` });
    }
  });
});

describe('storeError', () => {
  it('keeps the cause and says what was thrown when it is not an Error', () => {
    const cause = new Error('boom');
    expect(storeError('put', 'k', cause).cause).toBe(cause);
    expect(storeError('list', 'p/', 'raw').message).toBe('store: list p/ failed: raw');
  });
});
