import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostArch } from '../../../builder/images/context.ts';
import { DEFAULT_LIMITS } from '../../../builder/plan.ts';
import { startBuildWorkers, type BuildResult, type RunningWorkers } from '../../../builder/worker.ts';
import type { BuildJobInput } from '../../../core/contracts/build-job.ts';
import { buildQueue, buildQueueEvents, enqueueBuild, type QueueSettings } from '../../../queue/index.ts';
import { s3Store } from '../../../store/s3.ts';
import { commitFiles, helloMixExsWithReleaseStep, helloRepo } from '../../../testkit/example-repo.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';
import { workerBase, type WorkerBase } from '../../../testkit/builder/worker-base.ts';

/**
 * Issue 18 item 4 against the real engine: two apps built from examples/hello with the same mix.lock.
 * App `hello` is hostile: its mix.exs writes into deps/ whenever Mix evaluates it (deps step
 * included), and a release step appends bytes to every .beam in _build and drops a file there — so
 * its deps/ and _build caches carry the tampering. App `twin` (the same project, release `hello`)
 * is built before and after: it shares no cache entry or git mirror with `hello`, and its second
 * build (another commit, same files for the release) is byte-identical to its first.
 */

const MARKER = `tampered-${process.pid}`;
const LOCK = '%{}\n';

/** hello's mix.exs, tampering with deps/ at every evaluation and with _build after the release is assembled. */
const HOSTILE_MIX = helloMixExsWithReleaseStep(
  `build = Mix.Project.build_path()
    for f <- Path.wildcard(Path.join(build, "lib/*/ebin/*.beam")), do: File.write!(f, ${JSON.stringify(MARKER)}, [:append])
    File.write!(Path.join(build, "lib/hello/ebin/evil.txt"), ${JSON.stringify(MARKER)})`,
  `File.mkdir_p!("deps/evil")
File.write!("deps/evil/mix.exs", ${JSON.stringify(MARKER)})`,
);

/** sha256 of every regular file under `dir`, by relative path. */
function fileHashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = execFileSync('find', [dir, '-type', 'f'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const f of lines) out[relative(dir, f)] = createHash('sha256').update(readFileSync(f)).digest('hex');
  return out;
}

/** Every file under `dir` whose bytes contain `text`. */
const filesContaining = (dir: string, text: string): string[] => {
  try {
    return execFileSync('grep', ['-rlF', text, dir], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

describe('per-app build caches on a real build (issue 18)', () => {
  const arch = hostArch();
  const tuple = `linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`;
  let tmp: string;
  let base: WorkerBase;
  let workers: RunningWorkers | undefined;

  beforeAll(async () => {
    ({ tmp, base } = await workerBase('app-caches-int'));
  }, 1_800_000);

  afterAll(async () => {
    await workers?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('shares no cache entry between two apps with identical lockfiles, and the tampering app leaves the other\'s next build byte-identical', { timeout: 1_200_000 }, async () => {
    const settings: QueueSettings = { redisUrl: services().redisUrl, prefix: testPrefix('app-caches-q') };
    const store = s3Store({ ...services().s3, prefix: `${testPrefix('app-caches-s3')}/` });
    workers = await startBuildWorkers(settings, [arch], { ...base, store, limits: DEFAULT_LIMITS }, 1);
    const queue = buildQueue(settings, arch);
    const events = buildQueueEvents(settings, arch);
    const build = async (input: Omit<BuildJobInput, 'target'>): Promise<BuildResult> => {
      const { id } = await enqueueBuild(queue, { ...input, target: tuple });
      return (await queue.getJob(id))!.waitUntilFinished(events, 600_000);
    };
    /** The release files of a build, unpacked from its stored tarball. */
    const releaseFiles = async (r: BuildResult, name: string) => {
      const manifest = JSON.parse((await store.get(r.manifestKey))!.toString('utf8')) as { tarball: { key: string } };
      const dir = join(tmp, 'unpacked', name);
      await mkdir(dir, { recursive: true });
      await writeFile(`${dir}.tar.gz`, (await store.get(manifest.tarball.key))!);
      execFileSync('tar', ['-xzf', `${dir}.tar.gz`, '-C', dir]);
      return dir;
    };
    try {
      await events.waitUntilReady();
      const twinDir = join(tmp, 'repos', 'twin');
      const twin = await helloRepo(twinDir, { 'mix.lock': LOCK });
      const hostile = await helloRepo(join(tmp, 'repos', 'hostile'), { 'mix.lock': LOCK, 'mix.exs': HOSTILE_MIX });

      const first = await releaseFiles(await build({ app: 'twin', release: 'hello', source: { kind: 'git', ...twin } }), 'twin-1');
      await build({ app: 'hello', source: { kind: 'git', ...hostile } });
      const again = await commitFiles(twinDir, 'readme only', { 'README.md': 'another commit, the same release\n' });
      const second = await releaseFiles(await build({ app: 'twin', release: 'hello', source: { kind: 'git', url: twin.url, commit: again } }), 'twin-2');

      // The attack happened: hello's own caches carry it.
      const cache = join(tmp, 'cache');
      const tamperedEntries = filesContaining(join(cache, 'mix'), MARKER).map((f) => relative(join(cache, 'mix'), f).split('/').slice(0, 2).join('/'));
      expect(tamperedEntries.length).toBeGreaterThan(0);
      expect(tamperedEntries.every((e) => e.startsWith('hello/'))).toBe(true);
      expect(tamperedEntries.some((e) => e.startsWith('hello/deps-'))).toBe(true);
      expect(tamperedEntries.some((e) => e.startsWith('hello/build-'))).toBe(true);

      // No entry (deps, _build, deps marker, git mirror) is shared: each app's are its own.
      const entries = async (kind: string, app: string) => (await readdir(join(cache, kind, app)).catch(() => [] as string[])).filter((n) => !n.endsWith('.lock'));
      const helloKeys = await entries('mix', 'hello');
      const twinKeys = await entries('mix', 'twin');
      expect(twinKeys.filter((k) => helloKeys.includes(k))).toEqual([]);
      expect(twinKeys.some((k) => k.startsWith('build-'))).toBe(true);
      expect((await entries('git', 'hello')).length).toBe(1);
      expect((await entries('git', 'twin')).length).toBe(1);
      expect(filesContaining(join(cache, 'mix', 'twin'), MARKER)).toEqual([]);
      expect(filesContaining(join(cache, 'git', 'twin'), MARKER)).toEqual([]);

      // twin's next build after hello's: byte-identical release, no byte of the tampering. Only
      // releases/COOKIE differs by design: mix release makes a random one per release directory.
      const { 'releases/COOKIE': _c1, ...before } = fileHashes(first);
      const { 'releases/COOKIE': _c2, ...after } = fileHashes(second);
      const differing = Object.keys({ ...before, ...after }).filter((k) => before[k] !== after[k]);
      expect(differing).toEqual([]);
      expect(filesContaining(second, MARKER)).toEqual([]);
      console.log(
        `reliability: per-app caches → ${helloKeys.length} + ${twinKeys.length} cache entries, ${twinKeys.filter((k) => helloKeys.includes(k)).length} shared; ` +
          `hello's ${tamperedEntries.length} tampered files all in its own entries; twin's next build ${differing.length}/${Object.keys(after).length} files differ`,
      );
    } finally {
      await events.close();
      await queue.close();
    }
  });
});
