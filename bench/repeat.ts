/**
 * P3 — the identical request again: once examples/hello is built (bookworm x86_64), the same
 * POST /v1/builds (same app, commit and target) answers 200 from the store. Latency of N sequential
 * requests over loopback (keep-alive), p50/p99 per round, and the containers the engine started
 * for that job meanwhile, read from dockerd's own event log (`docker events`, label
 * org.xamal.job=<job id>) — the first, real build's window is the control (it starts deps, compile
 * and smoke containers).
 *
 *   npx tsx bench/repeat.ts [--runs 5] [--requests 200]
 *
 * Needs the local services (`npx xamal farm services up`). Prints markdown table rows.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalExecutor } from '../core/index.ts';
import { helloRepo } from '../testkit/example-repo.ts';
import { cells, dockerCli, median, percentile, prepare, say, startBenchFarm, TUPLES } from './farm.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, requests: { type: 'string', default: '200' } } });
const runs = Number(values.runs);
const n = Number(values.requests);
const exec = new LocalExecutor();

await prepare(['bookworm']);
const tmp = await mkdtemp(join(tmpdir(), 'xamal-bench-p3-'));
const farm = await startBenchFarm(join(tmp, 'farm'), 1);

/** Container starts dockerd recorded for this job between two instants (epoch ms). */
async function containerStarts(jobId: string, fromMs: number, toMs: number): Promise<number> {
  while (Date.now() < toMs + 1_100) await new Promise((r) => setTimeout(r, 100));
  const r = await exec.run(
    dockerCli(farm.dockerSocket, ['events', '--since', String(Math.floor(fromMs / 1000)), '--until', String(Math.ceil(toMs / 1000)), '--filter', 'type=container', '--filter', 'event=start', '--filter', `label=org.xamal.job=${jobId}`, '--format', '{{.ID}}'], 30_000),
  );
  if (r.code !== 0) throw new Error(`docker events failed: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).length;
}

const p50: number[] = [];
const p99: number[] = [];
const started: number[] = [];
let control = 0;
try {
  const repo = await helloRepo(join(tmp, 'repo'));
  const body = { app: 'hello', source: { git: repo.url, commit: repo.commit }, targets: [TUPLES.bookworm] };
  const b0 = Date.now();
  const first = await farm.call('POST', '/v1/builds', body);
  const jobId = (first.body as { builds: { id: string }[] }).builds[0]!.id;
  await farm.build('hello', repo, [TUPLES.bookworm]);
  control = await containerStarts(jobId, b0, Date.now());
  say(`first build (job ${jobId}): ${control} containers started`);
  for (let i = 0; i < runs; i++) {
    const t0 = Date.now();
    const lat: number[] = [];
    for (let k = 0; k < n; k++) {
      const s = performance.now();
      const res = await farm.call('POST', '/v1/builds', body);
      lat.push(performance.now() - s);
      const b = (res.body as { builds: { id: string; status: string }[] }).builds[0]!;
      if (res.status !== 200 || b.status !== 'done' || b.id !== jobId) throw new Error(`identical request answered ${res.status} ${JSON.stringify(res.body)}`);
    }
    p50.push(percentile(lat, 50));
    p99.push(percentile(lat, 99));
    started.push(await containerStarts(jobId, t0, Date.now()));
    say(`round ${i + 1}: ${n} requests, p50 ${p50.at(-1)!.toFixed(2)} ms, p99 ${p99.at(-1)!.toFixed(2)} ms, max ${Math.max(...lat).toFixed(2)} ms, containers ${started.at(-1)}`);
  }
} finally {
  await farm.close();
  await rm(tmp, { recursive: true, force: true });
}
const ms = (x: number) => `${x.toFixed(2)} ms`;
console.log(`| identical request: latency p50 (${n} requests per round) | ${cells(p50, ms)} |`);
console.log(`| identical request: latency p99 | ${cells(p99, ms)} |`);
console.log(`| containers started per round of ${n} identical requests (control: the first build started ${control}) | ${median(started)} | ${Math.min(...started)}–${Math.max(...started)} |`);
process.exit(0);
