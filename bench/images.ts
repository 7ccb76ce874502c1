/**
 * P9 — builder image preparation per suite and arch: cold (debootstrap, no rootfs cache) and cached
 * (rootfs tarball from the cache: import + probe + publish + pull).
 *
 *   npx tsx bench/images.ts [--runs 5] [--cold] [--suites bullseye,bookworm,trixie] [--arches x86_64,aarch64]
 *
 * Needs the local services (`bash scripts/services up dockerd registry`). Prints a markdown table.
 */
import { parseArgs } from 'node:util';
import { builderConfig } from '../builder/config.ts';
import { buildImage } from '../builder/images/build.ts';
import { imageBuildDeps } from '../builder/images/context.ts';
import { normalizeArch, type Arch } from '../core/index.ts';
import { servicesUp } from '../localservices/index.ts';
import { isDebianSuite, type DebianSuite } from '../images/distros.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    cold: { type: 'boolean', default: false },
    suites: { type: 'string', default: 'bullseye,bookworm,trixie' },
    arches: { type: 'string', default: 'x86_64' },
  },
});
const runs = Number(values.runs);
const suites = values.suites.split(',').filter(isDebianSuite) as DebianSuite[];
const arches = values.arches.split(',').map((a) => normalizeArch(a)).filter((a): a is Arch => !!a);

const cfg = builderConfig();
await servicesUp(cfg.services, ['dockerd', 'registry']);
const deps = imageBuildDeps(cfg, () => {});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

console.log('| suite | arch | cold (debootstrap) | cached: median | cached: min–max | runs |');
console.log('|---|---|---|---|---|---|');
for (const arch of arches) {
  for (const suite of suites) {
    let cold = '-';
    if (values.cold) {
      const t0 = performance.now();
      await buildImage(deps, { suite, arch, flavour: 'builder', force: true, noCache: true });
      cold = s(performance.now() - t0);
    }
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await buildImage(deps, { suite, arch, flavour: 'builder', force: true });
      times.push(performance.now() - t0);
    }
    console.log(`| ${suite} | ${arch} | ${cold} | ${s(median(times))} | ${s(Math.min(...times))}–${s(Math.max(...times))} | ${runs} |`);
  }
}
