import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { archiveProblems, tarGzEntries, type TarEntry } from '../../../builder/archive-entries.ts';
import { unpackArchiveSource } from '../../../builder/source.ts';
import { BUILD_USER } from '../../../builder/build-user.ts';
import { LocalExecutor } from '../../../core/index.ts';
import { localStore } from '../../../store/local.ts';
import { commitFiles, git } from '../../../testkit/example-repo.ts';
import { tarGzOf } from '../../../testkit/builder/tar-fixture.ts';

const entry = (path: string, type = '0', linkpath = ''): TarEntry => ({ path, type, linkpath, mode: 0o644 });

describe('reading a source archive\'s entries without unpacking it', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-archive-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('reads `git archive` (pax global header), GNU long names and pax long names as tar lists them', async () => {
    const src = join(dir, 'src');
    const long = `${'d'.repeat(90)}/${'f'.repeat(90)}.ex`;
    await mkdir(join(src, 'd'.repeat(90)), { recursive: true });
    await symlink('mix.exs', join(src, 'link'));
    git(src, 'init', '-q', '-b', 'main');
    const commit = await commitFiles(src, 'one', { 'mix.exs': 'x', [long]: 'y' });
    const archives = {
      git: execFileSync('git', ['-C', src, 'archive', '--format=tar.gz', commit]),
      gnu: execFileSync('tar', ['-czf', '-', '--format=gnu', '-C', src, 'mix.exs', 'link', long]),
      pax: execFileSync('tar', ['-czf', '-', '--format=pax', '-C', src, 'mix.exs', 'link', long]),
    };
    for (const [name, bytes] of Object.entries(archives)) {
      const entries = await tarGzEntries(bytes);
      const listed = execFileSync('tar', ['-tzf', '-'], { input: bytes, encoding: 'utf8' }).split('\n').filter(Boolean);
      expect(entries.map((e) => e.path), name).toEqual(listed);
      expect(entries.find((e) => e.path === 'link'), name).toMatchObject({ type: '2', linkpath: 'mix.exs' });
      expect(entries.map((e) => e.path), name).toContain(long);
      expect(archiveProblems(entries), name).toEqual([]);
    }
  });

  it('a truncated archive, or one with a corrupt header, is refused', async () => {
    const whole = tarGzOf([{ path: 'mix.exs', data: 'x'.repeat(2000) }]);
    const raw = gunzipSync(whole);
    await expect(tarGzEntries(gzipSync(raw.subarray(0, 1024)))).rejects.toThrow('the archive ends before its end-of-archive marker');
    const corrupt = Buffer.from(raw);
    corrupt[0] = 0x41;
    await expect(tarGzEntries(gzipSync(corrupt))).rejects.toThrow('bad tar header checksum');
  });

  it('300 archives with random bytes changed each read to entries or a refusal, never a hang or another kind of failure', async () => {
    const raw = gunzipSync(tarGzOf([{ path: 'mix.exs', data: 'x' }, { path: 'l', type: '2', linkpath: 'mix.exs' }, { path: 'lib/', type: '5' }]));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(raw.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), async (edits) => {
        const bytes = Buffer.from(raw);
        for (const [at, value] of edits) bytes[at] = value;
        const r = await tarGzEntries(gzipSync(bytes)).then((e) => e, (e: unknown) => e);
        expect(Array.isArray(r) || r instanceof Error).toBe(true);
        if (Array.isArray(r)) archiveProblems(r);
      }),
      { numRuns: 300 },
    );
  });

  it('hand-made entries read back exactly as written (the fixture the attack tests use)', async () => {
    const bytes = tarGzOf([{ path: '../x', data: 'a' }, { path: '/abs' }, { path: 'l', type: '2', linkpath: '/etc' }, { path: 'dev', type: '3' }]);
    expect((await tarGzEntries(bytes)).map((e) => [e.path, e.type, e.linkpath])).toEqual([['../x', '0', ''], ['/abs', '0', ''], ['l', '2', '/etc'], ['dev', '3', '']]);
  });
});

describe('unpacking a source archive', () => {
  it('unpacks as the build user: keeps neither the setuid/setgid bits nor the owners the archive records', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xamal-unpack-'));
    try {
      const bytes = tarGzOf([{ path: 'mix.exs', data: 'x' }, { path: 'bin/', type: '5', mode: 0o2777, uid: 4321 }, { path: 'bin/suid', mode: 0o4755, uid: 4321, data: '#!/bin/sh\n' }]);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const store = localStore(join(dir, 'store'));
      await store.put(`sources/${sha256}.tar.gz`, bytes);
      await unpackArchiveSource(new LocalExecutor(), store, { kind: 'archive', key: `sources/${sha256}.tar.gz`, sha256 }, dir);
      for (const path of ['bin', 'bin/suid']) {
        const st = await stat(join(dir, 'src', path));
        expect(st.mode & 0o7000, path).toBe(0);
        expect([st.uid, st.gid], path).toEqual([BUILD_USER.uid, BUILD_USER.gid]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('archiveProblems: what tar must not unpack as root', () => {
  it('allows files, directories, links and hard links that stay inside', () => {
    expect(archiveProblems([entry('lib/', '5'), entry('lib/a.ex'), entry('lib/b', '2', 'a.ex'), entry('lib/c', '2', '../mix.exs'), entry('h', '1', 'lib/a.ex'), entry('./mix.exs')])).toEqual([]);
  });

  it('refuses absolute paths, .., devices, FIFOs, unknown types, links out and writes through a link, naming each', () => {
    expect(archiveProblems([
      entry('/etc/cron.d/x'),
      entry('ok/../../x'),
      entry('tty', '3'),
      entry('disk', '4'),
      entry('pipe', '6'),
      entry('sparse', 'S'),
      entry('out', '2', '/elsewhere'),
      entry('deep/up', '2', '../../etc'),
      entry('out/pwned'),
      entry('inside', '2', 'lib'),
      entry('inside/x.ex'),
      entry('hard', '1', '../etc/passwd'),
    ])).toEqual([
      '/etc/cron.d/x is an absolute path',
      'ok/../../x names a parent directory (..)',
      'tty is a character device',
      'disk is a block device',
      'pipe is a FIFO',
      'sparse has tar entry type "S", not a file, directory or link',
      'out -> /elsewhere points outside the source tree',
      'deep/up -> ../../etc points outside the source tree',
      'out/pwned is written through the link out',
      'inside/x.ex is written through the link inside',
      'hard is a hard link to ../etc/passwd, outside the source tree',
    ]);
  });
});
