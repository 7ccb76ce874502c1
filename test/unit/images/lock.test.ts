import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError, XamalError } from '../../../core/errors/index.ts';
import {
  emptyLock,
  LockEntrySchema,
  LockFileSchema,
  pinnedRef,
  readLock,
  requirePinned,
  splitRef,
  upsertLock,
  writeLock,
  type LockEntry,
  type LockFile,
} from '../../../images/lock.ts';
import { COMMITTED_LOCK, digest, ENTRIES, HEXPM_REF, LOCAL_LOCK, REGISTRY } from '../../../testkit/images/fixtures.ts';

/** The thrown error of `fn`, which must throw. */
function thrown(fn: () => unknown): XamalError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(XamalError);
    return err as XamalError;
  }
  throw new Error('expected it to throw');
}

const issuePaths = (json: unknown) => {
  const r = LockFileSchema.safeParse(json);
  return r.success ? [] : r.error.issues.map((i) => i.path.join('/'));
};

describe('LockFileSchema', () => {
  it('accepts the committed images.lock.json', async () => {
    const text = await readFile(new URL('../../../images/images.lock.json', import.meta.url), 'utf8');
    expect(LockFileSchema.safeParse(JSON.parse(text)).success).toBe(true);
  });

  it('accepts a lock of built and pinned images', () => {
    expect(LockFileSchema.parse({ version: 1, images: [...LOCAL_LOCK.images, ...COMMITTED_LOCK.images] }).images).toHaveLength(6);
  });

  it('defaults the flavour to builder', () => {
    const { flavour: _, ...noFlavour } = ENTRIES.hexpm;
    expect(LockEntrySchema.parse(noFlavour).flavour).toBe('builder');
  });

  it.each([
    ['a short digest', `sha256:${'a'.repeat(63)}`],
    ['an uppercase digest', `sha256:${'A'.repeat(64)}`],
    ['a sha512 digest', `sha512:${'a'.repeat(64)}`],
    ['a bare hex digest', 'a'.repeat(64)],
  ])('rejects %s', (_what, bad) => {
    expect(issuePaths({ version: 1, images: [{ ...ENTRIES.hexpm, digest: bad }] })).toEqual(['images/0/digest']);
    expect(issuePaths({ version: 1, images: [{ ...ENTRIES.hexpm, platforms: [{ arch: 'x86_64', digest: bad }] }] })).toEqual(['images/0/platforms/0/digest']);
  });

  it('rejects a ref that carries a digest (the tag form is recorded, the digest beside it)', () => {
    expect(issuePaths({ version: 1, images: [{ ...ENTRIES.hexpm, ref: `hexpm/elixir@${digest('a')}` }] })).toEqual(['images/0/ref']);
    expect(issuePaths({ version: 1, images: [{ ...ENTRIES.hexpm, ref: `${HEXPM_REF}@${digest('a')}` }] })).toEqual(['images/0/ref']);
  });

  it('rejects a ref without a tag, even with a registry port', () => {
    expect(issuePaths({ version: 1, images: [{ ...ENTRIES.hexpm, ref: `${REGISTRY}/xamal/builder` }] })).toEqual(['images/0/ref']);
  });

  it('rejects no platforms, an unknown arch, an unknown key, a bad date and another version', () => {
    expect(issuePaths({ version: 1, images: [{ ...ENTRIES.hexpm, platforms: [] }] })).toEqual(['images/0/platforms']);
    expect(issuePaths({ version: 1, images: [{ ...ENTRIES.hexpm, platforms: [{ arch: 'arm64' }] }] })).toEqual(['images/0/platforms/0/arch']);
    expect(issuePaths({ version: 1, images: [{ ...ENTRIES.hexpm, pinnedBy: 'me' }] })).toEqual(['images/0']);
    expect(issuePaths({ version: 1, images: [{ ...ENTRIES.hexpm, resolvedAt: 'yesterday' }] })).toEqual(['images/0/resolvedAt']);
    expect(issuePaths({ version: 2, images: [] })).toEqual(['version']);
  });
});

