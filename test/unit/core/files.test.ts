import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMissingFile, readCappedFile, readTextIfPresent, readUserFile } from '../../../core/files.ts';
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

describe('readCappedFile', () => {
  it('reads a regular file up to the cap, and tells a missing one apart', async () => {
    await writeFile(join(dir, 'four'), 'abcd');
    expect(await readCappedFile(join(dir, 'four'), 4)).toEqual({ kind: 'read', data: Buffer.from('abcd') });
    expect(await readCappedFile(join(dir, 'nope'), 4)).toEqual({ kind: 'missing' });
  });

  it('refuses unread a larger file, a link (even to a file it would read), a device, a FIFO and a directory', async () => {
    await writeFile(join(dir, 'five'), 'abcde');
    await symlink(join(dir, 'a.txt'), join(dir, 'link'));
    await symlink('/dev/zero', join(dir, 'zero'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    expect(await readCappedFile(join(dir, 'five'), 4)).toEqual({ kind: 'refused', why: 'is larger than 4 bytes' });
    expect(await readCappedFile(join(dir, 'link'), 100)).toEqual({ kind: 'refused', why: 'is a symbolic link' });
    expect(await readCappedFile(join(dir, 'zero'), 100)).toEqual({ kind: 'refused', why: 'is a symbolic link' });
    expect(await readCappedFile('/dev/zero', 100)).toEqual({ kind: 'refused', why: 'is a device' });
    // No writer: a plain open would block here for ever.
    expect(await readCappedFile(join(dir, 'fifo'), 100)).toEqual({ kind: 'refused', why: 'is a FIFO' });
    expect(await readCappedFile(dir, 100)).toEqual({ kind: 'refused', why: 'is a directory' });
  });
});
