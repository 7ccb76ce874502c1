import { describe, expect, it } from 'vitest';
import { parseTarget } from '../../../core/index.ts';
import { readCatalog, type Catalog } from '../../../images/catalog.ts';
import { emptyLock, type LockFile } from '../../../images/lock.ts';
import { predictedTuple, preparableImages, SUITE_FACTS } from '../../../images/preparable.ts';
import { readToolchainCatalog } from '../../../images/toolchains.ts';

const toolchains = readToolchainCatalog();
const catalog: Catalog = {
  images: [
    { source: 'recipe', suite: 'bookworm', arches: ['x86_64', 'aarch64'], flavours: ['builder', 'runtime'] },
    { source: 'recipe', suite: 'trixie', arches: ['x86_64'], flavours: ['runtime'] },
    { source: 'toolchain', suite: 'bookworm', otp: '27.3.4.1', elixir: '1.18.3', arches: ['x86_64', 'aarch64'] },
    { source: 'hexpm', ref: 'hexpm/elixir:1.18.4-erlang-27.3.4-debian-bookworm-20250520-slim', arches: ['x86_64'] },
  ],
};

describe('builders the farm can prepare on demand', () => {
  it('predicts the tuple each catalog builder probes as: the suite\'s glibc and release, its packaged or from-source OTP and Elixir', () => {
    expect(predictedTuple('bookworm', 'x86_64', SUITE_FACTS.bookworm.otp, SUITE_FACTS.bookworm.elixir)).toBe('linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0');
    expect(predictedTuple('trixie', 'x86_64', '25.2.3', '1.14.0')).toBe('linux-x86_64-gnu2.41-debian13-otp25.2.3-elixir1.14.0');
    expect(parseTarget(predictedTuple('bullseye', 'aarch64', '23.2.6', '1.10.3')).ok).toBe(true);
  });

  it('lists every catalog builder no lock holds (never runtimes or hexpm tags), with what this machine cannot prepare and why', () => {
    const all = preparableImages(catalog, toolchains, [emptyLock()], 'x86_64');
    expect(all.map((p) => [p.tuple, p.problems.map((i) => i.path)])).toEqual([
      ['linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', []],
      ['linux-aarch64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', []],
      ['linux-x86_64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3', []],
      ['linux-aarch64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3', ['arch']],
    ]);
    expect(all[2]!.request).toEqual({ suite: 'bookworm', arch: 'x86_64', flavour: 'builder', toolchain: { otp: '27.3.4.1', elixir: '1.18.3' } });
    expect(all[3]!.problems[0]!.message).toMatch(/under emulation .* needs a native aarch64 worker/);
  });

  it('leaves out a builder a lock already holds', () => {
    const lock: LockFile = { version: 1, images: [{ ref: 'x/b:t', digest: `sha256:${'a'.repeat(64)}`, platforms: [{ arch: 'x86_64' }], resolvedAt: '2025-01-01T00:00:00.000Z', source: 'recipe', flavour: 'builder', tuple: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0' }] };
    expect(preparableImages(catalog, toolchains, [lock], 'x86_64').map((p) => p.tuple)).not.toContain('linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0');
  });

  it('the committed catalog names the from-source builders of the acceptance (OTP 27 + Elixir 1.18 on Debian 12, OTP 25 + Elixir 1.14 on Debian 13), both preparable on x86_64', async () => {
    const tuples = preparableImages(await readCatalog(), toolchains, [emptyLock()], 'x86_64').filter((p) => p.request.toolchain && !p.problems.length).map((p) => p.tuple);
    expect(tuples).toEqual(expect.arrayContaining(['linux-x86_64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3', 'linux-x86_64-gnu2.41-debian13-otp25.2.3-elixir1.14.0']));
  });
});
