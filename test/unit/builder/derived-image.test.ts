import { describe, expect, it } from 'vitest';
import { DERIVED_REPO, derivedImageContainer, derivedImageTag } from '../../../builder/derived-image.ts';
import { buildJobId, BuildJobSchema } from '../../../core/contracts/build-job.ts';
import { BuildPackagesSchema } from '../../../core/contracts/build-settings.ts';

const BASE = `sha256:${'a'.repeat(64)}`;

describe('extra Debian packages for a build', () => {
  it('are checked as Debian package names, each problem at its index, and kept sorted without repeats', () => {
    expect(BuildPackagesSchema.parse(['libvips-dev', 'imagemagick', 'libvips-dev', 'g++'])).toEqual(['g++', 'imagemagick', 'libvips-dev']);
    const r = BuildPackagesSchema.safeParse(['ok-pkg', 'Bad_Name', '-x']);
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => [i.path.join('.'), i.message.split(' (')[0]])).toEqual([
      ['1', 'expected a Debian package name'],
      ['2', 'expected a Debian package name'],
    ]);
    expect(BuildPackagesSchema.safeParse(Array.from({ length: 33 }, (_, i) => `p${i}`)).error?.issues[0]?.message).toBe('expected at most 32 packages');
  });

  it('make another build job (another ID), whatever their order', () => {
    const job = { app: 'hello', source: { kind: 'git', url: 'https://git.example.com/a.git', commit: 'c'.repeat(40) }, target: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0' };
    const plain = buildJobId(BuildJobSchema.parse(job));
    const a = buildJobId(BuildJobSchema.parse({ ...job, packages: ['libvips-dev', 'imagemagick'] }));
    const b = buildJobId(BuildJobSchema.parse({ ...job, packages: ['imagemagick', 'libvips-dev'] }));
    expect(a).toBe(b);
    expect(a).not.toBe(plain);
    expect(buildJobId(BuildJobSchema.parse({ ...job, packages: [] }))).toBe(plain);
  });

  it('name one derived builder per base digest, package list (in any order) and mirror index', () => {
    const t = derivedImageTag(BASE, ['b', 'a']);
    expect(t).toMatch(/^[0-9a-f]{32}$/);
    expect(derivedImageTag(BASE, ['a', 'b', 'a'])).toBe(t);
    expect(derivedImageTag(`sha256:${'b'.repeat(64)}`, ['a', 'b'])).not.toBe(t);
    expect(derivedImageTag(BASE, ['a'])).not.toBe(t);
    expect(derivedImageTag(BASE, ['a', 'b'], 'f'.repeat(64))).not.toBe(t);
  });

  it('are installed by apt as root in the builder, committed as the derived builder; from a mirror with no network, else through the egress proxy', () => {
    const offline = derivedImageContainer('reg/builder@sha256:x', ['imagemagick', 'libvips-dev'], 'tag1', '/srv/apt');
    expect(offline).toMatchObject({ image: 'reg/builder@sha256:x', user: '0:0', networkMode: 'none', binds: ['/srv/apt:/xamal-apt:ro'], commitAs: { repo: DERIVED_REPO, tag: 'tag1' } });
    // The names are arguments of a fixed script, never part of it.
    expect(offline.cmd.slice(0, 2)).toEqual(['sh', '-c']);
    expect(offline.cmd.slice(3)).toEqual(['sh', 'imagemagick', 'libvips-dev']);
    expect(offline.cmd[2]).toContain('apt-get install -y --no-install-recommends -- "$@"');
    const online = derivedImageContainer('reg/builder@sha256:x', ['imagemagick'], 'tag2', undefined);
    expect(online.networkMode).toBe('egress');
    expect(online.binds).toEqual([]);
    expect(Object.keys(online.env ?? {})).toEqual(expect.arrayContaining(['http_proxy', 'https_proxy']));
  });
});
