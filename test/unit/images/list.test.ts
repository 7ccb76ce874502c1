import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { imageRows, type ImageRow } from '../../../builder/images/list.ts';
import { CATALOG_PATH, parseCatalog, type Catalog } from '../../../images/catalog.ts';
import { emptyLock, type LockFile } from '../../../images/lock.ts';
import { readToolchainCatalog } from '../../../images/toolchains.ts';
import { COMMITTED_LOCK, digest, ENTRIES, HEXPM_REF, LOCAL_LOCK, TUPLES } from '../../../testkit/images/fixtures.ts';

const NO_CATALOG: Catalog = { images: [] };
const TOOLCHAINS = readToolchainCatalog();
const OTHER_HEXPM = 'hexpm/elixir:1.18.4-erlang-27.3.4-debian-bookworm-20250520-slim';

const statusCount = (rows: readonly ImageRow[]) =>
  rows.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }), {});

describe('imageRows', () => {
  it('lists nothing for an empty catalog and empty locks', () => {
    expect(imageRows(NO_CATALOG, emptyLock(), emptyLock(), TOOLCHAINS, 'x86_64')).toEqual([]);
  });

  it('makes every locked platform a ready row with its Docker platform', () => {
    const rows = imageRows(NO_CATALOG, COMMITTED_LOCK, LOCAL_LOCK, TOOLCHAINS, 'x86_64');
    expect(rows).toHaveLength(7);
    expect(statusCount(rows)).toEqual({ ready: 7 });
    expect(rows.find((r) => r.tuple === TUPLES.bookwormArm)).toEqual({
      tuple: TUPLES.bookwormArm,
      ref: ENTRIES.bookwormArm.ref,
      digest: digest('4'),
      arch: 'aarch64',
      platform: 'linux/arm64/v8',
      flavour: 'builder',
      source: 'recipe',
      origin: 'recipe debian bookworm (debian12)',
      status: 'ready',
    });
    expect(rows.find((r) => r.tuple === TUPLES.bullseye)).toMatchObject({ platform: 'linux/amd64', origin: 'recipe debian bullseye (debian11)' });
  });

  it('gives each platform of a pinned hexpm image its own digest and no tuple until probed', () => {
    const rows = imageRows(NO_CATALOG, COMMITTED_LOCK, emptyLock(), TOOLCHAINS, 'x86_64');
    expect(rows).toEqual([
      { tuple: null, ref: HEXPM_REF, digest: digest('b'), arch: 'x86_64', platform: 'linux/amd64', flavour: 'builder', source: 'hexpm', origin: `hexpm ${HEXPM_REF}`, status: 'ready' },
      { tuple: null, ref: HEXPM_REF, digest: digest('c'), arch: 'aarch64', platform: 'linux/arm64/v8', flavour: 'builder', source: 'hexpm', origin: `hexpm ${HEXPM_REF}`, status: 'ready' },
    ]);
  });

  it('shows a probed tuple only on the platform it was probed on', () => {
    const probed: LockFile = { version: 1, images: [{ ...ENTRIES.hexpm, tuple: 'linux-x86_64-gnu2.36-debian12-otp27.1.2-elixir1.17.3' }] };
    expect(imageRows(NO_CATALOG, probed, emptyLock(), TOOLCHAINS, 'x86_64').map((r) => [r.arch, r.tuple])).toEqual([
      ['x86_64', 'linux-x86_64-gnu2.36-debian12-otp27.1.2-elixir1.17.3'],
      ['aarch64', null],
    ]);
  });

  it('shows a runtime image without a tuple', () => {
    const row = imageRows(NO_CATALOG, emptyLock(), LOCAL_LOCK, TOOLCHAINS, 'x86_64').find((r) => r.flavour === 'runtime');
    expect(row).toMatchObject({ tuple: null, ref: ENTRIES.runtime.ref, platform: 'linux/amd64', status: 'ready' });
  });

  it('makes a hexpm catalog tag without a pin a not-pinned row per arch', () => {
    const catalog: Catalog = { images: [{ source: 'hexpm', ref: OTHER_HEXPM, arches: ['x86_64', 'aarch64'] }] };
    expect(imageRows(catalog, emptyLock(), emptyLock(), TOOLCHAINS, 'x86_64')).toEqual([
      { tuple: null, ref: OTHER_HEXPM, digest: null, arch: 'x86_64', platform: 'linux/amd64', flavour: 'builder', source: 'hexpm', origin: `hexpm ${OTHER_HEXPM}`, status: 'not pinned' },
      { tuple: null, ref: OTHER_HEXPM, digest: null, arch: 'aarch64', platform: 'linux/arm64/v8', flavour: 'builder', source: 'hexpm', origin: `hexpm ${OTHER_HEXPM}`, status: 'not pinned' },
    ]);
  });

  it('does not list a pinned hexpm tag again as not pinned', () => {
    const catalog: Catalog = { images: [{ source: 'hexpm', ref: HEXPM_REF, arches: ['x86_64', 'aarch64'] }] };
    const rows = imageRows(catalog, COMMITTED_LOCK, emptyLock(), TOOLCHAINS, 'x86_64');
    expect(rows.map((r) => `${r.arch} ${r.status}`)).toEqual(['x86_64 ready', 'aarch64 ready']);
  });

  it('lists an arch the pin lacks as not pinned', () => {
    const x86Only: LockFile = { version: 1, images: [{ ...ENTRIES.hexpm, platforms: [{ arch: 'x86_64', digest: digest('b') }] }] };
    const catalog: Catalog = { images: [{ source: 'hexpm', ref: HEXPM_REF, arches: ['x86_64', 'aarch64'] }] };
    expect(imageRows(catalog, x86Only, emptyLock(), TOOLCHAINS, 'x86_64').map((r) => `${r.arch} ${r.status}`)).toEqual(['x86_64 ready', 'aarch64 not pinned']);
  });

  it('makes a recipe not in the local lock a not-built row per arch and flavour', () => {
    const catalog: Catalog = { images: [{ source: 'recipe', suite: 'trixie', arches: ['x86_64', 'aarch64'], flavours: ['builder', 'runtime'] }] };
    const rows = imageRows(catalog, emptyLock(), emptyLock(), TOOLCHAINS, 'x86_64');
    expect(rows.map((r) => [r.ref, r.platform, r.flavour, r.status])).toEqual([
      ['(recipe trixie x86_64 builder)', 'linux/amd64', 'builder', 'not built'],
      ['(recipe trixie x86_64 runtime)', 'linux/amd64', 'runtime', 'not built'],
      ['(recipe trixie aarch64 builder)', 'linux/arm64/v8', 'builder', 'not built'],
      ['(recipe trixie aarch64 runtime)', 'linux/arm64/v8', 'runtime', 'not built'],
    ]);
    for (const r of rows) expect(r).toMatchObject({ tuple: null, digest: null, source: 'recipe', origin: 'recipe debian trixie (debian13)' });
  });

  it('lists a built recipe image once, as ready, and only the missing ones as not built', () => {
    const catalog: Catalog = { images: [{ source: 'recipe', suite: 'bookworm', arches: ['x86_64', 'aarch64'], flavours: ['builder', 'runtime'] }] };
    const rows = imageRows(catalog, emptyLock(), LOCAL_LOCK, TOOLCHAINS, 'x86_64').filter((r) => r.origin.startsWith('recipe debian bookworm'));
    expect(rows.map((r) => `${r.arch} ${r.flavour} ${r.status}`).sort()).toEqual([
      'aarch64 builder ready',
      'aarch64 runtime not built',
      'x86_64 builder ready',
      'x86_64 runtime ready',
    ]);
  });

  it('does not count a recipe image in the committed lock as built here', () => {
    const catalog: Catalog = { images: [{ source: 'recipe', suite: 'trixie', arches: ['x86_64'], flavours: ['builder'] }] };
    const committed: LockFile = { version: 1, images: [ENTRIES.trixie] };
    expect(imageRows(catalog, committed, emptyLock(), TOOLCHAINS, 'x86_64').map((r) => r.status)).toEqual(['ready', 'not built']);
  });

  it('gives the committed catalog exactly one row per image it names', () => {
    const catalog = parseCatalog(JSON.parse(readFileSync(CATALOG_PATH, 'utf8')));
    const rows = imageRows(catalog, COMMITTED_LOCK, LOCAL_LOCK, TOOLCHAINS, 'x86_64');
    const expected = catalog.images.flatMap((c) =>
      c.source === 'hexpm'
        ? c.arches.map((a) => `hexpm ${c.ref} ${a}`)
        : c.source === 'toolchain'
          ? c.arches.map((a) => `toolchain ${c.suite} ${a} otp${c.otp} elixir${c.elixir}`)
          : c.arches.flatMap((a) => c.flavours.map((f) => `recipe ${c.suite} ${a} ${f}`)),
    );
    const key = (r: ImageRow) => {
      if (r.source === 'hexpm') return `hexpm ${r.ref} ${r.arch}`;
      const fromSource = /^\(from source (\w+) \S+ (otp\S+) (elixir\S+)\)$/.exec(r.ref);
      return fromSource ? `toolchain ${fromSource[1]} ${r.arch} ${fromSource[2]} ${fromSource[3]}` : `recipe ${/^recipe debian (\w+)/.exec(r.origin)![1]} ${r.arch} ${r.flavour}`;
    };
    expect(rows.map(key).sort()).toEqual(expected.sort());
    expect(rows.filter((r) => r.ref === OTHER_HEXPM).map((r) => r.status)).toEqual(['not pinned', 'not pinned']);
    expect(rows.filter((r) => r.ref === HEXPM_REF).map((r) => r.status)).toEqual(['ready', 'ready']);
  });

  it('makes a from-source combination a not-built row when this machine can build it, and a cannot-build row naming every reason when not', () => {
    const catalog: Catalog = {
      images: [
        { source: 'toolchain', suite: 'bookworm', otp: '27.3.4.1', elixir: '1.18.3', arches: ['x86_64', 'aarch64'] },
        { source: 'toolchain', suite: 'trixie', otp: '23.2.6', elixir: '1.14.0', arches: ['x86_64'] },
      ],
    };
    const rows = imageRows(catalog, emptyLock(), emptyLock(), TOOLCHAINS, 'x86_64');
    expect(rows.map((r) => [r.ref, r.status])).toEqual([
      ['(from source bookworm x86_64 otp27.3.4.1 elixir1.18.3)', 'not built'],
      ['(from source bookworm aarch64 otp27.3.4.1 elixir1.18.3)', 'cannot build'],
      ['(from source trixie x86_64 otp23.2.6 elixir1.14.0)', 'cannot build'],
    ]);
    expect(rows[1]!.why).toMatch(/needs a native aarch64 worker/);
    expect(rows[2]!.why).toBe("trixie ships OpenSSL 3.5; OTP's crypto builds against OpenSSL 3 from 24.2, not 23.2.6");
    expect(rows[0]!.origin).toBe('recipe debian bookworm (debian12), OTP 27.3.4.1 from source + Elixir 1.18.3 from source');
  });

  it("says an Elixir the farm's origins give precompiled is precompiled, for which OTP, and from where", () => {
    const catalog: Catalog = { images: [{ source: 'toolchain', suite: 'bookworm', otp: '29.1.1', elixir: '1.20.4', arches: ['x86_64'] }] };
    const [row] = imageRows(catalog, emptyLock(), emptyLock(), TOOLCHAINS, 'x86_64', ['debian']);
    expect(row!.origin).toBe('recipe debian bookworm (debian12), OTP 29.1.1 from source + Elixir 1.20.4 precompiled for OTP 29 (debian package)');
  });
});
