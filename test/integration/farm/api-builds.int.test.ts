import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { buildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { builderConfig } from '../../../builder/config.ts';
import { dockerEngine } from '../../../builder/docker.ts';
import { hostArch } from '../../../builder/images/context.ts';
import { DEFAULT_LIMITS } from '../../../builder/plan.ts';
import { startBuildWorkers, type RunningWorkers } from '../../../builder/worker.ts';
import { LocalExecutor } from '../../../core/index.ts';
import { artifactGeneration, buildQueues, queueInspector, redisClient, type BuildQueues, type QueueInspector, type QueueSettings } from '../../../queue/index.ts';
import { s3Store } from '../../../store/s3.ts';
import { commitFiles, git, helloRepo, LOCAL_SOURCES } from '../../../testkit/example-repo.ts';
import { cliEntry, services, suiteImageLocks, testPrefix } from '../../../testkit/integration.ts';
import { testSigner } from '../../../testkit/signing.ts';

const TOKEN = 'api-test-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const TUPLES = {
  bullseye: 'linux-x86_64-gnu2.31-debian11-otp23.2.6-elixir1.10.3',
  bookworm: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0',
  trixie: 'linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3',
};

/** Reads an SSE stream; resolves with each data line and the time it arrived. */
function followLogs(url: string): Promise<{ lines: { at: number; text: string }[]; end: string }> {
  return new Promise((resolve, reject) => {
    const lines: { at: number; text: string }[] = [];
    request(url, { headers: AUTH, agent: false }, (res) => {
      let buf = '';
      let end = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (ev.startsWith('event: end')) end = ev;
          else if (ev.startsWith('data: ')) lines.push({ at: Date.now(), text: ev.slice(6) });
        }
      });
      res.on('end', () => resolve({ lines, end }));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

describe('the farm API with real Redis, workers and store', () => {
  const arch = hostArch();
  let app: FastifyInstance;
  let url: string;
  let queues: BuildQueues;
  let inspector: QueueInspector;
  let generation: ReturnType<typeof artifactGeneration>;
  let settings: QueueSettings;
  let workers: RunningWorkers;
  let tmp: string;
  let repoUrl: string;

  beforeAll(async () => {
    if (arch !== 'x86_64') throw new Error('this test expects an x86_64 machine');
    tmp = await mkdtemp(join(tmpdir(), 'xamal-api-'));
    repoUrl = (await helloRepo(join(tmp, 'repo'))).url;
    const ep = services();
    const cfg = builderConfig();
    settings = { redisUrl: ep.redisUrl, prefix: testPrefix('api') };
    const store = s3Store({ ...ep.s3, prefix: `${testPrefix('api-s3')}/` });
    const locks = () => suiteImageLocks(cfg.localLockPath);
    queues = buildQueues(settings, ['x86_64', 'aarch64']);
    inspector = queueInspector(settings, ['x86_64', 'aarch64']);
    generation = artifactGeneration(settings);
    workers = await startBuildWorkers(
      settings,
      ['x86_64'],
      { docker: dockerEngine(ep.dockerSocket), exec: new LocalExecutor(), store, locks, cacheDir: join(tmp, 'cache'), workRoot: join(tmp, 'work'), limits: DEFAULT_LIMITS, depsNetwork: 'none', hostArch: arch, signer: testSigner() },
      2,
    );
    app = await buildApp({
      token: TOKEN,
      logLevel: 'silent',
      services: { health: healthService({}), ...storeBackedServices(store, generation), builds: buildService({ queues, store, locks, exec: new LocalExecutor(), gitUrls: LOCAL_SOURCES }), queues: inspector },
    });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  afterAll(async () => {
    await app?.close();
    await workers?.close();
    await queues?.close();
    await inspector?.close();
    await generation?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('builds a 3-target matrix from a branch name; logs follow live over SSE; the same request again answers 200 from the store; another MIX_ENV of the commit is built and kept beside it', { timeout: 600_000 }, async () => {
    const body = { app: 'hello', source: { git: repoUrl, ref: 'main' }, targets: [TUPLES.bullseye, TUPLES.bookworm, { otp: '27' }] };
    const res = await app.inject({ method: 'POST', url: '/v1/builds', headers: AUTH, payload: body });
    expect(res.statusCode, res.body).toBe(202);
    const submitted = res.json() as { buildSet: string; builds: { id: string; tuple: string }[]; unresolved: unknown[] };
    expect(submitted.builds.map((b) => b.tuple).sort()).toEqual([TUPLES.bullseye, TUPLES.bookworm, TUPLES.trixie].sort());
    expect(submitted.unresolved).toEqual([]);

    const followed = followLogs(`${url}/v1/builds/${submitted.builds[0]!.id}/logs?follow=1`);
    const deadline = Date.now() + 540_000;
    const states = new Map<string, { state: string; finishedAt?: number }>();
    while (Date.now() < deadline) {
      for (const b of submitted.builds) {
        const st = (await app.inject({ url: `/v1/builds/${b.id}`, headers: AUTH })).json() as { state: string; finishedAt?: number };
        states.set(b.id, st);
      }
      if ([...states.values()].every((s) => s.state === 'completed' || s.state === 'failed')) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect([...states.values()].map((s) => s.state)).toEqual(['completed', 'completed', 'completed']);
    const stream = await followed;
    expect(stream.end).toContain('"state":"completed"');
    expect(stream.lines.length).toBeGreaterThan(3);
    expect(stream.lines[0]!.at).toBeLessThan(states.get(submitted.builds[0]!.id)!.finishedAt!);

    const set = (await app.inject({ url: `/v1/build-sets/${submitted.buildSet}`, headers: AUTH })).json() as { builds: { state: string }[] };
    expect(set.builds.map((b) => b.state)).toEqual(['completed', 'completed', 'completed']);
    for (const b of submitted.builds) {
      const log = await app.inject({ url: `/v1/builds/${b.id}/logs`, headers: AUTH });
      expect(log.body).toContain('==> compile');
    }
    const again = await app.inject({ method: 'POST', url: '/v1/builds', headers: AUTH, payload: body });
    expect(again.statusCode).toBe(200);
    expect((again.json() as { builds: { status: string }[] }).builds.every((b) => b.status === 'done')).toBe(true);
    // Another MIX_ENV of the same commit is another artifact, built and stored beside the prod one.
    const staging = await app.inject({ method: 'POST', url: '/v1/builds', headers: AUTH, payload: { ...body, targets: [TUPLES.bookworm], mixEnv: 'staging' } });
    expect(staging.statusCode, staging.body).toBe(202);
    const [sb] = (staging.json() as { builds: { id: string }[] }).builds;
    let st: { state: string; result?: { manifestKey: string } } = { state: 'waiting' };
    for (const until = Date.now() + 300_000; Date.now() < until && st.state !== 'completed' && st.state !== 'failed'; await new Promise((r) => setTimeout(r, 500))) {
      st = (await app.inject({ url: `/v1/builds/${sb!.id}`, headers: AUTH })).json() as typeof st;
    }
    expect(st.state).toBe('completed');
    expect(st.result!.manifestKey).toMatch(new RegExp(`/${TUPLES.bookworm}/staging/hello/manifest\\.json$`));
    const list = async (q: string) => ((await app.inject({ url: `/v1/artifacts?app=hello&version=latest${q}`, headers: AUTH })).json() as { artifacts: { mixEnv: string }[] }).artifacts;
    expect((await list('')).map((a) => a.mixEnv)).toEqual(['prod', 'prod', 'prod']);
    expect((await list('&mixEnv=staging')).map((a) => a.mixEnv)).toEqual(['staging']);
  });

  it('GET /v1/builds lists the newest builds across the platform queues, of an app and in a state', async () => {
    const list = async (q: string) => (await app.inject({ url: `/v1/builds${q}`, headers: AUTH })).json() as { builds: { id: string; app: string; tuple: string; state: string; createdAt: number }[] };
    const completed = (await list('?app=hello&state=completed')).builds;
    expect(completed.length).toBeGreaterThanOrEqual(4);
    expect(completed.every((b) => b.app === 'hello' && b.state === 'completed')).toBe(true);
    expect(new Set(completed.map((b) => b.tuple))).toEqual(new Set([TUPLES.bullseye, TUPLES.bookworm, TUPLES.trixie]));
    expect(completed.map((b) => b.createdAt)).toEqual([...completed.map((b) => b.createdAt)].sort((a, b) => b - a));
    expect((await list('?app=hello&state=completed&limit=2')).builds).toHaveLength(2);
    expect((await list('?app=nobody')).builds).toEqual([]);
    const bad = await app.inject({ url: '/v1/builds?state=sleeping', headers: AUTH });
    expect(bad.statusCode).toBe(400);
  });

  it('GET /metrics counts the finished builds (durations, cache misses) from the real queues, and the admin board lists them', async () => {
    const m = (await app.inject({ url: '/metrics', headers: AUTH })).body;
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"=,]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(m)?.[1] ?? 'NaN');
    expect(value('xamal_builds_finished_total{arch="x86_64",outcome="completed"}')).toBeGreaterThanOrEqual(3);
    expect(value('xamal_build_duration_seconds_count{arch="x86_64",outcome="completed"}')).toBeGreaterThanOrEqual(3);
    expect(value('xamal_build_duration_seconds_sum{arch="x86_64",outcome="completed"}')).toBeGreaterThan(1);
    expect(value('xamal_build_cache_total{arch="x86_64",result="miss"}')).toBeGreaterThanOrEqual(3);
    expect(value('xamal_queue_jobs{arch="x86_64",state="completed"}')).toBeGreaterThanOrEqual(3);
    expect(value('xamal_queue_workers{arch="x86_64"}')).toBeGreaterThanOrEqual(1);
    expect(value('xamal_http_requests_total{method="POST",route="/v1/builds",status="202"}')).toBeGreaterThanOrEqual(1);
    const board = await app.inject({ url: '/admin/queues/api/queues', headers: AUTH });
    expect(board.statusCode).toBe(200);
    const names = (board.json() as { queues: { name: string; counts: Record<string, number> }[] }).queues.map((q) => q.name);
    expect(names).toEqual(expect.arrayContaining(['xamal-builds-x86_64', 'xamal-builds-aarch64']));
  });

  it('two API processes on the same Redis share one token\'s POST budget; another token keeps its own', async () => {
    const { hashToken, parseTokenEntries } = await import('../../../api/auth.ts');
    const CI = 'rate-limit-ci-token-0123456789ab';
    const OTHER = 'rate-limit-other-token-012345678';
    const tokens = parseTokenEntries(`ci:build:${hashToken(CI).toString('hex')}; other:build:${hashToken(OTHER).toString('hex')}`);
    const redis = redisClient(settings);
    const mk = () => buildApp({ token: TOKEN, tokens, logLevel: 'silent', rateLimit: { max: 3, windowMs: 60_000, redis, prefix: settings.prefix! }, services: { health: healthService({}), ...storeBackedServices(s3Store({ ...services().s3, prefix: `${testPrefix('rl')}/` })) } });
    const [a, b] = [await mk(), await mk()];
    try {
      // POST /v1/sources starts work (counted); a JSON body is refused with 400 after it is counted.
      const post = (api: FastifyInstance, token: string) => api.inject({ method: 'POST', url: '/v1/sources', headers: { authorization: `Bearer ${token}` }, payload: {} });
      const codes = [await post(a, CI), await post(b, CI), await post(a, CI), await post(b, CI)].map((r) => r.statusCode);
      expect(codes).toEqual([400, 400, 400, 429]);
      const over = await post(a, CI);
      expect(over.statusCode).toBe(429);
      expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
      expect((over.json() as { message: string }).message).toMatch(/token ci is over the rate limit of 3 POST requests per minute/);
      expect((await post(b, OTHER)).statusCode).toBe(400);
      const keys = await redis.keys(`${settings.prefix}:ratelimit:*`);
      expect(keys.length).toBe(2);
      expect(keys.join(' ')).not.toContain(CI);
    } finally {
      await a.close();
      await b.close();
      await redis.quit();
    }
  });

  it('xamal build (the CI client) submits, follows and prints each tuple with a download URL that serves the sha256 it names; --source builds an unpushed commit of a repository with no remote', { timeout: 300_000 }, async () => {
    const { execFile } = await import('node:child_process');
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [cliEntry(), 'build', ...args], { env: { PATH: process.env.PATH, XAMAL_FARM_TOKEN: TOKEN } }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const ok = await run(['--farm', url, '--app', 'hello', '--git', repoUrl, '--ref', 'main', '--target', TUPLES.bookworm, '--target', 'otp=27', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    const out = JSON.parse(ok.stdout) as { builds: { tuple: string; state: string; download: string; sha256: string }[] };
    expect(out.builds.map((b) => b.tuple).sort()).toEqual([TUPLES.bookworm, TUPLES.trixie].sort());
    for (const b of out.builds) {
      // 302 to a short-lived link (here S3 presigned), which serves bytes with the sha256 named.
      const res = await fetch(b.download, { headers: AUTH, redirect: 'manual' });
      expect(res.status).toBe(302);
      expect(res.headers.get('x-xamal-sha256')).toBe(b.sha256);
      const blob = Buffer.from(await (await fetch(res.headers.get('location')!)).arrayBuffer());
      expect(createHash('sha256').update(blob).digest('hex')).toBe(b.sha256);
    }
    // --source: a commit the farm cannot clone (not pushed anywhere; the repository has no remote) is uploaded and built.
    const repoDir = repoUrl.replace(/^file:\/\//, '');
    const unpushed = await commitFiles(repoDir, 'not pushed', { 'lib/hello/unpushed.ex': 'defmodule Hello.Unpushed do\n  def x, do: 1\nend\n' });
    const up = await run(['--farm', url, '--app', 'hello', '--source', repoDir, '--target', TUPLES.bookworm, '--json']);
    expect(up.code, up.stderr).toBe(0);
    const [uploaded] = (JSON.parse(up.stdout) as { builds: { download: string; sha256: string }[] }).builds;
    expect(uploaded!.download).toContain(`/v1/artifacts/hello/${unpushed}/${TUPLES.bookworm}/download`);
    const manifest = (await app.inject({ url: `/v1/artifacts/hello/${unpushed}/${TUPLES.bookworm}`, headers: AUTH })).json() as { commit: string; tarball: { sha256: string } };
    expect(manifest).toMatchObject({ commit: unpushed, tarball: { sha256: uploaded!.sha256 } });
    // main back where the other tests expect it (the unpushed commit stays in the repository, as after a reset).
    git(repoDir, 'reset', '-q', '--hard', 'HEAD~1');

    const bad = await run(['--farm', url, '--app', 'hello', '--git', repoUrl, '--ref', 'main', '--target', 'linux-arm65-gnu2.36-debian12-otp25.2.3-elixir1.14.0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/targets\/0.*arch: expected one of/);
    const missing = await run(['--app', 'hello']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing --farm \(or XAMAL_FARM_URL\), --git or --source, --commit or --ref, --target/);
  });

  it('resolves the artifact that runs on a host: bullseye picks bullseye and says why trixie cannot; an aarch64 host gets 404 with reasons', async () => {
    const host = { os: 'linux', arch: 'x86_64', libc: 'gnu', libcVersion: '2.31', distro: 'debian', distroVersion: '11', libraries: [] };
    const commit = (await app.inject({ method: 'POST', url: '/v1/builds', headers: AUTH, payload: { app: 'hello', source: { git: repoUrl, ref: 'main' }, targets: [TUPLES.bookworm] } })).json() as {
      builds: { id: string }[];
    };
    expect(commit.builds).toHaveLength(1);
    const version = (await import('../../../testkit/example-repo.ts')).git(join(tmp, 'repo'), 'rev-parse', 'HEAD').slice(0, 7);
    const res = await app.inject({ method: 'POST', url: '/v1/resolve', headers: AUTH, payload: { app: 'hello', version, host } });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { artifact: { tuple: string }; others: { tuple: string; runs: boolean; reasons: { code: string; message: string }[] }[] };
    expect(body.artifact.tuple).toBe(TUPLES.bullseye);
    const trixie = body.others.find((o) => o.tuple === TUPLES.trixie)!;
    expect(trixie.runs).toBe(false);
    expect(trixie.reasons).toEqual([{ code: 'libc-floor', message: 'needs glibc >= 2.38, host has 2.31' }]);

    const arm = await app.inject({ method: 'POST', url: '/v1/resolve', headers: AUTH, payload: { app: 'hello', version, host: { ...host, arch: 'aarch64', libcVersion: '2.36', distroVersion: '12' } } });
    expect(arm.statusCode).toBe(404);
    expect((arm.json() as { message: string }).message).toMatch(/built for x86_64, host is aarch64/);
    const bad = await app.inject({ method: 'POST', url: '/v1/resolve', headers: AUTH, payload: { app: 'hello', version: 'zz', host: { ...host, arch: 'sparc' } } });
    expect(bad.statusCode).toBe(400);
    expect((bad.json() as { message: string }).message).toMatch(/version[\s\S]*host\/arch/);
  });

  it('reports a job for a platform no worker serves as waiting, with why, and cancels it', { timeout: 60_000 }, async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/builds', headers: AUTH, payload: { app: 'hello', source: { git: repoUrl, ref: 'main' }, targets: [{ arch: 'arm64' }] } });
    expect(res.statusCode, res.body).toBe(202);
    const [b] = (res.json() as { builds: { id: string; tuple: string }[] }).builds;
    expect(b!.tuple).toMatch(/^linux-aarch64-/);
    const st = (await app.inject({ url: `/v1/builds/${b!.id}`, headers: AUTH })).json() as { state: string; waitingReason: string };
    expect(st.state).toBe('waiting');
    expect(st.waitingReason).toMatch(/no worker serves aarch64/);
    const del = await app.inject({ method: 'DELETE', url: `/v1/builds/${b!.id}`, headers: AUTH });
    expect(del.json()).toEqual({ id: b!.id, outcome: 'removed' });
    expect((await app.inject({ url: `/v1/builds/${b!.id}`, headers: AUTH })).statusCode).toBe(404);
  });

  it('refuses bad requests with 400 naming each field, and reports targets no image serves', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/builds',
      headers: AUTH,
      payload: { app: '../etc', source: { git: repoUrl, commit: 'xyz' }, targets: ['linux-arm65-gnu2.36-debian12-otp25.2.3-elixir1.14.0', { otp: 'x' }], extra: 1 },
    });
    expect(bad.statusCode).toBe(400);
    const msg = (bad.json() as { message: string }).message;
    expect(msg).toMatch(/app/);
    expect(msg).toMatch(/targets\/0.*arch: expected one of/);
    expect(msg).toMatch(/targets\/1\/otp/);
    const none = await app.inject({ method: 'POST', url: '/v1/builds', headers: AUTH, payload: { app: 'hello', source: { git: repoUrl, ref: 'main' }, targets: [{ arch: 'riscv64' }] } });
    expect(none.statusCode).toBe(422);
    expect((none.json() as { message: string }).message).toMatch(/no target can be built/);
    const matrix = await app.inject({
      method: 'POST',
      url: '/v1/builds',
      headers: AUTH,
      payload: { app: 'hello', source: { git: repoUrl, ref: 'main' }, matrix: { otp: ['23', '25'], distro: ['debian11', 'debian12'], arch: ['x86_64'] } },
    });
    expect(matrix.statusCode, matrix.body).toBe(202);
    const m = matrix.json() as { builds: { tuple: string }[]; unresolved: { target: { otp: string; distro: string }; reasons: string[] }[] };
    expect(m.builds.map((b) => b.tuple).sort()).toEqual([TUPLES.bullseye, TUPLES.bookworm].sort());
    const why = Object.fromEntries(m.unresolved.map((u) => [`${u.target.otp}/${u.target.distro}`, u.reasons.join(' ')]));
    expect(why['23/debian12']).toMatch(/OpenSSL 3, which needs OTP >= 24.2/);
    expect(why['25/debian11']).toMatch(/otp wanted OTP 25, artifact has 23.2.6/);
    const badRef = await app.inject({ method: 'POST', url: '/v1/builds', headers: AUTH, payload: { app: 'hello', source: { git: repoUrl, ref: 'no-such-branch' }, targets: [TUPLES.bookworm] } });
    expect(badRef.statusCode).toBe(400);
    expect((badRef.json() as { message: string }).message).toMatch(/source\/ref/);
    expect((await app.inject({ method: 'POST', url: '/v1/builds', payload: {} })).statusCode).toBe(401);
  });
});
