import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkoutGitSource, mirrorPath } from '../../../builder/source.ts';
import { LocalExecutor } from '../../../core/index.ts';

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'init.defaultBranch=main', ...args], { cwd, encoding: 'utf8' }).trim();

describe('git sources through the worker\'s mirror', () => {
  let dir: string;
  let origin: string;
  let url: string;
  const exec = new LocalExecutor();
  const commitFile = async (text: string) => {
    await writeFile(join(origin, 'mix.exs'), text);
    git(origin, 'add', '-A');
    git(origin, 'commit', '-q', '-m', text);
    return git(origin, 'rev-parse', 'HEAD');
  };
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-source-'));
    origin = join(dir, 'origin');
    execFileSync('mkdir', ['-p', origin]);
    git(origin, 'init', '-q');
    url = `file://${origin}`;
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  const treeOf = (commit: string) => git(origin, 'rev-parse', `${commit}^{tree}`);

  it('fetches a repository once, then only what is new, and checks each commit out without .git, answering its tree hash', async () => {
    const a = await commitFile('a');
    const cache = join(dir, 'cache');
    expect(await checkoutGitSource(exec, mirrorPath(cache, 'hello', url), url, a, join(dir, 'src1'))).toEqual({ fetched: true, tree: treeOf(a) });
    expect(await readFile(join(dir, 'src1', 'mix.exs'), 'utf8')).toBe('a');
    expect(existsSync(join(dir, 'src1', '.git'))).toBe(false);
    // The same commit again: no fetch at all.
    expect(await checkoutGitSource(exec, mirrorPath(cache, 'hello', url), url, a, join(dir, 'src2'))).toEqual({ fetched: false, tree: treeOf(a) });
    const b = await commitFile('b');
    expect(await checkoutGitSource(exec, mirrorPath(cache, 'hello', url), url, b, join(dir, 'src3'))).toEqual({ fetched: true, tree: treeOf(b) });
    expect(await readFile(join(dir, 'src3', 'mix.exs'), 'utf8')).toBe('b');
    // The mirror keeps no remote (nothing about where it came from is stored but its objects).
    expect(execFileSync('git', [`--git-dir=${mirrorPath(cache, 'hello', url)}`, 'remote'], { encoding: 'utf8' }).trim()).toBe('');
  });

  it('the checkout from the mirror holds exactly the commit\'s files, as a clone has them (modes, a link, nested folders), and leaves no index in the mirror or beside the tree', async () => {
    execFileSync('mkdir', ['-p', join(origin, 'lib', 'deep'), join(origin, 'bin')]);
    await writeFile(join(origin, 'lib', 'deep', 'm.ex'), 'defmodule M do end\n');
    await writeFile(join(origin, 'bin', 'run'), '#!/bin/sh\n', { mode: 0o755 });
    execFileSync('ln', ['-s', 'lib/deep/m.ex', join(origin, 'link')]);
    const a = await commitFile('a');
    const cache = join(dir, 'cache');
    const mirror = mirrorPath(cache, 'hello', url);
    await checkoutGitSource(exec, mirror, url, a, join(dir, 'src'));
    execFileSync('git', ['clone', '-q', origin, join(dir, 'clone')]);
    const listing = (root: string) => execFileSync('sh', ['-c', `cd "$1" && find . -path ./.git -prune -o -printf '%p %M %l\\n' | sort && find . -path ./.git -prune -o -type f -print | sort | xargs sha256sum`, 'sh', root], { encoding: 'utf8' });
    expect(listing(join(dir, 'src'))).toBe(listing(join(dir, 'clone')));
    expect(listing(join(dir, 'src'))).toContain('./bin/run -rwxr-xr-x');
    expect(listing(join(dir, 'src'))).toContain('./link lrwxrwxrwx lib/deep/m.ex');
    expect(existsSync(join(mirror, 'index'))).toBe(false);
    expect((await readdir(dir)).sort()).toEqual(['cache', 'clone', 'origin', 'src']);
  });

  it('a mirror left broken (e.g. by a worker killed mid-fetch) is made again', async () => {
    const a = await commitFile('a');
    const cache = join(dir, 'cache');
    const mirror = mirrorPath(cache, 'hello', url);
    execFileSync('mkdir', ['-p', mirror]);
    await writeFile(join(mirror, 'HEAD'), 'garbage');
    expect(await checkoutGitSource(exec, mirrorPath(cache, 'hello', url), url, a, join(dir, 'src1'))).toEqual({ fetched: true, tree: treeOf(a) });
    expect(await readFile(join(dir, 'src1', 'mix.exs'), 'utf8')).toBe('a');
  });

  it('a commit on no branch or tag is fetched by its SHA (git protocol v2 serves it), and one the server lacks is refused with the reason', async () => {
    await commitFile('a');
    const tree = git(origin, 'rev-parse', 'HEAD^{tree}');
    const dangling = git(origin, 'commit-tree', tree, '-m', 'on no branch');
    const cache = join(dir, 'cache');
    expect(await checkoutGitSource(exec, mirrorPath(cache, 'hello', url), url, dangling, join(dir, 'src1'))).toEqual({ fetched: true, tree });
    expect(await readFile(join(dir, 'src1', 'mix.exs'), 'utf8')).toBe('a');
    await expect(checkoutGitSource(exec, mirrorPath(cache, 'hello', url), url, 'f'.repeat(40), join(dir, 'src2'))).rejects.toThrow(/commit f{40} is on no branch or tag of file:\/\/.*does not serve it by SHA/);
  });

  it('a remote git cannot read fails the build with one generic reason; git\'s own words travel only as the cause (for the worker\'s log)', async () => {
    const cache = join(dir, 'cache');
    for (const missing of [`file://${join(dir, 'no-such-repo')}`, 'https://127.0.0.1:1/x.git']) {
      const err = (await checkoutGitSource(exec, cache, missing, 'a'.repeat(40), join(dir, 'src')).catch((e: unknown) => e)) as Error & { code: string };
      expect(err.message).toBe(`could not read the repository at ${missing}: unreachable or not found`);
      expect(err.code).toBe('external');
      expect((err.cause as Error).message).toMatch(/^git fetch failed \(exit 128\): .*(does not appear to be a git repository|Failed to connect to 127\.0\.0\.1 port 1)/);
    }
  });
});
