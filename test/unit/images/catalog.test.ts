import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError, XamalError } from '../../../core/errors/index.ts';
import { parseSelectorString } from '../../../core/tuple/selector.ts';
import {
  CATALOG_PATH,
  lookupBySelector,
  parseCatalog,
  readCatalog,
  suiteDistro,
  usableImages,
  type CatalogImage,
} from '../../../images/catalog.ts';
import { parseHexpmRef } from '../../../images/hexpm-tag.ts';
import { LockFileSchema, type LockFile } from '../../../images/lock.ts';
import { COMMITTED_LOCK, digest, ENTRIES, HEXPM_REF, LOCAL_LOCK, TUPLES } from '../../../testkit/images/fixtures.ts';

function issuesOf(json: unknown): { path: string; message: string }[] {
  try {
    parseCatalog(json);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).message).toMatch(/^catalog: invalid image catalog\n/);
    return [...(err as ValidationError).issues];
  }
  throw new Error('expected the catalog to be rejected');
}

describe('parseCatalog', () => {
  it('accepts the committed images/catalog.json', () => {
    const catalog = parseCatalog(JSON.parse(readFileSync(CATALOG_PATH, 'utf8')));
    expect(catalog.images.length).toBeGreaterThan(0);
    const recipes = catalog.images.flatMap((e) => (e.source === 'recipe' ? [e] : []));
    expect(recipes.map((e) => e.suite).sort()).toEqual(['bookworm', 'bullseye', 'trixie']);
    expect(recipes.find((e) => e.suite === 'bookworm')?.arches).toEqual(['x86_64', 'aarch64']);
    for (const e of catalog.images) if (e.source === 'hexpm') expect(() => parseHexpmRef(e.ref)).not.toThrow();
  });

  it('holds no digests in the committed catalog (they are written only by pin)', () => {
    expect(readFileSync(CATALOG_PATH, 'utf8')).not.toMatch(/sha256:/);
  });

  it('fills in both flavours for a recipe and both arches for a hexpm tag', () => {
    const catalog = parseCatalog({
      images: [
        { source: 'recipe', suite: 'trixie', arches: ['x86_64'] },
        { source: 'hexpm', ref: HEXPM_REF },
      ],
    });
    expect(catalog.images).toEqual([
      { source: 'recipe', suite: 'trixie', arches: ['x86_64'], flavours: ['builder', 'runtime'] },
      { source: 'hexpm', ref: HEXPM_REF, arches: ['x86_64', 'aarch64'] },
    ]);
  });

  it('rejects an unknown source at its path', () => {
    expect(issuesOf({ images: [{ source: 'docker', ref: 'debian:12' }] })).toEqual([
      { path: 'images/0/source', message: expect.stringContaining("'hexpm' | 'recipe'") },
    ]);
  });

  it('rejects an unknown key in an entry at the entry path', () => {
    expect(issuesOf({ images: [{ source: 'recipe', suite: 'bookworm', arches: ['x86_64'], mirror: 'http://x' }] })).toEqual([
      { path: 'images/0', message: expect.stringContaining('"mirror"') },
    ]);
  });

  it('rejects an unknown key at the top level', () => {
    expect(issuesOf({ images: [], digests: {} })).toEqual([{ path: '', message: expect.stringContaining('"digests"') }]);
  });

  it('rejects a hexpm ref with a digest, saying digests come from pin', () => {
    const ref = `${HEXPM_REF}@${digest('d')}`;
    const issues = issuesOf({ images: [{ source: 'recipe', suite: 'bookworm', arches: ['x86_64'] }, { source: 'hexpm', ref }] });
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe('images/1/ref');
    expect(issues[0]!.message).toContain('xamal farm images pin');
    expect(issues[0]!.message).not.toMatch(/^ref: /);
  });

  it('rejects a hexpm ref whose tag does not parse, naming the part of the ref', () => {
    const issues = issuesOf({ images: [{ source: 'hexpm', ref: 'hexpm/elixir:1.17.3-erlang-27.1.2-debian-sid-20241016-slim' }] });
    expect(issues).toEqual([{ path: 'images/0/ref', message: expect.stringMatching(/^tag: unknown debian codename "sid"/) }]);
  });

  it('rejects a recipe with a suite it cannot build', () => {
    expect(issuesOf({ images: [{ source: 'recipe', suite: 'buster', arches: ['x86_64'] }] })).toEqual([
      { path: 'images/0/suite', message: expect.stringContaining('bullseye') },
    ]);
  });

  it('rejects an unknown arch, an empty arch list and an unknown flavour, each at its path', () => {
    const issues = issuesOf({
      images: [
        { source: 'recipe', suite: 'bookworm', arches: ['arm64'] },
        { source: 'recipe', suite: 'bookworm', arches: [] },
        { source: 'recipe', suite: 'bookworm', arches: ['x86_64'], flavours: ['slim'] },
      ],
    });
    expect(issues.map((i) => i.path)).toEqual(['images/0/arches/0', 'images/1/arches', 'images/2/flavours/0']);
  });

  it('reports every bad entry at once', () => {
    const issues = issuesOf({
      images: [
        { source: 'recipe', suite: 'sid', arches: ['x86_64'] },
        { source: 'hexpm', ref: 'elixir:latest' },
      ],
    });
    expect(issues.map((i) => i.path)).toEqual(['images/0/suite', 'images/1/ref']);
  });
});

