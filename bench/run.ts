/**
 * Every benchmark, each as its own child process with a modest run count, one after the other (they
 * would disturb each other's figures), within a 20-minute budget on this 2-core machine. Each one's
 * markdown rows are printed under its name, then a summary of wall times and exit codes. For the
 * figures in BENCHMARKS.md run a benchmark alone with its default (≥ 5) runs.
 *
 *   npm run bench                      # = npx tsx bench/run.ts
 *   npx tsx bench/run.ts --only p1,p4  # some of them
 *   npx tsx bench/run.ts --list
 *
 * Needs the local services (`npx xamal farm services up`) and root (test hosts). Exit 1 if any failed.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../localservices/config.ts';

interface Bench {
  id: string;
  file: string;
  args: string[];
  what: string;
  /** Longest it may take here before it is stopped. */
  capS: number;
}

/** Run counts chosen so the whole set fits in 20 minutes here (medians of ≥ 5 come from solo runs). */
const BENCHES: Bench[] = [
  { id: 'p1', file: 'build-e2e.ts', args: ['--runs', '1'], what: 'P1 end-to-end build ÷ raw docker run (examples/shop)', capS: 420 },
  { id: 'p2', file: 'rebuild.ts', args: ['--runs', '1'], what: 'P2 one-file rebuild ÷ cold build (examples/shop)', capS: 420 },
  { id: 'p3', file: 'repeat.ts', args: ['--runs', '3', '--requests', '200'], what: 'P3 identical request again', capS: 120 },
  { id: 'p4', file: 'resolve.ts', args: ['--runs', '3', '--duration', '5'], what: 'P4 lookup/resolve throughput', capS: 180 },
  { id: 'p8', file: 'matrix.ts', args: ['--runs', '2'], what: 'P8 matrix makespan on one worker', capS: 300 },
  { id: 'p9', file: 'images.ts', args: ['--runs', '1'], what: 'P9 builder images, cached', capS: 180 },
  { id: 'p10', file: 'toolchains.ts', args: ['--runs', '1', '--combos', 'bookworm:27.3.4.1:1.18.3'], what: 'P10 from-source builder, cached preparation', capS: 180 },
  { id: 'testhosts', file: 'testhosts.ts', args: ['--runs', '3'], what: 'test hosts up/down', capS: 90 },
  { id: 'ssh', file: 'ssh.ts', args: ['--runs', '3'], what: 'SSH pooled vs new connection', capS: 90 },
  { id: 'p5', file: 'switch.ts', args: ['--switches', '20'], what: 'P5 Caddy switch under load', capS: 120 },
  { id: 'p6', file: 'deploy.ts', args: ['--runs', '2', '--host-cpus', '0.3'], what: 'P6 deploy to 5 hosts ÷ 1 host (hosts capped at 0.3 core each)', capS: 300 },
  { id: 'p7', file: 'transfer.ts', args: ['--runs', '2', '--sizes', '6'], what: 'P7 artifact transfer: host pull vs SFTP', capS: 180 },
];
const BUDGET_S = 20 * 60;

const { values } = parseArgs({ options: { only: { type: 'string' }, list: { type: 'boolean', default: false } } });
const wanted = values.only ? new Set(values.only.split(',').map((s) => s.trim().toLowerCase())) : undefined;
const selected = BENCHES.filter((b) => (!wanted || wanted.has(b.id)) && existsSync(join(PROJECT_ROOT, 'bench', b.file)));
if (values.list) {
  for (const b of BENCHES) console.log(`${b.id.padEnd(10)} bench/${b.file} ${b.args.join(' ')}  — ${b.what}${existsSync(join(PROJECT_ROOT, 'bench', b.file)) ? '' : ' (not present)'}`);
  process.exit(0);
}

/** Runs one benchmark; its stderr streams through, its stdout (the rows) is kept. Stopped at `timeoutS`. */
function runOne(b: Bench, timeoutS: number): Promise<{ code: number | null; stdout: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(join(PROJECT_ROOT, 'node_modules/.bin/tsx'), [join(PROJECT_ROOT, 'bench', b.file), ...b.args], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
    }, timeoutS * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, timedOut });
    });
  });
}

const t0 = performance.now();
const summary: string[] = [];
let failed = 0;
for (const b of selected) {
  const left = BUDGET_S - (performance.now() - t0) / 1000;
  if (left < 30) {
    summary.push(`| ${b.id} | bench/${b.file} | - | skipped: the 20-minute budget is spent |`);
    failed++;
    continue;
  }
  process.stderr.write(`\n=== ${b.id}: npx tsx bench/${b.file} ${b.args.join(' ')} ===\n`);
  const s = performance.now();
  const r = await runOne(b, Math.min(b.capS, left));
  const wall = (performance.now() - s) / 1000;
  const ok = r.code === 0 && !r.timedOut;
  if (!ok) failed++;
  console.log(`\n### ${b.what} — \`npx tsx bench/${b.file} ${b.args.join(' ')}\`\n`);
  console.log(r.stdout.trim() || '(no rows)');
  summary.push(`| ${b.id} | bench/${b.file} ${b.args.join(' ')} | ${wall.toFixed(0)} s | ${ok ? 'ok' : r.timedOut ? `stopped after ${wall.toFixed(0)} s` : `exit ${r.code}`} |`);
}
console.log(`\n### Summary (${((performance.now() - t0) / 60_000).toFixed(1)} min of a ${BUDGET_S / 60}-minute budget)\n`);
console.log('| id | command | wall time | result |\n|---|---|---|---|');
for (const line of summary) console.log(line);
process.exit(failed ? 1 : 0);