describe('upsertLock', () => {
  it('adds an entry with a new ref', () => {
    const next = upsertLock(emptyLock(), ENTRIES.trixie);
    expect(next).toEqual({ version: 1, images: [ENTRIES.trixie] });
  });

  it('replaces the entry with the same ref and keeps the others', () => {
    const moved: LockEntry = { ...ENTRIES.bookworm, digest: digest('9'), platforms: [{ arch: 'x86_64', digest: digest('9') }] };
    const next = upsertLock(LOCAL_LOCK, moved);
    expect(next.images).toHaveLength(LOCAL_LOCK.images.length);
    expect(next.images.filter((e) => e.ref === ENTRIES.bookworm.ref)).toEqual([moved]);
    expect(next.images.filter((e) => e.ref !== ENTRIES.bookworm.ref)).toEqual(LOCAL_LOCK.images.filter((e) => e.ref !== ENTRIES.bookworm.ref));
  });

  it('does not change the lock it was given', () => {
    const before = structuredClone(LOCAL_LOCK);
    upsertLock(LOCAL_LOCK, { ...ENTRIES.bookworm, digest: digest('9') });
    expect(LOCAL_LOCK).toEqual(before);
  });
});

describe('writeLock and readLock', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-lock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips a lock, sorted by ref', async () => {
    const path = join(dir, 'images.lock.json');
    const shuffled: LockFile = { version: 1, images: [ENTRIES.trixie, ENTRIES.hexpm, ENTRIES.runtime, ENTRIES.bullseye, ENTRIES.bookwormArm, ENTRIES.bookworm] };
    await writeLock(path, shuffled);
    const back = await readLock(path);
    const refs = back.images.map((e) => e.ref);
    expect(refs).toEqual([...refs].sort());
    expect(refs[0]).toBe(`${REGISTRY}/xamal/builder:${ENTRIES.bookwormArm.tuple}`);
    expect(refs.at(-1)).toBe(HEXPM_REF);
    expect(back.images).toHaveLength(shuffled.images.length);
    expect(back.images).toEqual(expect.arrayContaining(shuffled.images));
  });

  it('writes pretty JSON with a final newline', async () => {
    const path = join(dir, 'images.lock.json');
    await writeLock(path, COMMITTED_LOCK);
    const text = await readFile(path, 'utf8');
    expect(text).toBe(`${JSON.stringify(COMMITTED_LOCK, null, 2)}\n`);
  });

  it('creates missing directories and leaves no temp file behind', async () => {
    const path = join(dir, 'state', 'images', 'local.lock.json');
    await writeLock(path, LOCAL_LOCK);
    await writeLock(path, upsertLock(LOCAL_LOCK, { ...ENTRIES.trixie, resolvedAt: '2025-07-01T00:00:00.000Z' }));
    expect(await readdir(join(dir, 'state', 'images'))).toEqual(['local.lock.json']);
  });

  it('lets two writes from one process race without failing (each has its own temp file)', async () => {
    const path = join(dir, 'images.lock.json');
    const a: LockFile = { version: 1, images: [ENTRIES.bullseye] };
    const b: LockFile = { version: 1, images: [ENTRIES.trixie] };
    await Promise.all([writeLock(path, a), writeLock(path, b), writeLock(path, a)]);
    expect([a, b]).toContainEqual(await readLock(path));
    expect(await readdir(dir)).toEqual(['images.lock.json']);
  });

  it('reads a missing file as an empty lock', async () => {
    expect(await readLock(join(dir, 'nope', 'images.lock.json'))).toEqual({ version: 1, images: [] });
  });

  it('refuses a file that is not JSON, naming the path', async () => {
    const path = join(dir, 'images.lock.json');
    await writeFile(path, '{"version": 1, "images": [');
    const err = await readLock(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XamalError);
    expect((err as XamalError).code).toBe('validation');
    expect((err as XamalError).message).toContain(`${path}: not valid JSON`);
  });

  it('refuses a lock that does not match the schema, naming the path and the field', async () => {
    const path = join(dir, 'images.lock.json');
    await writeFile(path, JSON.stringify({ version: 1, images: [{ ...ENTRIES.hexpm, digest: 'sha256:abc' }] }));
    const err = await readLock(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).message).toContain(`${path}: invalid lock file`);
    expect((err as ValidationError).issues).toEqual([{ path: 'images/0/digest', message: 'expected sha256:<64 hex>' }]);
  });

  it('passes on other read errors (a directory is not a lock)', async () => {
    await expect(readLock(dir)).rejects.toMatchObject({ code: 'EISDIR' });
  });
});

