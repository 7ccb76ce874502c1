import { createHash } from 'node:crypto';
import { appendFile, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readWhileWritten } from '../../../builder/growing-file.ts';

const collect = async (s: AsyncIterable<Buffer>) => {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c);
  return Buffer.concat(parts);
};

describe('reading a file while another writer is still writing it', () => {
  let dir: string;
  beforeEach(async () => void (dir = await mkdtemp(join(tmpdir(), 'xamal-growing-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  /** Writes `parts` one after another with pauses, the first after a pause too (the file does not exist yet). */
  async function writer(path: string, parts: Buffer[]) {
    await sleep(20);
    await writeFile(path, '');
    for (const p of parts) {
      await appendFile(path, p);
      await sleep(15);
    }
  }

  it('yields every byte the writer wrote, in order, the file made after reading began, and ends once the writer is done', async () => {
    const path = join(dir, 'out.tar.gz');
    const parts = Array.from({ length: 6 }, (_, i) => Buffer.alloc(300_000 + i, i + 1));
    const writing = writer(path, parts);
    const read = await collect(readWhileWritten(path, writing, 2));
    expect(createHash('sha256').update(read).digest('hex')).toBe(createHash('sha256').update(Buffer.concat(parts)).digest('hex'));
  });

  it("fails with the writer's error when the writer fails, even mid-file", async () => {
    const path = join(dir, 'out.tar.gz');
    const writing = (async () => {
      await writeFile(path, 'partial');
      await sleep(20);
      throw new Error('tar release failed (exit 2)');
    })();
    await expect(collect(readWhileWritten(path, writing, 2))).rejects.toThrow('tar release failed (exit 2)');
  });

  it('fails with ENOENT when the writer finished without making the file', async () => {
    await expect(collect(readWhileWritten(join(dir, 'never'), sleep(10), 2))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a link in place of the file', async () => {
    await writeFile(join(dir, 'elsewhere'), 'secret');
    await symlink(join(dir, 'elsewhere'), join(dir, 'out.tar.gz'));
    await expect(collect(readWhileWritten(join(dir, 'out.tar.gz'), Promise.resolve(), 2))).rejects.toMatchObject({ code: 'ELOOP' });
  });
});
