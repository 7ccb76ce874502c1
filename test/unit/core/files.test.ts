import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMissingFile, readTextIfPresent, readUserFile } from '../../../core/files.ts';
import { XamalError } from '../../../core/errors/index.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xamal-files-'));
  await writeFile(join(dir, 'a.txt'), 'hello\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('isMissingFile', () => {
  it('is true only for ENOENT', () => {
    expect(isMissingFile(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe(true);
    expect(isMissingFile(Object.assign(new Error('x'), { code: 'EACCES' }))).toBe(false);
    expect(isMissingFile(undefined)).toBe(false);
  });
});

describe('readTextIfPresent', () => {
  it("reads a file's text, and gives undefined for a file that does not exist", async () => {
    expect(await readTextIfPresent(join(dir, 'a.txt'))).toBe('hello\n');
    expect(await readTextIfPresent(join(dir, 'none.txt'))).toBeUndefined();
  });

  it('throws any other failure as it is (a directory: EISDIR)', async () => {
    await expect(readTextIfPresent(dir)).rejects.toMatchObject({ code: 'EISDIR' });
  });
});

describe('readUserFile', () => {
  it("reads a file's text, and gives undefined for a file that does not exist", async () => {
    expect(await readUserFile(join(dir, 'a.txt'), 'a.txt')).toBe('hello\n');
    expect(await readUserFile(join(dir, 'none.txt'), 'none.txt')).toBeUndefined();
  });

  it('turns any other failure into an external error naming the file as shown', async () => {
    const err = await readUserFile(dir, 'config/').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XamalError);
    expect(err).toMatchObject({ code: 'external', message: expect.stringMatching(/^cannot read config\/: EISDIR/) });
  });
});
