import { lstat, mkdir, mkdtemp, open, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DISK_WALK_WIDTH, diskUsage, watchDisk } from '../../../builder/disk.ts';

describe('a build\'s disk use', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-disk-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  const sparse = async (path: string, bytes: number) => {
    const f = await open(path, 'w');
    await f.truncate(bytes);
    await f.close();
  };

  it('counts every file under the directory, a sparse one at its full length', async () => {
    await mkdir(join(dir, 'a', 'b'), { recursive: true });
    await writeFile(join(dir, 'a', 'b', 'f'), Buffer.alloc(100_000, 1));
    await sparse(join(dir, 'hole'), 50 * 1024 ** 2);
    const used = await diskUsage(dir);
    expect(used).toBeGreaterThanOrEqual(100_000 + 50 * 1024 ** 2);
    expect(used).toBeLessThan(100_000 + 50 * 1024 ** 2 + 64 * 1024);
  });

  it('never follows a link out of the directory', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'xamal-disk-outside-'));
    try {
      await sparse(join(outside, 'huge'), 1024 ** 3);
      await symlink(outside, join(dir, 'link'));
      expect(await diskUsage(dir)).toBeLessThan(64 * 1024);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('stops counting once past the limit it is asked about (after the entries it was looking at), and counts a missing directory as empty', async () => {
    const files = 3 * DISK_WALK_WIDTH;
    for (let i = 0; i < files; i++) await sparse(join(dir, `f${i}`), 1024 ** 2);
    const partial = await diskUsage(dir, 2 * 1024 ** 2);
    expect(partial).toBeGreaterThan(2 * 1024 ** 2);
    // Past the limit, it finishes only the entries it was already looking at.
    expect(partial).toBeLessThan((2 + DISK_WALK_WIDTH + 1) * 1024 ** 2);
    expect(await diskUsage(join(dir, 'gone'))).toBe(0);
  });

  it('counts each entry of a tree wider and deeper than what it looks at together exactly once', async () => {
    let expected = 0;
    const add = async (path: string) => {
      const st = await lstat(path);
      expected += Math.max(st.size, st.blocks * 512);
    };
    await add(dir);
    for (let d = 0; d < 3; d++) {
      let parent = join(dir, `d${d}`);
      for (let depth = 0; depth < 4; depth++) {
        await mkdir(parent);
        await add(parent);
        for (let i = 0; i < DISK_WALK_WIDTH + 3; i++) {
          await writeFile(join(parent, `f${i}`), Buffer.alloc(1000 + 17 * i + 100 * depth, 1));
          await add(join(parent, `f${i}`));
        }
        parent = join(parent, 'sub');
      }
    }
    expect(await diskUsage(dir)).toBe(expected);
  });

  it('while a step runs, reports the first time the directory passes the limit, once', async () => {
    const over: number[] = [];
    const watch = watchDisk({ dir, maxBytes: 10 * 1024 ** 2, everyMs: 10 }, (b) => over.push(b));
    await new Promise((r) => setTimeout(r, 50));
    expect(over).toEqual([]);
    await sparse(join(dir, 'big'), 20 * 1024 ** 2);
    await new Promise((r) => setTimeout(r, 100));
    expect(over).toHaveLength(1);
    expect(over[0]).toBeGreaterThan(20 * 1024 ** 2);
    expect(await watch.stop()).toBe(over[0]);
    expect(over).toHaveLength(1);
  });

  it('measures once more when the step ends: growth since the last look is caught, and an untouched directory passes', async () => {
    const late = watchDisk({ dir, maxBytes: 10 * 1024 ** 2, everyMs: 60_000 }, () => {});
    await sparse(join(dir, 'big'), 20 * 1024 ** 2);
    expect(await late.stop()).toBeGreaterThan(10 * 1024 ** 2);
    const fine = watchDisk({ dir, maxBytes: 100 * 1024 ** 2, everyMs: 60_000 }, () => {});
    expect(await fine.stop()).toBeUndefined();
  });
});
