/**
 * P10 — builders with OTP and Elixir compiled from source, per combination:
 * - cached: the builder prepared again from the cached compiled OTP and Elixir (compose the rootfs,
 *   import, probe, publish, pull back) — what an on-demand preparation costs once the toolchain is
 *   compiled;
 * - cold (`--cold N`): OTP and Elixir compiled again, N times, in a scratch toolchain cache that
 *   shares only the fetched sources and the toolchain base rootfs with the machine's cache.
 *
 *   npx tsx bench/toolchains.ts [--runs 5] [--cold 0] [--combos bookworm:27.3.4.1:1.18.3,trixie:25.2.3:1.14.0]
 *
 * Images go to a lock and registry namespace of their own (the machine's lock is left alone).
 * Sources come from XAMAL_TOOLCHAIN_PREFER's origins (this lab: XAMAL_TOOLCHAIN_PREFER=debian).
 */
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { builderConfig } from '../builder/config.ts';
import { buildImage } from '../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../builder/images/context.ts';
import { servicesUp } from '../localservices/index.ts';
import { isDebianSuite, type DebianSuite } from '../images/distros.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    cold: { type: 'string', default: '0' },
    combos: { type: 'string', default: 'bookworm:27.3.4.1:1.18.3,trixie:25.2.3:1.14.0' },
  },
});
const combos = values.combos.split(',').map((c) => {
  const [suite, otp, elixir] = c.split(':');
  if (!suite || !isDebianSuite(suite) || !otp || !elixir) throw new Error(`--combos: expected suite:otp:elixir, got ${JSON.stringify(c)}`);
  return { suite: suite as DebianSuite, otp, elixir };
});

const cfg = builderConfig();
await servicesUp(cfg.services, ['dockerd', 'registry']);
const scratch = await mkdtemp(join(cfg.cacheDir, 'work', 'bench-toolchains-'));
const arch = hostArch();
const base = { ...imageBuildDeps(cfg, () => {}), localLockPath: join(scratch, 'images.lock.json'), namespace: 'xamal-bench' };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const span = (xs: number[]) => (xs.length ? `${s(median(xs))} (${s(Math.min(...xs))}–${s(Math.max(...xs))}, ${xs.length} runs)` : '-');

try {
  console.log('| combination | cached preparation: median (min–max, runs) | cold: OTP compile | cold: Elixir compile | cold: whole |');
  console.log('|---|---|---|---|---|');
  for (const c of combos) {
    const toolchain = { otp: c.otp, elixir: c.elixir };
    const cached: number[] = [];
    for (let i = 0; i < Number(values.runs); i++) {
      const t0 = performance.now();
      await buildImage(base, { suite: c.suite, arch, flavour: 'builder', toolchain, force: true, noCache: true });
      cached.push(performance.now() - t0);
    }
    const otp: number[] = [];
    const elixir: number[] = [];
    const whole: number[] = [];
    for (let i = 0; i < Number(values.cold); i++) {
      // A toolchain cache of its own: the fetched sources and the base rootfs shared, OTP and Elixir compiled again.
      const cacheDir = join(scratch, `cold-${c.suite}-${i}`);
      await mkdir(join(cacheDir, 'toolchains'), { recursive: true });
      await symlink(join(cfg.cacheDir, 'rootfs'), join(cacheDir, 'rootfs'));
      await symlink(join(cfg.cacheDir, 'toolchains', 'sources'), join(cacheDir, 'toolchains', 'sources'));
      const t0 = performance.now();
      const r = await buildImage({ ...base, cacheDir }, { suite: c.suite, arch, flavour: 'builder', toolchain, force: true, noCache: true });
      whole.push(performance.now() - t0);
      otp.push(r.timings.otp ?? NaN);
      elixir.push(r.timings.elixir ?? NaN);
      await rm(cacheDir, { recursive: true, force: true });
    }
    console.log(`| OTP ${c.otp} + Elixir ${c.elixir} on ${c.suite} ${arch} | ${span(cached)} | ${span(otp)} | ${span(elixir)} | ${span(whole)} |`);
  }
} finally {
  await rm(scratch, { recursive: true, force: true });
}
