/**
 * P1 — an end-to-end build through the API (POST /v1/builds → the manifest visible at
 * GET /v1/artifacts/…) ÷ the raw builds it wraps: `docker run <same image digest> mix deps.get` then
 * `docker run … mix release hello --overwrite`, with the very container specs the worker's plan
 * (builder/plan.ts) gives for that job, run by the engine's docker CLI against the project's dockerd,
 * on a fresh checkout of the same commit. Cold caches on both sides (no deps/, no _build, empty mix
 * home); examples/hello for bookworm x86_64; a new commit per run so the store never answers.
 * The two sides alternate which goes first.
 *
 *   npx tsx bench/build-e2e.ts [--runs 5]
 *
 * Needs the local services (`npx xamal farm services up`). Prints markdown table rows.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { imageForTarget } from '../builder/apply.ts';
import { builderConfig } from '../builder/config.ts';
import { dockerEngine, type ContainerSpec } from '../builder/docker.ts';
import { ensurePinnedImage } from '../builder/images/ensure.ts';
import { hostArch } from '../builder/images/context.ts';
import { DEFAULT_LIMITS, planBuild } from '../builder/plan.ts';
import { LocalExecutor, runChecked, type Command } from '../core/index.ts';
import { buildJobId, BuildJobSchema } from '../core/contracts/build-job.ts';
import { readLock } from '../images/lock.ts';
import { BUILD_USER } from '../images/recipes/debian.ts';
import { commitFiles, git, helloRepo } from '../testkit/example-repo.ts';
import { cells, dockerCli, prepare, ratio, say, secs, startBenchFarm, TUPLES } from './farm.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);

/** Pure: `docker run` arguments that create exactly the container a ContainerSpec describes. */
export function dockerRunArgs(spec: ContainerSpec): string[] {
  return [
    'run', '--rm', '--network', spec.networkMode,
    ...(spec.user ? ['--user', spec.user] : []),
    ...Object.entries(spec.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    ...(spec.workdir ? ['-w', spec.workdir] : []),
    ...(spec.binds ?? []).flatMap((b) => ['-v', b]),
    ...(spec.readOnly ? ['--read-only'] : []),
    ...Object.entries(spec.tmpfs ?? {}).flatMap(([k, v]) => ['--tmpfs', `${k}:${v}`]),
    ...(spec.init ? ['--init'] : []),
    ...(spec.memoryBytes ? ['--memory', String(spec.memoryBytes)] : []),
    ...(spec.nanoCpus ? ['--cpus', String(spec.nanoCpus / 1e9)] : []),
    ...(spec.capDrop ?? []).flatMap((c) => ['--cap-drop', c]),
    ...(spec.securityOpt ?? []).flatMap((o) => ['--security-opt', o]),
    ...Object.entries(spec.labels ?? {}).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
    spec.image,
    ...spec.cmd,
  ];
}

await prepare(['bookworm']);
const cfg = builderConfig();
const exec = new LocalExecutor();
const tmp = await mkdtemp(join(tmpdir(), 'xamal-bench-p1-'));
const farm = await startBenchFarm(join(tmp, 'farm'), 1);
const run = async (cmd: Command) => (await runChecked(exec, cmd)).stdout;

/** The raw build of `commit`: a fresh checkout (untimed), then the plan's deps and compile containers (timed). */
async function rawBuild(url: string, commit: string, dir: string): Promise<number> {
  const job = BuildJobSchema.parse({ app: 'hello', source: { kind: 'git', url, commit }, target: TUPLES.bookworm });
  const locks = [await readLock(cfg.localLockPath)];
  const image = await imageForTarget(locks, job);
  const pinned = (await ensurePinnedImage(dockerEngine(farm.dockerSocket), locks, image.ref, hostArch(), image.digest)).pinned;
  const plan = planBuild({
    job,
    jobId: `raw-${buildJobId(job)}`,
    image: { ref: image.ref, pinned, digest: image.digest },
    source: { lockHash: '', configHash: '', mixExs: '', hasDeps: false, linkedDirs: [] },
    cache: { deps: false, build: false },
    workDir: dir,
    cacheDir: join(dir, 'unused-cache'),
    limits: DEFAULT_LIMITS,
    depsNetwork: 'none',
  });
  git(tmp, 'clone', '--quiet', url, plan.dirs.src);
  git(plan.dirs.src, '-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--detach', commit);
  for (const d of [plan.dirs.out, plan.dirs.home]) await mkdir(d, { recursive: true });
  await run({ argv: ['chown', '-R', `${BUILD_USER.uid}:${BUILD_USER.gid}`, dir], label: 'chown' });
  const t0 = performance.now();
  await run(dockerCli(farm.dockerSocket, dockerRunArgs(plan.containers.deps)));
  await run(dockerCli(farm.dockerSocket, dockerRunArgs(plan.containers.compile)));
  const ms = performance.now() - t0;
  await rm(dir, { recursive: true, force: true });
  return ms;
}

const api: number[] = [];
const raw: number[] = [];
const ratios: number[] = [];
try {
  const repoDir = join(tmp, 'repo');
  const { url } = await helloRepo(repoDir);
  for (let i = 0; i < runs; i++) {
    const commit = await commitFiles(repoDir, `bench run ${i}`, { BENCH_RUN: `${i}\n` });
    await farm.clearCache();
    let a = 0;
    let r = 0;
    if (i % 2 === 0) {
      a = await farm.build('hello', { url, commit }, [TUPLES.bookworm]);
      r = await rawBuild(url, commit, join(tmp, `raw-${i}`));
    } else {
      r = await rawBuild(url, commit, join(tmp, `raw-${i}`));
      a = await farm.build('hello', { url, commit }, [TUPLES.bookworm]);
    }
    const manifest = (await farm.call('GET', `/v1/artifacts/hello/${commit}/${TUPLES.bookworm}`)).body as { timings: Record<string, number> };
    api.push(a);
    raw.push(r);
    ratios.push(a / r);
    say(`run ${i + 1}: API ${Math.round(a)} ms, raw ${Math.round(r)} ms, ratio ${(a / r).toFixed(3)}; worker steps ${JSON.stringify(manifest.timings)}`);
  }
} finally {
  await farm.close();
  await rm(tmp, { recursive: true, force: true });
}
console.log(`| end-to-end through the API (POST → manifest visible) | ${cells(api, secs)} |`);
console.log(`| raw \`docker run\` deps.get + mix release, same image digest and specs | ${cells(raw, secs)} |`);
console.log(`| **ratio** (per run) | ${cells(ratios, ratio)} |`);
process.exit(0);
