import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_LOCK_BYTES, parseMixLock, readProjectLock } from '../../../builder/mix-lock.ts';
import { FIXTURE_LOCK } from '../../../testkit/builder/sbom-fixtures.ts';

const refusal = (text: string) => {
  try {
    parseMixLock(text);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('the lock was accepted');
};

const SHA = 'a'.repeat(64);
const hex = (fields: string) => `%{\n  "jason": {:hex, :jason, ${fields}},\n}\n`;

describe('reading mix.lock', () => {
  it('reads Hex entries: package, version, both checksums, build tools, dependencies with their optional flag, repository', () => {
    const deps = parseMixLock(FIXTURE_LOCK);
    expect(deps.map((d) => d.app)).toEqual(['acme_billing', 'cowlib', 'decimal', 'jason', 'legacy', 'my_plug', 'phoenix_html', 'shop_hash', 'telemetry']);
    expect(deps.find((d) => d.app === 'jason')).toEqual({
      scm: 'hex',
      app: 'jason',
      package: 'jason',
      version: '1.4.4',
      innerChecksum: 'b9226785a9aa77b6857ca22832cffa5d5011a667207eb2a0ad56adb5db443b8a',
      outerChecksum: 'c5eb0cab91f094599f94d55bc63409236a8ec69a21a67814529e8d5f6cc90b3b',
      managers: ['mix'],
      deps: [{ app: 'decimal', optional: true }],
      repo: 'hexpm',
    });
    expect(deps.find((d) => d.app === 'my_plug')).toMatchObject({ package: 'plug', version: '1.16.1', deps: [{ app: 'mime', optional: false }, { app: 'plug_crypto', optional: false }, { app: 'telemetry', optional: false }] });
    expect(deps.find((d) => d.app === 'cowlib')).toMatchObject({ managers: ['make', 'rebar3'] });
    expect(deps.find((d) => d.app === 'acme_billing')).toMatchObject({ repo: 'hexpm:acme' });
  });

  it('reads an entry written before Hex had an outer checksum (6 fields) as from hexpm, without one', () => {
    const legacy = parseMixLock(FIXTURE_LOCK).find((d) => d.app === 'legacy');
    expect(legacy).toEqual({ scm: 'hex', app: 'legacy', package: 'legacy', version: '0.9.0', innerChecksum: '3'.repeat(64), managers: ['mix'], deps: [], repo: 'hexpm' });
  });

  it('reads git entries: URL, commit, the branch, tag or ref asked for, and the sparse folder', () => {
    const deps = parseMixLock(FIXTURE_LOCK);
    expect(deps.find((d) => d.app === 'phoenix_html')).toEqual({ scm: 'git', app: 'phoenix_html', url: 'git@github.com:Phoenix-Framework/phoenix_html.git', commit: '0123456789abcdef0123456789abcdef01234567', ref: { kind: 'branch', value: 'main' } });
    expect(deps.find((d) => d.app === 'shop_hash')).toEqual({
      scm: 'git',
      app: 'shop_hash',
      url: 'https://user:s3cret@git.example.org/tools/shop_hash.git',
      commit: '89abcdef0123456789abcdef0123456789abcdef',
      ref: { kind: 'ref', value: '89abcdef0123456789abcdef0123456789abcdef' },
      subdir: 'c_src',
    });
  });

  it('reads the lock Mix writes for a git dependency with no options, an empty lock, `=>` keys, quoted atoms, escapes and integers', () => {
    expect(parseMixLock('%{}\n')).toEqual([]);
    expect(parseMixLock(`%{"a" => {:git, "file:///x/\\"q\\"", "${'b'.repeat(40)}", []}}`)).toEqual([{ scm: 'git', app: 'a', url: 'file:///x/"q"', commit: 'b'.repeat(40) }]);
    const text = `%{"a": {:git, "u", "${'c'.repeat(64)}", [tag: "v1", submodules: true, depth: 1, "odd-key": :"odd-atom"]}}`;
    expect(parseMixLock(text)).toEqual([{ scm: 'git', app: 'a', url: 'u', commit: 'c'.repeat(64), ref: { kind: 'tag', value: 'v1' } }]);
  });

  it.each([
    ['a comment', `%{\n  # pinned\n}`, 'mix.lock line 2, column 3: expected an application name in quotes, found "# pinned\\n}"'],
    ['a call (nothing is evaluated)', `%{"a": System.cmd("sh", [])}`, 'mix.lock line 1, column 8: expected a string, atom, integer, list or tuple, found "System.cmd(\\"" (mix.lock holds only what Mix writes)'],
    ['a sigil', `%{"a": {:git, ~c"u", "x", []}}`, 'mix.lock line 1, column 15: expected a string, atom, integer, list or tuple'],
    ['a nested map', `%{"a": {:git, %{}, "x", []}}`, 'mix.lock line 1, column 15: expected a string, atom, integer, list or tuple'],
    ['an unknown SCM', `%{"a": {:svn, "u", "r"}}`, 'mix.lock line 1, column 8: "a": SCM :svn is not one this reader knows (:hex, :git)'],
    ['an entry that is not a tuple', `%{"a": "1.0.0"}`, 'mix.lock line 1, column 8: "a": expected a tuple starting with its SCM (:hex or :git)'],
    ['a Hex entry with a bad checksum', hex(`"1.4.4", "nothex", [:mix], [], "hexpm", "${SHA}"`), 'mix.lock line 2, column 36: "jason": expected a sha256 checksum (64 hex digits)'],
    ['a Hex entry with a version that is not SemVer', hex(`"1.4", "${SHA}", [:mix], [], "hexpm", "${SHA}"`), 'mix.lock line 2, column 27: "jason": expected a SemVer version like "1.4.4"'],
    ['a Hex entry with too few fields', hex(`"1.4.4", "${SHA}", [:mix]`), 'mix.lock line 2, column 12: "jason": expected a :hex entry of 6 to 8 fields, found 5'],
    ['a Hex dependency of another shape', hex(`"1.4.4", "${SHA}", [:mix], [:decimal], "hexpm", "${SHA}"`), '"jason": expected a dependency like {:name, "~> 1.0", [hex: :name, repo: "hexpm", optional: false]}'],
    ['a git entry whose commit is a branch name', `%{"a": {:git, "u", "main", []}}`, 'mix.lock line 1, column 20: "a": expected the commit (40 or 64 lowercase hex digits)'],
    ['an application name that is not one', `%{"Bad-Name": {:git, "u", "${'a'.repeat(40)}", []}}`, 'mix.lock line 1, column 15: "Bad-Name" is not an application name (lowercase letters, digits and _)'],
    ['an application locked twice', `%{"a": {:git, "u", "${'a'.repeat(40)}", []}, "a": {:git, "u", "${'a'.repeat(40)}", []}}`, '"a" is locked twice'],
    ['an unclosed string', `%{"a": {:git, "u`, 'mix.lock line 1, column 15: a string is not closed'],
    ['an unknown escape', `%{"a": {:git, "\\x41", "x", []}}`, 'mix.lock line 1, column 16: unsupported escape \\x in a string'],
    ['text after the map', `%{}\nSystem.halt()`, 'mix.lock line 2, column 1: unexpected "System.halt(" after the lock\'s map'],
    ['a list mixing keywords and other terms', `%{"a": {:git, "u", "${'a'.repeat(40)}", [:x, branch: "m"]}}`, 'a list mixes keyword pairs with other terms'],
    ['terms nested too deep', `%{"a": {:git, "u", "x", [[[[[[[[[[]]]]]]]]]]}}`, 'terms nested deeper than 8'],
    ['anything but a map', '[]', 'mix.lock line 1, column 1: expected the lock\'s outer map "%{", found "[]"'],
  ])('refuses %s, saying where and what was expected', (_what, text, message) => {
    expect(refusal(text)).toContain(message);
  });

  it('refuses a lock larger than its bound unread', () => {
    expect(refusal(`%{}${' '.repeat(MAX_LOCK_BYTES)}`)).toBe(`mix.lock is larger than ${MAX_LOCK_BYTES} bytes`);
  });
});

describe("reading the project's mix.lock from the build's work directory", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const work = async (lock?: string | Buffer) => {
    const base = await mkdtemp(join(tmpdir(), 'xamal-lock-'));
    dirs.push(base);
    await mkdir(join(base, 'src'));
    if (lock !== undefined) await writeFile(join(base, 'src', 'mix.lock'), lock);
    return base;
  };
  const refusedWith = (p: Promise<unknown>) => p.then(() => 'accepted', (e: Error & { code?: string }) => `${e.code}: ${e.message}`);

  it('is undefined without a lock, and the parsed entries with one', async () => {
    const none = await work();
    expect(await readProjectLock(none, join(none, 'src'))).toBeUndefined();
    const base = await work(FIXTURE_LOCK);
    expect((await readProjectLock(base, join(base, 'src')))!.map((d) => d.app)).toContain('jason');
  });

  it('refuses, as a failed build naming the lock, a lock that is a link, not UTF-8, malformed, or a source folder that is a link', async () => {
    const linked = await work();
    await symlink('/etc/passwd', join(linked, 'src', 'mix.lock'));
    expect(await refusedWith(readProjectLock(linked, join(linked, 'src')))).toBe(`build_failed: sbom: mix.lock is a symbolic link; it is read only as a regular file of at most ${MAX_LOCK_BYTES} bytes`);
    const binary = await work(Buffer.from([0x25, 0x7b, 0xff, 0x7d]));
    expect(await refusedWith(readProjectLock(binary, join(binary, 'src')))).toBe('build_failed: sbom: mix.lock is not UTF-8 text (the SBOM lists what mix.lock pins: a lock it cannot read stops the build)');
    const bad = await work('%{"a": 1}');
    expect(await refusedWith(readProjectLock(bad, join(bad, 'src')))).toBe(
      'build_failed: sbom: mix.lock line 1, column 8: "a": expected a tuple starting with its SCM (:hex or :git) (the SBOM lists what mix.lock pins: a lock it cannot read stops the build)',
    );
    const srcLink = await work();
    await rm(join(srcLink, 'src'), { recursive: true });
    await symlink('/etc', join(srcLink, 'src'));
    expect(await refusedWith(readProjectLock(srcLink, join(srcLink, 'src')))).toBe('build_failed: source: src is a link (-> /etc), not a directory in the work tree');
  });
});
