/**
 * Test hosts (issue #6): wall time for N hosts (Debian 11/12/13 in turn) from `upLab` to every host's
 * systemd `running` over SSH, and for `down` (clean poweroff + removal), from cached roots.
 *
 *   npx tsx bench/testhosts.ts [--runs 5] [--hosts 5]
 *
 * Runs as root (namespaces, mounts, nspawn). Prints a markdown table row per measure.
 */
import { parseArgs } from 'node:util';
import { ensurePackages } from '../localservices/index.ts';
import { ensureHostRootfs, HOST_SUITES, LAB_PACKAGES, labDeps, upLab } from '../testkit/hosts/index.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, hosts: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
const count = Number(values.hosts);
const say = (l: string) => process.stderr.write(`${l}\n`);
await ensurePackages(LAB_PACKAGES, say);
const deps = labDeps(say);
for (const s of HOST_SUITES) await ensureHostRootfs(deps, s);
const suites = Array.from({ length: count }, (_, i) => HOST_SUITES[i % HOST_SUITES.length]!);

const up: number[] = [];
const down: number[] = [];
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  const lab = await upLab(deps, { suites });
  up.push(performance.now() - t0);
  const t1 = performance.now();
  await lab.down();
  down.push(performance.now() - t1);
  say(`run ${i + 1}: up ${Math.round(up.at(-1)!)} ms, down ${Math.round(down.at(-1)!)} ms`);
}
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `${(s[Math.floor(s.length / 2)]! / 1000).toFixed(2)} s | ${(s[0]! / 1000).toFixed(2)}–${(s.at(-1)! / 1000).toFixed(2)} s`;
};
console.log(`| ${count} hosts up (all \`running\`) | ${stats(up)} |`);
console.log(`| ${count} hosts down (poweroff + cleanup) | ${stats(down)} |`);
