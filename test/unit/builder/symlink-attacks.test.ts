import { createHash, randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBuild, type BuildDeps } from '../../../builder/apply.ts';
import { restoreCache, sourceHashes } from '../../../builder/cache.ts';
import type { ContainerSpec } from '../../../builder/docker.ts';
import { DEFAULT_LIMITS } from '../../../builder/plan.ts';
import { prepareSource } from '../../../builder/source.ts';
import { BuildJobSchema } from '../../../core/contracts/build-job.ts';
import { LocalExecutor } from '../../../core/index.ts';
import type { LockFile } from '../../../images/lock.ts';
import { localStore } from '../../../store/local.ts';
import { FAKE_DIGEST, fakeDocker, hostPath, writeRelease, type StepEffect } from '../../../testkit/builder/fake-docker.ts';
import { ONE_PACKAGE_LOCK } from '../../../testkit/builder/sbom-fixtures.ts';
import { tarGzOf, type FixtureEntry } from '../../../testkit/builder/tar-fixture.ts';
import { git } from '../../../testkit/example-repo.ts';
import { memorySigner } from '../../../testkit/signing.ts';

/**
 * Issue 18, item 5: sources, archives and release output that hold links (or entries) leading out of
 * the work tree. Each case goes through the worker's real code (runBuild with a fake engine, real
 * git, tar, cp and files) and must be refused with an error naming the path, while a canary file and
 * an empty directory outside the work tree are neither read (the canary's text appears in no error,
 * log line or stored object) nor written (content, mtime and listing unchanged).
 */
const X86 = 'linux-x86_64-gnu2.36-debian12-otp27.3.4-elixir1.18.3';
const LOCK: LockFile = {
  version: 1,
  images: [{ ref: 'xamal/builder:t', digest: FAKE_DIGEST, platforms: [{ arch: 'x86_64', digest: FAKE_DIGEST }], resolvedAt: '2025-01-01T00:00:00.000Z', source: 'registry', flavour: 'builder', tuple: X86 }],
};
const CANARY = `canary-${randomUUID()}`;
const MIX_FILES = { 'mix.exs': 'defmodule Hello.MixProject do end', 'mix.lock': ONE_PACKAGE_LOCK, 'config/config.exs': 'import Config' };

let dir: string;
let outside: string;
let secret: string;
let elsewhere: string;
const exec = new LocalExecutor();
const store = () => localStore(join(dir, 'store'));
const refused: string[] = [];

async function snapshot() {
  const [s, e] = await Promise.all([stat(secret), stat(elsewhere)]);
  return { text: await readFile(secret, 'utf8'), secretMtime: s.mtimeMs, elsewhere: await readdir(elsewhere), elsewhereMtime: e.mtimeMs, outside: await readdir(outside) };
}

/** Every stored object's text, for the canary search. */
async function storedText(): Promise<string> {
  const root = join(dir, 'store');
  const files = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  const texts = await Promise.all(files.filter((f) => f.isFile()).map((f) => readFile(join(f.parentPath, f.name), 'latin1')));
  return texts.join('\n');
}

/** A git repository with the mix files, `files` and `links` (name → target) committed; its commit. */
async function repo(name: string, links: Record<string, string> = {}, files: Record<string, string> = {}): Promise<{ path: string; commit: string }> {
  const path = join(dir, 'repos', name);
  for (const [file, text] of Object.entries({ ...MIX_FILES, ...files }).filter(([f]) => !(f in links))) {
    await mkdir(join(path, file, '..'), { recursive: true });
    await writeFile(join(path, file), text);
  }
  for (const [link, target] of Object.entries(links)) {
    await mkdir(join(path, link, '..'), { recursive: true });
    await symlink(target, join(path, link));
  }
  git(path, 'init', '-q', '-b', 'main');
  git(path, 'add', '-A');
  git(path, 'commit', '-q', '-m', name);
  return { path, commit: git(path, 'rev-parse', 'HEAD') };
}

