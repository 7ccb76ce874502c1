/**
 * P4 — artifact lookup and resolve on loopback, against the API as its own process
 * (bench/farm-api.ts: the app `xamal farm up` serves, embedded disk store, farm log level): wrk
 * (testkit/hosts/load.ts wrkCommand/parseWrk) with a Lua script POSTing /v1/resolve for this machine's
 * real fingerprint (`xamal host probe`'s script, run here), and GET /v1/artifacts/<app>/<commit>/<tuple>
 * (the manifest lookup). The store holds real artifacts: examples/hello built first through the
 * farm for bullseye, bookworm and trixie x86_64, so each resolve weighs three candidates.
 *
 *   npx tsx bench/resolve.ts [--runs 5] [--duration 10] [--connections 8] [--profile DIR]
 *
 * --profile DIR: the API process runs with `node --cpu-prof` and writes its profile into DIR on exit.
 *
 * The machine has 2 cores: wrk (one thread) and the API process share them. Prints markdown rows.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalExecutor, parseProbeOutput, probeCommand } from '../core/index.ts';
import { PROJECT_ROOT } from '../localservices/config.ts';
import { helloRepo } from '../testkit/example-repo.ts';
import { parseWrk, wrkCommand, type WrkResult } from '../testkit/hosts/load.ts';
import { AUTH, cells, median, prepare, say, startBenchFarm, TUPLES } from './farm.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, duration: { type: 'string', default: '10' }, connections: { type: 'string', default: '8' }, profile: { type: 'string' } } });
const runs = Number(values.runs);
const durationS = Number(values.duration);
const connections = Number(values.connections);
const exec = new LocalExecutor();

await prepare(['bullseye', 'bookworm', 'trixie']);
const tmp = await mkdtemp(join(tmpdir(), 'xamal-bench-p4-'));
let api: ChildProcess | undefined;
const results: Record<'resolve' | 'lookup', WrkResult[]> = { resolve: [], lookup: [] };
const cpu: Record<'resolve' | 'lookup', number[]> = { resolve: [], lookup: [] };
/** User + system CPU time of a process so far (/proc/<pid>/stat, clock ticks of 10 ms). */
const cpuMs = async (pid: number) => {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};
try {
  const farm = await startBenchFarm(join(tmp, 'farm'), 2);
  const settings = farm.settings;
  const repo = await helloRepo(join(tmp, 'repo'));
  try {
    say(`building hello for 3 targets: ${Math.round(await farm.build('hello', repo, Object.values(TUPLES)))} ms`);
  } finally {
    await farm.close();
  }
  const probe = await exec.run(probeCommand());
  const host = parseProbeOutput(probe.stdout);
  const body = JSON.stringify({ app: 'hello', version: repo.commit.slice(0, 7), host });

  // node itself (not the tsx wrapper) so that api.pid is the API process whose CPU time is read.
  api = spawn(process.execPath, [...(values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : []), '--import', 'tsx', join(PROJECT_ROOT, 'bench/farm-api.ts'), '--store', join(tmp, 'farm', 'store'), '--redis', settings.redisUrl, ...(settings.prefix ? ['--prefix', settings.prefix] : [])], { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let err = '';
    api!.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
      const m = /listening (http:\/\/\S+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    api!.once('exit', (code) => reject(new Error(`farm-api exited ${code}: ${err}`)));
  });
  const check = await fetch(`${url}/v1/resolve`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body });
  const picked = ((await check.json()) as { artifact?: { tuple: string } }).artifact?.tuple;
  say(`API process at ${url}; resolve for this host (${host.distro} ${host.distroVersion}, glibc ${host.libcVersion}, ${host.libraries.length} libraries) → ${check.status} ${picked}`);
  if (check.status !== 200) throw new Error('resolve did not answer 200');

  const script = join(tmp, 'resolve.lua');
  await writeFile(script, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["content-type"] = "application/json"\n`);
  const targets = {
    resolve: wrkCommand({ url: `${url}/v1/resolve`, durationS, connections, threads: 1, headers: AUTH, script }),
    lookup: wrkCommand({ url: `${url}/v1/artifacts/hello/${repo.commit}/${picked}`, durationS, connections, threads: 1, headers: AUTH }),
  };
  for (let i = 0; i < runs; i++) {
    for (const kind of ['resolve', 'lookup'] as const) {
      const c0 = await cpuMs(api.pid!);
      const r = await exec.run(targets[kind]);
      const w = parseWrk(r.stdout);
      const perRequest = ((await cpuMs(api.pid!)) - c0) / w.requests;
      if (w.failed) throw new Error(`${kind}: ${w.failed} failed requests:\n${r.stdout}`);
      results[kind].push(w);
      cpu[kind].push(perRequest);
      say(`run ${i + 1} ${kind}: ${w.requestsPerSecond.toFixed(0)} req/s, p50 ${w.latencyMs.p50} ms, p99 ${w.latencyMs.p99} ms (${w.requests} requests), API CPU ${perRequest.toFixed(3)} ms per request`);
    }
  }
} finally {
  if (api && api.exitCode === null) {
    const exited = new Promise((resolve) => api!.once('exit', resolve));
    api.kill('SIGTERM');
    await exited;
  }
  await rm(tmp, { recursive: true, force: true });
}
const rps = (x: number) => x.toFixed(0);
const ms = (x: number) => `${x.toFixed(2)} ms`;
for (const kind of ['resolve', 'lookup'] as const) {
  const rs = results[kind];
  const what = kind === 'resolve' ? 'POST /v1/resolve (3 candidates)' : 'GET /v1/artifacts/hello/<commit>/<tuple>';
  console.log(`| ${what}: req/s (${connections} connections, ${durationS} s) | ${cells(rs.map((w) => w.requestsPerSecond), rps)} |`);
  console.log(`| ${what}: latency p99 | ${cells(rs.map((w) => w.latencyMs.p99 ?? NaN), ms)} |`);
  console.log(`| ${what}: latency p50 | ${cells(rs.map((w) => w.latencyMs.p50 ?? NaN), ms)} |`);
  console.log(`| ${what}: API process CPU per request (the load-independent figure; 1 core = 1000 ms/s) | ${cells(cpu[kind], (x) => `${x.toFixed(3)} ms`)} |`);
}
say(`median requests per run: resolve ${median(results.resolve.map((w) => w.requests))}, lookup ${median(results.lookup.map((w) => w.requests))}`);
process.exit(0);