describe('readCatalog', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-catalog-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the committed catalog by default', async () => {
    expect((await readCatalog()).images.length).toBeGreaterThan(0);
  });

  it('refuses a file that is not JSON, naming it', async () => {
    const path = join(dir, 'catalog.json');
    await writeFile(path, '{ images: [');
    const err = await readCatalog(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XamalError);
    expect((err as XamalError).code).toBe('validation');
    expect((err as XamalError).message).toContain(`${path}: not valid JSON`);
  });

  it('refuses an invalid catalog with the file in the heading', async () => {
    const path = join(dir, 'catalog.json');
    await writeFile(path, JSON.stringify({ images: [{ source: 'recipe', suite: 'buster', arches: ['x86_64'] }] }));
    const err = await readCatalog(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).message.split('\n')).toEqual([`${path}: invalid image catalog`, expect.stringMatching(/^images\/0\/suite: /)]);
  });
});

describe('suiteDistro', () => {
  it.each([
    ['bullseye', 'debian11'],
    ['bookworm', 'debian12'],
    ['trixie', 'debian13'],
    ['noble', 'ubuntu24.04'],
    ['sid', 'sid'],
    ['toString', 'toString'],
    ['constructor', 'constructor'],
  ])('names suite %s as %s', (suite, distro) => {
    expect(suiteDistro(suite)).toBe(distro);
  });
});

