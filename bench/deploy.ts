/**
 * P6 (issues #8, #9) — deploy wall time to N hosts ÷ to 1 host, artifacts pulled by the hosts in
 * parallel. A real farm (API + BullMQ worker + S3 store, testkit/farm.ts) builds examples/hello;
 * N Debian 12 test hosts (testkit/hosts/); the real CLI (`xamal setup`, then `xamal deploy --json`, a
 * fresh process each time, as a user runs it). Deploys to 1 host and to N hosts alternate (ABBA),
 * each one a version that host does not have yet (so every deploy pulls), and the ratio of the
 * medians is taken within this one run. Per phase (probe, pull, boot, health, stop old, verify
 * through Caddy; the slowest host for N) from the deploy record, to see where time goes.
 *
 *   npx tsx bench/deploy.ts [--runs 5] [--hosts 5] [--host-cpus 0.3]
 *
 * --host-cpus C caps every test host at C cores (test hosts' `cpus`: a cgroup CPU quota), like N small
 * servers of their own: without it the N hosts share this machine's cores, and N releases booting
 * at once wait for each other's CPU where N real servers would not.
 *
 * Runs as root (test hosts); needs the local services (`npx xamal farm services up`).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { serviceEndpoints, servicesConfig, servicesUp } from '../localservices/index.ts';
import { appLayout } from '../deployer/commands/layout.ts';
import { commitFiles, helloRepo } from '../testkit/example-repo.ts';
import { labDeployYml, labDeps, labProject, upLab, type LabHost } from '../testkit/hosts/index.ts';
import { xamalCli } from '../testkit/cli.ts';
import { startTestFarm } from '../testkit/farm.ts';
import { median } from './farm.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, hosts: { type: 'string', default: '5' }, 'host-cpus': { type: 'string' } } });
const hostCpus = values['host-cpus'] === undefined ? undefined : Number(values['host-cpus']);
const runs = Number(values.runs);
const n = Number(values.hosts);
if (!(runs >= 1 && n >= 2 && n <= 10)) throw new Error('--runs ≥ 1, --hosts 2–10');

const say = (l: string) => process.stderr.write(`[deploy-bench] ${l}\n`);
const sc = servicesConfig();
await servicesUp(sc, ['redis', 'dockerd', 'registry', 's3'], say);
const tmp = await mkdtemp(join(tmpdir(), 'xamal-bench-deploy-'));
const TOKEN = randomBytes(20).toString('hex');
const lab = await upLab(labDeps(), { suites: Array.from({ length: n }, () => 'bookworm' as const), ...(hostCpus === undefined ? {} : { cpus: hostCpus }) });
say(`${n} hosts up${hostCpus === undefined ? ' (no CPU cap)' : `, each capped at ${hostCpus} cores`}`);
const layout = appLayout('hello', undefined);

type Phases = Record<string, number>;
interface Sample {
  hosts: number;
  wallMs: number;
  /** Per phase: the slowest host's time. */
  phases: Phases;
}