/** Puts an archive in the store; the job that builds it. */
async function archiveJob(bytes: Buffer) {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  await store().put(`sources/${sha256}.tar.gz`, bytes);
  return BuildJobSchema.parse({ app: 'hello', source: { kind: 'archive', key: `sources/${sha256}.tar.gz`, sha256 }, target: X86 });
}

const gitArchive = (r: { path: string; commit: string }) => execFileSync('git', ['-C', r.path, 'archive', '--format=tar.gz', r.commit]);

/** The job that builds a repository's commit through the worker's git mirror. */
const gitJob = (r: { path: string; commit: string }) => BuildJobSchema.parse({ app: 'hello', source: { kind: 'git', url: `file://${r.path}`, commit: r.commit }, target: X86 });

/** runBuild of an archive (`bytes`) or a git job with the fake engine (its compile step replaced by `compile`): the error and log. */
async function build(source: Buffer | ReturnType<typeof gitJob>, compile?: StepEffect) {
  const { docker } = fakeDocker({}, 'GLIBC_2.34', compile ? { compile } : {});
  const deps: BuildDeps = { docker, exec, store: store(), locks: async () => [LOCK], cacheDir: join(dir, 'cache'), workRoot: join(dir, 'work'), limits: DEFAULT_LIMITS, depsNetwork: 'none', hostArch: 'x86_64', signer: memorySigner() };
  const lines: string[] = [];
  const job = Buffer.isBuffer(source) ? await archiveJob(source) : source;
  const err = await runBuild(deps, job, { phase: () => {}, log: (l) => void lines.push(l) }).then(
    () => undefined,
    (e: unknown) => e as Error & { code?: string },
  );
  return { err, lines };
}

/** The outcome must be a refusal whose first line is `first`; the canary is checked after every case. */
async function expectRefused(name: string, outcome: { err: (Error & { code?: string }) | undefined; lines?: string[] }, first: string) {
  expect(outcome.err, name).toBeDefined();
  expect(outcome.err!.code, name).toBe('build_failed');
  expect(outcome.err!.message.split('\n')[0], name).toBe(first);
  const seen = [outcome.err!.message, ...(outcome.lines ?? []), await storedText()].join('\n');
  expect(seen.includes(CANARY), `${name}: the canary's text was read`).toBe(false);
  refused.push(name);
}