describe('usableImages', () => {
  it('gives the fixtures valid lock files', () => {
    expect(LockFileSchema.parse(LOCAL_LOCK)).toEqual(LOCAL_LOCK);
    expect(LockFileSchema.parse(COMMITTED_LOCK)).toEqual(COMMITTED_LOCK);
  });

  it('gives one image per locked platform, with the per-platform digest', () => {
    const images = usableImages([COMMITTED_LOCK, LOCAL_LOCK]);
    expect(images).toHaveLength(7);
    expect(images.filter((i) => i.ref === HEXPM_REF)).toEqual([
      { ref: HEXPM_REF, digest: digest('b'), arch: 'x86_64', tuple: undefined, source: 'hexpm', flavour: 'builder' },
      { ref: HEXPM_REF, digest: digest('c'), arch: 'aarch64', tuple: undefined, source: 'hexpm', flavour: 'builder' },
    ]);
    expect(images.find((i) => i.tuple === TUPLES.trixie)).toEqual({
      ref: ENTRIES.trixie.ref,
      digest: digest('3'),
      arch: 'x86_64',
      tuple: TUPLES.trixie,
      source: 'recipe',
      flavour: 'builder',
    });
  });

  it('falls back to the entry digest for a platform without its own', () => {
    const lock: LockFile = { version: 1, images: [{ ...ENTRIES.hexpm, platforms: [{ arch: 'x86_64' }] }] };
    expect(usableImages([lock]).map((i) => i.digest)).toEqual([digest('a')]);
  });

  it('gives a probed tuple only to the platform it names', () => {
    const lock: LockFile = { version: 1, images: [{ ...ENTRIES.hexpm, tuple: 'linux-x86_64-gnu2.36-debian12-otp27.1.2-elixir1.17.3' }] };
    expect(usableImages([lock]).map((i) => [i.arch, i.tuple])).toEqual([
      ['x86_64', 'linux-x86_64-gnu2.36-debian12-otp27.1.2-elixir1.17.3'],
      ['aarch64', undefined],
    ]);
  });

  it('gives each platform of a hexpm pin the tuple probed on it, which selectors then match', () => {
    const x86 = 'linux-x86_64-gnu2.36-debian12-otp27.1.2-elixir1.17.3';
    const arm = 'linux-aarch64-gnu2.36-debian12-otp27.1.2-elixir1.17.3';
    const lock: LockFile = { version: 1, images: [{ ...ENTRIES.hexpm, platforms: [{ arch: 'x86_64', digest: digest('b'), tuple: x86 }, { arch: 'aarch64', digest: digest('c'), tuple: arm }] }] };
    const images = usableImages([lock]);
    expect(images.map((i) => [i.arch, i.digest, i.tuple])).toEqual([
      ['x86_64', digest('b'), x86],
      ['aarch64', digest('c'), arm],
    ]);
    expect(lookupBySelector(images, { arch: 'aarch64', otp: '27' }).matches.map((i) => i.digest)).toEqual([digest('c')]);
  });

  it('gives nothing for empty locks', () => {
    expect(usableImages([])).toEqual([]);
    expect(usableImages([{ version: 1, images: [] }])).toEqual([]);
  });
});