describe('splitRef', () => {
  it.each([
    ['127.0.0.1:5000/xamal/builder:tag', '127.0.0.1:5000/xamal/builder', 'tag'],
    ['127.0.0.1:5000/x', '127.0.0.1:5000/x', undefined],
    ['localhost:5000/xamal/runtime:debian12-x86_64', 'localhost:5000/xamal/runtime', 'debian12-x86_64'],
    [HEXPM_REF, 'hexpm/elixir', '1.17.3-erlang-27.1.2-debian-bookworm-20241016-slim'],
    ['docker.io/hexpm/elixir:1.17.3-erlang-27.1.2-debian-bookworm-20241016-slim', 'docker.io/hexpm/elixir', '1.17.3-erlang-27.1.2-debian-bookworm-20241016-slim'],
    ['debian', 'debian', undefined],
    ['debian:12', 'debian', '12'],
    [`hexpm/elixir@${digest('a')}`, 'hexpm/elixir', undefined],
    [`127.0.0.1:5000/xamal/builder:tag@${digest('a')}`, '127.0.0.1:5000/xamal/builder', 'tag'],
  ])('splits %s into %s and %s', (ref, repository, tag) => {
    expect(splitRef(ref)).toEqual({ repository, tag });
  });
});

describe('pinnedRef', () => {
  it('uses the per-platform digest of the arch asked for', () => {
    expect(pinnedRef(ENTRIES.hexpm, 'x86_64')).toBe(`hexpm/elixir@${digest('b')}`);
    expect(pinnedRef(ENTRIES.hexpm, 'aarch64')).toBe(`hexpm/elixir@${digest('c')}`);
  });

  it('keeps the registry port in the repository', () => {
    expect(pinnedRef(ENTRIES.trixie, 'x86_64')).toBe(`${REGISTRY}/xamal/builder@${digest('3')}`);
  });

  it('falls back to the entry digest when the platform has none', () => {
    expect(pinnedRef({ ...ENTRIES.hexpm, platforms: [{ arch: 'aarch64' }] }, 'aarch64')).toBe(`hexpm/elixir@${digest('a')}`);
  });

  it('refuses an arch the image does not have, listing the ones it has', () => {
    const err = thrown(() => pinnedRef(ENTRIES.trixie, 'aarch64'));
    expect(err.code).toBe('unsupported');
    expect(err.message).toBe(`${ENTRIES.trixie.ref} has no aarch64 image (platforms: x86_64)`);
  });
});

describe('requirePinned', () => {
  const locks = [COMMITTED_LOCK, LOCAL_LOCK];

  it('returns the entry for its index digest', () => {
    expect(requirePinned(locks, HEXPM_REF, digest('a'))).toBe(ENTRIES.hexpm);
  });

  it('returns the entry for one of its per-platform digests', () => {
    expect(requirePinned(locks, HEXPM_REF, digest('c'))).toBe(ENTRIES.hexpm);
    expect(requirePinned(locks, ENTRIES.trixie.ref, digest('3'))).toBe(ENTRIES.trixie);
  });

  it('refuses an image that is in no lock, saying how to pin it', () => {
    const ref = 'hexpm/elixir:1.18.4-erlang-27.3.4-debian-bookworm-20250520-slim';
    const err = thrown(() => requirePinned(locks, ref, digest('a')));
    expect(err.code).toBe('forbidden');
    expect(err.message).toContain(`image ${ref} is not pinned`);
    expect(err.message).toContain('xamal farm images pin');
  });

  it('refuses a digest that is not the pinned one, naming both', () => {
    const err = thrown(() => requirePinned(locks, HEXPM_REF, digest('d')));
    expect(err.code).toBe('forbidden');
    expect(err.message).toContain(`${HEXPM_REF}@${digest('d')}`);
    for (const known of [digest('a'), digest('b'), digest('c')]) expect(err.message).toContain(known);
  });

  it('refuses a digest pinned for another ref', () => {
    expect(thrown(() => requirePinned(locks, ENTRIES.trixie.ref, digest('2'))).code).toBe('forbidden');
  });

  it('refuses everything when there are no locks', () => {
    expect(thrown(() => requirePinned([], HEXPM_REF, digest('a'))).message).toContain('is not pinned');
  });
});
