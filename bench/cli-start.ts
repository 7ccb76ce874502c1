/**
 * CLI start-up (issue 21): wall time of `xamal --version`, `xamal --help` and `xamal deploy --help`,
 * each a fresh `node` process, for the compiled CLI (scripts/build-cli.mjs, what an installed package
 * runs) and for the sources under tsx (bin/xamal.mjs in a checkout).
 *
 *   npx tsx bench/cli-start.ts [--runs 9]
 *
 * Prints markdown table rows.
 */
import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../localservices/config.ts';
import { SOURCE_CLI, buildCli } from '../testkit/cli.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '9' } } });
const runs = Number(values.runs);
// Inside the checkout: the compiled CLI finds its npm packages in the node_modules above it.
const dir = join(PROJECT_ROOT, '.state', 'cli', `bench-${process.pid}`);
try {
  const compiled = await buildCli(dir);
  const entries = [
    ['compiled', compiled],
    ['sources (tsx)', SOURCE_CLI],
  ] as const;
  for (const args of [['--version'], ['--help'], ['deploy', '--help']]) {
    for (const [what, entry] of entries) {
      const ms: number[] = [];
      execFileSync(process.execPath, [entry, ...args]); // warm the page cache (and tsx's)
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        execFileSync(process.execPath, [entry, ...args]);
        ms.push(performance.now() - t0);
      }
      ms.sort((a, b) => a - b);
      console.log(`| \`xamal ${args.join(' ')}\`, ${what} | ${Math.round(ms[Math.floor(ms.length / 2)]!)} ms | ${Math.round(ms[0]!)}–${Math.round(ms.at(-1)!)} ms | ${runs} |`);
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
