import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { scanReleaseTarball } from '../../../builder/elf.ts';
import { MAX_RELEASE_FOLDERS, releaseContentsOf, releaseFolders } from '../../../builder/release-contents.ts';

describe("what a release ships, from its folders' names", () => {
  it('reads lib/<app>-<vsn> as applications (the version after the first "-") and erts-<vsn> as ERTS', () => {
    expect(releaseContentsOf(['erts-13.1.5', 'lib/stdlib-4.2', 'lib/kernel-8.5.3', 'lib/my_app-1.0.0-rc.1+build.5'])).toEqual({
      erts: ['13.1.5'],
      apps: [
        { name: 'kernel', version: '8.5.3' },
        { name: 'my_app', version: '1.0.0-rc.1+build.5' },
        { name: 'stdlib', version: '4.2' },
      ],
      unknown: [],
      overflow: false,
    });
  });

  it('keeps folders that are not <name>-<version> apart, listed, instead of guessing a name', () => {
    expect(releaseContentsOf(['lib/static', 'lib/Bad-1.0', 'erts-x']).unknown).toEqual(['lib/static', 'lib/Bad-1.0', 'erts-x']);
  });

  it('counts directory entries and the parents of entries as folders, not files directly in lib/, and stops keeping at its bound', () => {
    const f = releaseFolders();
    f.add('lib/kernel-8.5.3/ebin/kernel.app', false);
    f.add('lib/stdlib-4.2', true);
    f.add('lib/README-1.0', false);
    f.add('erts-13.1.5/bin/beam.smp', false);
    f.add('releases/1.0.0/shop.rel', false);
    expect(f.contents()).toEqual({ erts: ['13.1.5'], apps: [{ name: 'kernel', version: '8.5.3' }, { name: 'stdlib', version: '4.2' }], unknown: [], overflow: false });
    const many = releaseFolders();
    for (let i = 0; i <= MAX_RELEASE_FOLDERS; i++) many.add(`lib/a${i}-1.0.0/x`, false);
    const c = many.contents();
    expect(c.overflow).toBe(true);
    expect(c.apps).toHaveLength(MAX_RELEASE_FOLDERS);
  });
});

describe('the release scan hands back what the release ships', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('from the packed tarball: applications and ERTS, a linked folder not among them', async () => {
    const root = mkdtempSync(join(tmpdir(), 'xamal-contents-'));
    dirs.push(root);
    const put = (rel: string, text = 'x') => {
      mkdirSync(dirname(join(root, rel)), { recursive: true });
      writeFileSync(join(root, rel), text);
    };
    put('erts-13.1.5/bin/erlexec');
    put('lib/kernel-8.5.3/ebin/kernel.app');
    put('lib/shop-1.0.0/ebin/shop.app');
    mkdirSync(join(root, 'lib/empty_app-0.1.0'));
    put('lib/notes.txt');
    put('releases/start_erl.data', '13.1.5 1.0.0\n');
    symlinkSync('/usr', join(root, 'lib/linked-1.0.0'));
    const tarball = join(root, '..', `${root.split('/').pop()}.tar.gz`);
    dirs.push(tarball);
    execFileSync('tar', ['-C', root, '-czf', tarball, '.']);
    const { contents } = await scanReleaseTarball(tarball, { path: 'releases/start_erl.data', maxBytes: 64 });
    expect(contents).toEqual({
      erts: ['13.1.5'],
      apps: [
        { name: 'empty_app', version: '0.1.0' },
        { name: 'kernel', version: '8.5.3' },
        { name: 'shop', version: '1.0.0' },
      ],
      unknown: [],
      overflow: false,
    });
  });
});