describe('symlink attacks on the worker: refused with a named error, nothing outside the work tree read or written', () => {
  let before: Awaited<ReturnType<typeof snapshot>>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-links-attack-'));
    outside = join(dir, 'outside');
    secret = join(outside, 'secret');
    elsewhere = join(outside, 'elsewhere');
    await mkdir(elsewhere, { recursive: true });
    await writeFile(secret, `${CANARY}\n`);
    before = await snapshot();
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  const untouched = async () => expect(await snapshot()).toEqual(before);

  it('a git checkout with a committed deps -> /elsewhere', async () => {
    const r = await repo('git-deps-link', { deps: elsewhere });
    const workDir = join(dir, 'work', 'git-case');
    await mkdir(workDir, { recursive: true });
    const source = { kind: 'git' as const, url: `file://${r.path}`, commit: r.commit };
    const err = await prepareSource({ exec, store: store(), cacheDir: join(dir, 'cache') }, 'hello', source, workDir).then(() => undefined, (e: unknown) => e as Error);
    await expectRefused('git deps link', { err }, `source: deps -> ${elsewhere} points outside the source tree`);
    await untouched();
  });

  it('an archive with a committed deps -> /elsewhere, after a build left the same lock\'s deps in the cache', async () => {
    const good = await build(gitArchive(await repo('good')));
    expect(good.err).toBeUndefined();
    expect((await readdir(join(dir, 'cache', 'mix', 'hello'))).some((k) => k.startsWith('deps-') && !k.endsWith('.json'))).toBe(true);
    await expectRefused('archive deps link + cache hit', await build(gitArchive(await repo('deps-link', { deps: elsewhere }))), `source archive: deps -> ${elsewhere} points outside the source tree`);
    // The restore itself also refuses a link as its destination.
    const src = join(dir, 'work', 'restore-case', 'src');
    await mkdir(src, { recursive: true });
    await symlink(elsewhere, join(src, 'deps'));
    const cached = join(dir, 'cache', 'mix', (await readdir(join(dir, 'cache', 'mix', 'hello'))).find((k) => k.startsWith('deps-') && !k.endsWith('.json'))!);
    const err = await restoreCache(exec, cached, join(src, 'deps'), 'restore deps').then(() => undefined, (e: unknown) => e as Error);
    await expectRefused('restore into a link', { err }, `restore deps: ${join(src, 'deps')} is a link (-> ${elsewhere}); the cache is never restored through one`);
    await untouched();
  });

  it('a source link escaping with ../ (config/prod.exs -> ../../../../outside/secret, which the config hash would read)', async () => {
    const r = await repo('dotdot', { 'config/prod.exs': '../../../../outside/secret' });
    await expectRefused('source ../ link', await build(gitJob(r)), 'source: config/prod.exs -> ../../../../outside/secret points outside the source tree');
    await untouched();
  });

  const archiveCases: [string, FixtureEntry[], string][] = [
    ['archive ../ entry', [{ path: 'mix.exs', data: 'x' }, { path: '../../../outside/elsewhere/pwned', data: 'pwned' }], 'source archive: ../../../outside/elsewhere/pwned names a parent directory (..)'],
    ['archive absolute entry', [{ path: 'mix.exs', data: 'x' }, { path: '/tmp/xamal-abs-entry/pwned', data: 'pwned' }], 'source archive: /tmp/xamal-abs-entry/pwned is an absolute path'],
    ['archive link out, then a file through it', [{ path: 'mix.exs', data: 'x' }, { path: 'evil', type: '2', linkpath: '/tmp/xamal-abs-entry' }, { path: 'evil/pwned', data: 'pwned' }], 'source archive: evil -> /tmp/xamal-abs-entry points outside the source tree'],
    ['archive device entry', [{ path: 'mix.exs', data: 'x' }, { path: 'zero', type: '3' }], 'source archive: zero is a character device'],
    // Lexically p/q/c -> b/.. stays in p/q; followed, b is the root and .. leaves it: caught after unpacking.
    ['archive link chain out', [{ path: 'mix.exs', data: 'x' }, { path: 'p/q/b', type: '2', linkpath: '../..' }, { path: 'p/q/c', type: '2', linkpath: 'b/..' }], 'source: p/q/c -> b/.. points outside the source tree'],
  ];
  for (const [name, entries, first] of archiveCases) {
    it(`an ${name}`, async () => {
      // Re-pointed at the canary's directory: nothing may appear there.
      const fixed = entries.map((e) => ({ ...e, path: e.path.replace('/tmp/xamal-abs-entry', elsewhere), ...(e.linkpath ? { linkpath: e.linkpath.replace('/tmp/xamal-abs-entry', elsewhere) } : {}) }));
      await expectRefused(name, await build(tarGzOf(fixed)), first.replaceAll('/tmp/xamal-abs-entry', elsewhere));
      await untouched();
      expect(await readdir(join(dir, 'work'))).not.toContain('pwned');
    });
  }

  it('a mix.lock linked to /dev/zero', async () => {
    await expectRefused('mix.lock -> /dev/zero', await build(gitJob(await repo('zero', { 'mix.lock': '/dev/zero' }))), 'source: mix.lock -> /dev/zero points outside the source tree');
    // Read directly, it is refused unread too (no link is followed, whatever it points to).
    const src = join(dir, 'work', 'zero-case');
    await mkdir(src, { recursive: true });
    await symlink('/dev/zero', join(src, 'mix.lock'));
    const err = await sourceHashes(src).then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).toBe('source: mix.lock is a symbolic link; it is read only as a regular file of at most 1048576 bytes');
    await untouched();
  });

  it('a mix.lock the build replaced by a link to the canary (the SBOM reads the lock once the build is done)', async () => {
    const compile: StepEffect = async (spec: ContainerSpec) => {
      const out = await writeRelease(spec);
      const lock = join(hostPath(spec, '/build/src'), 'mix.lock');
      await unlink(lock);
      await symlink(secret, lock);
      return out;
    };
    const outcome = await build(gitArchive(await repo('lock-link')), compile);
    await expectRefused('mix.lock -> canary after the build', outcome, 'sbom: mix.lock is a symbolic link; it is read only as a regular file of at most 4194304 bytes');
    await untouched();
  });

  it('a release whose start_erl.data is a link to the canary', async () => {
    const compile: StepEffect = async (spec: ContainerSpec) => {
      const out = await writeRelease(spec);
      const file = join(hostPath(spec, '/build/out'), 'hello', 'releases', 'start_erl.data');
      await unlink(file);
      await symlink(secret, file);
      return out;
    };
    await expectRefused('start_erl.data -> canary', await build(gitArchive(await repo('start-erl')), compile), `release: releases/start_erl.data -> ${secret} points outside the release tree`);
    await untouched();
  });

  it('a release directory out/<release> that is a link to /', async () => {
    const compile: StepEffect = async (spec: ContainerSpec) => {
      const out = await writeRelease(spec);
      const rel = join(hostPath(spec, '/build/out'), 'hello');
      await rm(rel, { recursive: true });
      await symlink('/', rel);
      return out;
    };
    await expectRefused('out/hello -> /', await build(gitArchive(await repo('release-root')), compile), 'release: out/hello is a link (-> /), not a directory in the work tree');
    await untouched();
  });

  it('prints and checks the count', () => {
    expect(refused).toEqual([
      'git deps link', 'archive deps link + cache hit', 'restore into a link', 'source ../ link',
      ...archiveCases.map(([name]) => name),
      'mix.lock -> /dev/zero', 'mix.lock -> canary after the build', 'start_erl.data -> canary', 'out/hello -> /',
    ]);
    console.log(`reliability: symlink attacks → ${refused.length} cases refused, canary untouched`);
  });
});