try {
  const t0 = performance.now();
  const farm = await startTestFarm({ services: serviceEndpoints(sc), prefix: `bench-deploy-${randomBytes(3).toString('hex')}`, host: lab.gateway, token: TOKEN, workDir: tmp, cacheDir: join(sc.cacheDir, 'test-builds') });
  // Four versions: a deploy takes one that no host runs; between two N-host deploys come at most two
  // 1-host deploys (ABBA order), so at most three versions run anywhere.
  const repo = join(tmp, 'repo');
  const versions = [(await helloRepo(repo)).commit];
  for (let i = 1; i < 4; i++) versions.push(await commitFiles(repo, `v${i}`, { CHANGES: `v${i}\n` }));
  for (const v of versions) await farm.build('hello', { url: `file://${repo}`, commit: v }, 'bookworm');
  say(`farm up and ${versions.length} versions built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const project = join(tmp, 'project');
  await labProject(project, {
    'config/deploy.yml': labDeployYml(lab, { service: 'hello', appPort: 4000, farmUrl: farm.url }),
    '.xamal/secrets-common': `XAMAL_FARM_TOKEN=${TOKEN}\n`,
  });
  const cli = async (args: string[]) => {
    const r = await xamalCli(project, args);
    if (r.code !== 0) throw new Error(`xamal ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  await cli(['setup']);
  await cli(['deploy', '--version', versions[0]!, '-q']);

  /** The version each running slot of a host points at. */
  const running = async (h: LabHost) => {
    const r = await lab.ssh(h, { argv: ['sh', '-c', `for s in blue green; do systemctl is-active -q xamal-hello-web@$s.service && readlink ${layout.slots}/web-$s/release; done; true`] });
    return new Set(r.stdout.split('\n').filter(Boolean).map((p) => p.slice(p.lastIndexOf('/') + 1)));
  };
  const deployTo = async (hosts: LabHost[]): Promise<Sample> => {
    const live = await Promise.all(lab.hosts.map(running));
    const version = versions.find((v) => live.every((s) => !s.has(v)))!;
    // Run by no slot (at most the stopped idle slot points at it): removed, so the deploy pulls it again.
    await Promise.all(hosts.map((h) => lab.ssh(h, { argv: ['rm', '-rf', `${layout.releases}/${version}`] })));
    const args = ['deploy', '--version', version, '--json', ...(hosts.length < n ? ['-h', hosts.map((h) => h.address).join(',')] : [])];
    const t = performance.now();
    const r = await cli(args);
    const wallMs = performance.now() - t;
    const recs = (JSON.parse(r.stdout) as { hosts: { result: string; pulled: boolean; durationsMs: Phases; ms: number }[] }).hosts;
    if (recs.length !== hosts.length || !recs.every((x) => x.result === 'ok' && x.pulled)) throw new Error(`unexpected deploy record: ${r.stdout}`);
    const phases: Phases = {};
    for (const rec of recs) for (const [k, v] of Object.entries({ ...rec.durationsMs, host: rec.ms })) phases[k] = Math.max(phases[k] ?? 0, v);
    return { hosts: hosts.length, wallMs, phases };
  };

  // The constant part: CLI start, config and secrets, one SSH connection and command (the lock's host).
  const base: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await cli(['lock', 'status']);
    base.push(performance.now() - t);
  }

  const one: Sample[] = [];
  const many: Sample[] = [];
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? [1, n] : [n, 1];
    for (const k of order) {
      const s = await deployTo(k === 1 ? [lab.hosts[i % n]!] : lab.hosts);
      (k === 1 ? one : many).push(s);
      say(`run ${i + 1}: ${k} host${k === 1 ? '' : 's'} ${(s.wallMs / 1000).toFixed(2)} s ${JSON.stringify(s.phases)}`);
    }
  }

  const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const range = (xs: number[]) => `${sec(Math.min(...xs))}–${sec(Math.max(...xs))}`;
  const w1 = one.map((s) => s.wallMs);
  const wn = many.map((s) => s.wallMs);
  console.log(`| measure | 1 host | ${n} hosts |`);
  console.log('|---|---|---|');
  console.log(`| \`xamal deploy\` wall time, median | ${sec(median(w1))} | ${sec(median(wn))} |`);
  console.log(`| min–max | ${range(w1)} | ${range(wn)} |`);
  const names = [...new Set([...one, ...many].flatMap((s) => Object.keys(s.phases)))];
  for (const p of names) console.log(`| ${p === 'host' ? 'per-host flow (slowest host)' : p} median | ${sec(median(one.map((s) => s.phases[p] ?? 0)))} | ${sec(median(many.map((s) => s.phases[p] ?? 0)))} |`);
  console.log(`| \`xamal lock status\` (CLI start, config, one SSH connection and command), median of 3 | ${sec(median(base))} | |`);
  console.log(`\nratio of medians (${n} hosts ÷ 1 host): ${(median(wn) / median(w1)).toFixed(2)} (runs: ${runs} each; hosts ${hostCpus === undefined ? 'uncapped' : `capped at ${hostCpus} cores each`})`);
  await farm.close();
} finally {
  await lab.down();
  await rm(tmp, { recursive: true, force: true });
}
