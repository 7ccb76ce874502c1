import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { refuseUnlessRealDirectory, refuseUnsafeTree, resolveInTree, treeProblems } from '../../../builder/links.ts';

describe('links in a tree the worker reads', () => {
  let dir: string;
  let root: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-links-'));
    root = join(dir, 'tree');
    await mkdir(join(root, 'p', 'q'), { recursive: true });
    await writeFile(join(dir, 'canary'), 'canary');
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('a link resolves inside when every hop stays inside; a dangling one by its name', async () => {
    await symlink('q', join(root, 'p', 'to-q'));
    await symlink('../../p/to-q/../q', join(root, 'p', 'q', 'round'));
    await symlink('missing/file', join(root, 'dangling'));
    expect(await resolveInTree(root, 'p/to-q')).toEqual({ ok: true, path: 'p/q' });
    expect(await resolveInTree(root, 'p/q/round')).toEqual({ ok: true, path: 'p/q' });
    expect(await resolveInTree(root, 'dangling')).toEqual({ ok: true, path: 'missing/file' });
    expect(await treeProblems(root)).toEqual([]);
  });

  it('absolute targets, .. above the root and links whose hops leave it are outside, even when the name alone looks inside', async () => {
    await symlink(join(dir, 'canary'), join(root, 'abs'));
    await symlink('../../canary', join(root, 'p', 'up'));
    await symlink('../..', join(root, 'p', 'q', 'b'));
    // Lexically p/q/b/../.. is p (inside); the kernel follows b to the root first, then leaves it.
    await symlink('b/../../canary', join(root, 'p', 'q', 'c'));
    await symlink('abs', join(root, 'via'));
    expect(await resolveInTree(root, 'abs')).toEqual({ ok: false, why: 'outside' });
    expect(await resolveInTree(root, 'p/up')).toEqual({ ok: false, why: 'outside' });
    expect(await resolveInTree(root, 'p/q/b')).toEqual({ ok: true, path: '' });
    expect(await resolveInTree(root, 'p/q/c')).toEqual({ ok: false, why: 'outside' });
    expect(await resolveInTree(root, 'via')).toEqual({ ok: false, why: 'outside' });
    expect((await treeProblems(root)).map((p) => p.path)).toEqual(['abs', 'p/q/c', 'p/up', 'via']);
  });

  it('a loop of links is refused as a loop', async () => {
    await symlink('y', join(root, 'x'));
    await symlink('x', join(root, 'y'));
    expect(await resolveInTree(root, 'x')).toEqual({ ok: false, why: 'loop' });
    await expect(refuseUnsafeTree(root, 'source')).rejects.toThrow('source: x -> y is a loop of links\nsource: y -> x is a loop of links');
  });

  it('the error names each path and target, at most five, and says how many more', async () => {
    for (let i = 0; i < 7; i++) await symlink('/etc', join(root, `l${i}`));
    const err = (await refuseUnsafeTree(root, 'source').catch((e: unknown) => e)) as Error;
    expect(err).toMatchObject({ code: 'build_failed' });
    expect(err.message.split('\n')).toEqual([...[0, 1, 2, 3, 4].map((i) => `source: l${i} -> /etc points outside the source tree`), '… and 2 more']);
  });

  it('a FIFO in the tree is refused', async () => {
    execFileSync('mkfifo', [join(root, 'p', 'pipe')]);
    await expect(refuseUnsafeTree(root, 'release')).rejects.toThrow('release: p/pipe is a FIFO; only files, directories and links inside are allowed');
  });

  it('a release directory must be a real directory reached through real directories', async () => {
    await mkdir(join(root, 'out', 'real'), { recursive: true });
    await symlink('/', join(root, 'out', 'hello'));
    await writeFile(join(root, 'out', 'file'), '');
    await expect(refuseUnlessRealDirectory(root, join(root, 'out', 'real'), 'release')).resolves.toBeUndefined();
    await expect(refuseUnlessRealDirectory(root, join(root, 'out', 'hello'), 'release')).rejects.toThrow('release: out/hello is a link (-> /), not a directory in the work tree');
    await expect(refuseUnlessRealDirectory(root, join(root, 'out', 'file'), 'release')).rejects.toThrow('release: out/file is not a directory');
    await expect(refuseUnlessRealDirectory(root, join(root, 'out', 'none'), 'release')).rejects.toThrow('release: out/none does not exist');
  });
});