describe('lookupBySelector', () => {
  const images = usableImages([COMMITTED_LOCK, LOCAL_LOCK]);
  const refs = (xs: readonly CatalogImage[]) => xs.map((i) => `${i.ref} ${i.arch}`);
  const rejectedFor = (r: ReturnType<typeof lookupBySelector>, ref: string, arch = 'x86_64') => r.rejected.find((x) => x.image.ref === ref && x.image.arch === arch)?.reasons;

  it('finds only the trixie image for otp 27', () => {
    const r = lookupBySelector(images, { otp: '27' });
    expect(r.matches.map((i) => i.tuple)).toEqual([TUPLES.trixie]);
  });

  it('finds both arches of bookworm for debian12', () => {
    const r = lookupBySelector(images, { distro: 'debian12' });
    expect(r.matches.map((i) => i.tuple).sort()).toEqual([TUPLES.bookwormArm, TUPLES.bookworm]);
  });

  it('finds the one aarch64 image for arch aarch64, also when asked as arm64', () => {
    expect(lookupBySelector(images, { arch: 'aarch64' }).matches.map((i) => i.tuple)).toEqual([TUPLES.bookwormArm]);
    expect(lookupBySelector(images, parseSelectorString('arch=arm64')).matches.map((i) => i.tuple)).toEqual([TUPLES.bookwormArm]);
  });

  it('matches on whole version components (otp 2 is not otp 23 or 25)', () => {
    expect(lookupBySelector(images, { otp: '2' }).matches).toEqual([]);
    expect(lookupBySelector(images, { otp: '23.2' }).matches.map((i) => i.tuple)).toEqual([TUPLES.bullseye]);
  });

  it('combines fields: debian12 on x86_64 with elixir 1.14', () => {
    const r = lookupBySelector(images, { distro: 'debian12', arch: 'x86_64', elixir: '1.14' });
    expect(r.matches.map((i) => i.tuple)).toEqual([TUPLES.bookworm]);
  });

  it('never matches or rejects a runtime image', () => {
    for (const sel of [{}, { distro: 'debian12' }, { arch: 'x86_64' as const }]) {
      const r = lookupBySelector(images, sel);
      const seen = [...r.matches, ...r.rejected.map((x) => x.image)];
      expect(seen.filter((i) => i.flavour === 'runtime')).toEqual([]);
      expect(seen).toHaveLength(images.length - 1);
    }
  });

  it('rejects an unprobed hexpm image on each arch as not probed yet', () => {
    const r = lookupBySelector(images, {});
    expect(rejectedFor(r, HEXPM_REF, 'x86_64')).toEqual([{ path: 'tuple', message: 'not probed yet' }]);
    expect(rejectedFor(r, HEXPM_REF, 'aarch64')).toEqual([{ path: 'tuple', message: 'not probed yet' }]);
    expect(r.rejected).toHaveLength(2);
  });

  it('gives each rejected image the reasons it does not match', () => {
    const r = lookupBySelector(images, { otp: '27' });
    expect(refs(r.rejected.map((x) => x.image)).sort()).toEqual(
      [`${ENTRIES.bullseye.ref} x86_64`, `${ENTRIES.bookworm.ref} x86_64`, `${ENTRIES.bookwormArm.ref} aarch64`, `${HEXPM_REF} x86_64`, `${HEXPM_REF} aarch64`].sort(),
    );
    expect(rejectedFor(r, ENTRIES.bullseye.ref)).toEqual([{ path: 'otp', message: 'wanted OTP 27, artifact has 23.2.6' }]);
    expect(rejectedFor(r, ENTRIES.bookworm.ref)).toEqual([{ path: 'otp', message: 'wanted OTP 27, artifact has 25.2.3' }]);
    expect(rejectedFor(r, ENTRIES.bookwormArm.ref, 'aarch64')).toEqual([{ path: 'otp', message: 'wanted OTP 27, artifact has 25.2.3' }]);
  });

  it('lists every field that does not match', () => {
    const r = lookupBySelector(images, { arch: 'aarch64', distro: 'debian13', otp: '27', elixir: '1.18' });
    expect(r.matches).toEqual([]);
    expect(rejectedFor(r, ENTRIES.bullseye.ref)?.map((i) => i.path)).toEqual(['arch', 'distro', 'otp', 'elixir']);
    expect(rejectedFor(r, ENTRIES.trixie.ref)).toEqual([{ path: 'arch', message: 'wanted aarch64, artifact is x86_64' }]);
    expect(rejectedFor(r, ENTRIES.bookwormArm.ref, 'aarch64')?.map((i) => i.path)).toEqual(['distro', 'otp', 'elixir']);
  });

  it('orders matches newest OTP first, whatever the arch', () => {
    // As text, every linux-x86_64 tuple sorts after linux-aarch64: OTP 23 would come before OTP 25.
    const r = lookupBySelector(images, {});
    expect(r.matches.map((i) => i.tuple)).toEqual([TUPLES.trixie, TUPLES.bookwormArm, TUPLES.bookworm, TUPLES.bullseye]);
  });

  it('orders OTP versions by number, not by text (27.10 after 27.9)', () => {
    const mk = (otp: string): CatalogImage => ({
      ref: `r:${otp}`,
      digest: digest('e'),
      arch: 'x86_64',
      tuple: `linux-x86_64-gnu2.36-debian12-otp${otp}-elixir1.18.3`,
      source: 'registry',
      flavour: 'builder',
    });
    const r = lookupBySelector([mk('27.9'), mk('27.10'), mk('9.3'), mk('27.0~rc1'), mk('27.0')], {});
    expect(r.matches.map((i) => i.ref)).toEqual(['r:27.10', 'r:27.9', 'r:27.0', 'r:27.0~rc1', 'r:9.3']);
  });

  it('rejects an image whose recorded tuple does not parse, with why', () => {
    const bad: CatalogImage = { ref: 'r:bad', digest: digest('f'), arch: 'x86_64', tuple: 'linux-x86_64-gnu2.36-debian12-otp27-elixir1.18.3', source: 'registry', flavour: 'builder' };
    const r = lookupBySelector([bad], {});
    expect(r.matches).toEqual([]);
    expect(r.rejected[0]?.reasons).toEqual([{ path: 'tuple', message: expect.stringContaining('otp: expected "otp" and the full OTP version') }]);
  });

  it('finds nothing among no images', () => {
    expect(lookupBySelector([], { otp: '27' })).toEqual({ matches: [], rejected: [] });
  });
});