describe('setuid and setgid bits in a release', () => {
  it('are not in the tarball, nor group/other write bits; owners are stored as numbers', async () => {
    const compile: StepEffect = async (spec: ContainerSpec) => {
      const out = await writeRelease(spec);
      const rel = join(hostPath(spec, '/build/out'), 'hello');
      await writeFile(join(rel, 'bin', 'suid'), '#!/bin/sh\n');
      await chmod(join(rel, 'bin', 'suid'), 0o4777);
      await mkdir(join(rel, 'sgid'));
      await chmod(join(rel, 'sgid'), 0o2775);
      return out;
    };
    dir = await mkdtemp(join(tmpdir(), 'xamal-links-suid-'));
    try {
      const { err } = await build(gitArchive(await repo('suid')), compile);
      expect(err).toBeUndefined();
      const tarball = (await readdir(join(dir, 'store'), { recursive: true })).find((f) => f.endsWith('.tar.gz') && f.startsWith('artifacts'))!;
      const listing = execFileSync('tar', ['--numeric-owner', '-tvzf', join(dir, 'store', tarball)], { encoding: 'utf8' }).trim().split('\n');
      const modes = Object.fromEntries(listing.map((l) => [l.split(/\s+/).at(-1)!, l.split(/\s+/).slice(0, 2)]));
      expect(modes['./bin/suid']).toEqual(['-rwxr-xr-x', '0/0']);
      expect(modes['./sgid/']).toEqual(['drwxr-xr-x', '0/0']);
      expect(listing.filter((l) => /^[^ ]*[sStT]/.test(l) || /^.....w|^........w/.test(l))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
