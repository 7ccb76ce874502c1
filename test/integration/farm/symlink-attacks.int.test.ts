import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostArch } from '../../../builder/images/context.ts';
import { DEFAULT_LIMITS } from '../../../builder/plan.ts';
import { startBuildWorkers, type BuildResult, type RunningWorkers } from '../../../builder/worker.ts';
import { buildQueue, buildQueueEvents, enqueueBuild, type QueueSettings } from '../../../queue/index.ts';
import { s3Store } from '../../../store/s3.ts';
import { commitFiles, helloMixExsWithReleaseStep, helloRepo } from '../../../testkit/example-repo.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';
import { workerBase, type WorkerBase } from '../../../testkit/builder/worker-base.ts';

/**
 * Issue 18 item 5 against the real engine, on examples/hello: a release step in mix.exs (it runs in
 * the compile container, as uid 1000, after `:assemble`) leaves a hostile release — start_erl.data a
 * link to a canary on the worker, out/hello a link to `/`, a setuid file — and a committed `deps`
 * link. Each is refused naming the path (the setuid bit is dropped instead); the canary is neither
 * read (its text in no job error, build log or stored object) nor written.
 */

/** hello's mix.exs with a release step that does `action` (Elixir, `release` bound) after assembling. */
const HOSTILE_MIX = (action: string) => helloMixExsWithReleaseStep(action);

describe('symlink attacks on a real build (issue 18)', () => {
  const arch = hostArch();
  const tuple = `linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`;
  const canaryText = `canary-${process.pid}-${Date.now()}`;
  let tmp: string;
  let secret: string;
  let elsewhere: string;
  let base: WorkerBase;
  let workers: RunningWorkers | undefined;

  beforeAll(async () => {
    ({ tmp, base } = await workerBase('links-int'));
    secret = join(tmp, 'outside', 'secret');
    elsewhere = join(tmp, 'outside', 'elsewhere');
    await mkdir(elsewhere, { recursive: true });
    await writeFile(secret, `${canaryText}\n`);
  }, 1_800_000);

  afterAll(async () => {
    await workers?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('refuses each hostile release and source by name, strips setuid bits, and leaves the canary unread and unwritten', { timeout: 900_000 }, async () => {
    const settings: QueueSettings = { redisUrl: services().redisUrl, prefix: testPrefix('links-q') };
    const store = s3Store({ ...services().s3, prefix: `${testPrefix('links-s3')}/` });
    workers = await startBuildWorkers(settings, [arch], { ...base, store, limits: DEFAULT_LIMITS }, 1);
    const queue = buildQueue(settings, arch);
    const events = buildQueueEvents(settings, arch);
    const before = { text: await readFile(secret, 'utf8'), mtime: (await stat(secret)).mtimeMs, elsewhere: await readdir(elsewhere) };
    let n = 0;
    const repo = async (mixExs: string) => helloRepo(join(tmp, 'repos', `r${n++}`), { 'mix.exs': mixExs });
    const run = async (source: { url: string; commit: string }) => {
      const { id } = await enqueueBuild(queue, { app: 'hello', source: { kind: 'git', ...source }, target: tuple });
      const outcome = await (await queue.getJob(id))!.waitUntilFinished(events, 400_000).then((r: BuildResult) => ({ ok: r }), (e: Error) => ({ err: e.message }));
      // A failed build's log lines are the job's (Redis); a finished one's also in the store.
      const log = [...(await queue.getJobLogs(id)).logs, (await store.get(`logs/${id}.log`))?.toString('utf8') ?? ''].join('\n');
      return { id, outcome, log };
    };
    try {
      await events.waitUntilReady();
      const cases: [string, () => Promise<{ url: string; commit: string }>, string][] = [
        ['start_erl.data -> canary', () => repo(HOSTILE_MIX(`p = Path.join(release.path, "releases/start_erl.data"); File.rm!(p); File.ln_s!(${JSON.stringify(secret)}, p)`)), `release: releases/start_erl.data -> ${secret} points outside the release tree`],
        ['out/hello -> /', () => repo(HOSTILE_MIX('File.rm_rf!(release.path); File.ln_s!("/", release.path)')), 'release: out/hello is a link (-> /), not a directory in the work tree'],
        ['lib link -> /etc in the release', () => repo(HOSTILE_MIX('File.ln_s!("/etc", Path.join(release.path, "lib/etc"))')), 'release: lib/etc -> /etc points outside the release tree'],
        [
          'committed deps -> elsewhere',
          async () => {
            const r = await repo(await readFile(join(process.cwd(), 'examples', 'hello', 'mix.exs'), 'utf8'));
            const dir = r.url.replace('file://', '');
            await symlink(elsewhere, join(dir, 'deps'));
            return { url: r.url, commit: await commitFiles(dir, 'deps link', {}) };
          },
          `source: deps -> ${elsewhere} points outside the source tree`,
        ],
      ];
      const refused: string[] = [];
      for (const [name, make, first] of cases) {
        const { id, outcome, log } = await run(await make());
        expect('err' in outcome ? outcome.err.split('\n')[0] : 'built', name).toBe(first);
        expect(await store.list(`artifacts/hello/`), name).toEqual([]);
        expect(log.includes(canaryText), `${name}: canary in the build log`).toBe(false);
        expect(await base.docker.containersWithLabel('org.xamal.job', id), name).toEqual([]);
        refused.push(name);
      }

      // A setuid file and a setgid directory in the release: built, but the tarball carries no s bits.
      const suid = await run(await repo(HOSTILE_MIX('File.chmod!(Path.join(release.path, "bin/hello"), 0o4755); File.mkdir_p!(Path.join(release.path, "sgid")); File.chmod!(Path.join(release.path, "sgid"), 0o2775)')));
      expect('ok' in suid.outcome).toBe(true);
      const key = (await store.list('artifacts/hello/')).find((k) => k.endsWith('.tar.gz'))!;
      const tarball = join(tmp, 'suid.tar.gz');
      await writeFile(tarball, (await store.get(key))!);
      const listing = execFileSync('tar', ['--numeric-owner', '-tvzf', tarball], { encoding: 'utf8' }).trim().split('\n');
      expect(listing.filter((l) => /^\S*[sS]/.test(l))).toEqual([]);
      expect(listing.find((l) => l.endsWith(' ./bin/hello'))).toMatch(/^-rwxr-xr-x 0\/0 /);

      const everything = await Promise.all([...(await store.list('logs/')), ...(await store.list('artifacts/'))].map(async (k) => (await store.get(k))?.toString('latin1') ?? ''));
      expect(everything.some((t) => t.includes(canaryText))).toBe(false);
      expect({ text: await readFile(secret, 'utf8'), mtime: (await stat(secret)).mtimeMs, elsewhere: await readdir(elsewhere) }).toEqual(before);
      console.log(`reliability: symlink attacks on real builds → ${refused.length} cases refused, setuid bits stripped, canary untouched`);
      expect(refused).toHaveLength(cases.length);
    } finally {
      await events.close();
      await queue.close();
    }
  });
});
