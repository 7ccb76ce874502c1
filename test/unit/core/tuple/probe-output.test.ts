import { describe, expect, it } from 'vitest';
import type { Issue } from '../../../../core/errors/index.ts';
import { probeScript, probeSections, readLibcAndRelease } from '../../../../core/tuple/probe-output.ts';

describe('probeScript', () => {
  it('puts the given lines around the libc and os-release sections and ends with @@end', () => {
    const script = probeScript(['echo @@first'], ['echo @@last']);
    const names = [...script.matchAll(/^echo @@([a-z-]+)/gm)].map((m) => m[1]);
    expect(names).toEqual(['first', 'glibc', 'ldd', 'os-release', 'last', 'end']);
  });
});

describe('readLibcAndRelease', () => {
  const DEBIAN = '@@glibc\nglibc 2.36\n@@os-release\nID=debian\nVERSION_ID="12"\n@@end\n';

  it('reads libc, its version and the os-release keys, adding no issue', () => {
    const issues: Issue[] = [];
    const r = readLibcAndRelease(probeSections(DEBIAN), issues);
    expect(r).toEqual({ libc: 'gnu', libcVersion: '2.36', release: { ID: 'debian', VERSION_ID: '12' } });
    expect(issues).toEqual([]);
  });

  it('adds one issue for an unreadable libc (ending with the hint) and one for a missing ID, in that order', () => {
    const issues: Issue[] = [{ path: 'arch', message: 'earlier' }];
    const r = readLibcAndRelease(probeSections('@@glibc\n@@os-release\nVERSION_ID=12\n@@end\n'), issues, ' (try getconf)');
    expect(r).toEqual({ libc: undefined, libcVersion: '', release: { VERSION_ID: '12' } });
    expect(issues).toEqual([
      { path: 'arch', message: 'earlier' },
      { path: 'libc', message: 'could not read the libc family and version (try getconf)' },
      { path: 'distro', message: 'no ID in /etc/os-release' },
    ]);
  });
});
