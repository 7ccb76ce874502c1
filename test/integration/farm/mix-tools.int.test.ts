import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBuild, type BuildDeps } from '../../../builder/apply.ts';
import { hostArch } from '../../../builder/images/context.ts';
import { HEX_BUILDS_URL, type MixToolsSettings } from '../../../builder/mix-tools.ts';
import { DEFAULT_LIMITS } from '../../../builder/plan.ts';
import { formatTarget, parseTargetOrThrow } from '../../../core/index.ts';
import { localStore } from '../../../store/local.ts';
import { depsAppRepo, hexStandinArchive } from '../../../testkit/builder/deps-app.ts';
import { builtInImage, evalRelease, unpackStoredRelease, workerBase, type WorkerBase } from '../../../testkit/builder/worker-base.ts';

/**
 * Issue 20 items 1 and 8 against the real engine: an app whose dependency declares a Hex package and
 * another that compiles a C NIF with make and cc (testkit/builder/deps-app.ts), built in the bookworm
 * builder. Hex comes from XAMAL_HEX_ARCHIVE — here a Mix archive built in this test, standing in for
 * Hex's own (which is never committed nor downloadable here).
 */
describe('Hex, build tools and assets for apps with dependencies (issue 20)', () => {
  const arch = hostArch();
  const target = parseTargetOrThrow(`linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`);
  let tmp: string;
  let base: WorkerBase;
  let archive: string;
  let repo: { url: string; commit: string };

  const deps = (name: string, mixTools: MixToolsSettings): BuildDeps => ({ ...base, store: localStore(join(tmp, 'store', name)), limits: DEFAULT_LIMITS, mixTools });
  const build = async (d: BuildDeps) => {
    const lines: string[] = [];
    const job = { app: 'deps_app', source: { kind: 'git' as const, ...repo }, target, mixEnv: 'prod' };
    const outcome = await runBuild(d, job, { phase: () => {}, log: (l) => void lines.push(l) }).catch((e: Error) => e);
    return { outcome, log: lines.join('\n') };
  };

  beforeAll(async () => {
    ({ tmp, base } = await workerBase('mix-tools-int'));
    archive = await hexStandinArchive(join(tmp, 'hex'));
    repo = await depsAppRepo(join(tmp, 'repos', 'deps-app'));
  }, 1_800_000);

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('builds it with Hex from XAMAL_HEX_ARCHIVE, the NIF compiled by the image\'s make and cc and its assets built; the release answers through both', { timeout: 600_000 }, async () => {
    const d = deps('archive', { hex: { kind: 'file', path: archive }, rebar3: { kind: 'builds', url: HEX_BUILDS_URL }, hexOffline: false });
    const { outcome, log } = await build(d);
    if (outcome instanceof Error) throw outcome;
    expect(log).toMatch(/==> mix tools: Hex from .*xamal_hex_standin-0\.1\.0\.ez \(XAMAL_HEX_ARCHIVE\)/);
    // The deps step has no network here, so rebar3 from Hex's builds cannot come: said, and not needed by this app.
    expect(log).toMatch(/==> mix tools: rebar3 could not be installed from `mix local.rebar` from https:\/\/builds\.hex\.pm/);
    expect(log).toMatch(/cc -O2 -fPIC -shared/);
    expect(log).toMatch(/==> assets: mix assets.deploy \(network none\)/);

    const rel = await unpackStoredRelease(d.store, outcome.manifest.tarball.key, join(tmp, 'release'));
    const cnif = (await readdir(join(rel, 'lib'))).find((n) => n.startsWith('cnif-'));
    expect(existsSync(join(rel, 'lib', cnif!, 'priv', 'cnif.so'))).toBe(true);
    // The assets step's output is in the release.
    const manifest = JSON.parse(await readFile(join(rel, 'lib', 'deps_app-0.3.0', 'priv', 'static', 'cache_manifest.json'), 'utf8')) as Record<string, string>;
    expect(await readFile(join(rel, 'lib', 'deps_app-0.3.0', 'priv', 'static', manifest['app.css']!), 'utf8')).toBe('body { margin: 0; } ');
    const answer = await evalRelease(base.docker, await builtInImage(base.docker, outcome.manifest.image), rel, 'deps_app', 'IO.inspect(DepsApp.answer())');
    expect(answer.stdout.trim()).toBe('{:hi, 42}');
  });

  it('in a builder without cc, fails naming the dependency and the missing tool', { timeout: 600_000 }, async () => {
    // This suite's bookworm builder with its C compiler removed, committed and pushed to the local registry.
    const [lock] = await base.locks();
    const entry = lock!.images.find((i) => i.flavour === 'builder' && i.tuple === formatTarget(target))!;
    const pinned = `${entry.ref.slice(0, entry.ref.lastIndexOf(':'))}@${entry.platforms[0]!.digest ?? entry.digest}`;
    const { id } = await base.docker.startDetached({ image: pinned, cmd: ['sh', '-c', 'rm -f /usr/bin/cc /usr/bin/gcc /usr/bin/gcc-* /usr/bin/*-linux-gnu-gcc* && sleep infinity'], user: '0:0', networkMode: 'none' });
    const repo = `${entry.ref.split('/')[0]}/xamal-test/no-cc`;
    const tag = `bookworm-${Date.now()}`;
    try {
      // `rm` runs first and takes milliseconds; the container then only sleeps.
      await new Promise((r) => setTimeout(r, 1500));
      await base.docker.commit(id, repo, tag);
    } finally {
      await base.docker.removeContainer(id);
    }
    const digest = await base.docker.push(repo, tag);
    const noCc = { ...lock!, images: [{ ...entry, ref: `${repo}:${tag}`, digest, platforms: [{ arch: target.arch, digest }] }] };
    const d: BuildDeps = { ...deps('no-cc', { hex: { kind: 'file', path: archive }, rebar3: { kind: 'builds', url: HEX_BUILDS_URL }, hexOffline: false }), locks: async () => [noCc] };
    const { outcome } = await build(d);
    // The derived image is this test's alone: removed from the engine (its tiny layer stays in the local registry).
    for (const ref of [`${repo}:${tag}`, `${repo}@${digest}`]) await base.docker.removeImage(ref).catch(() => false);
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message.split('\n')[0]).toBe(
      "compile failed with exit code 1: dependency cnif needs cc (a C compiler), which the builder image does not have; build in an image with build tools (the farm's Debian builders have gcc and make)",
    );
  });

  it('with no Hex to be had, fails naming the dependency, Hex, why there is none and the setting to use', { timeout: 600_000 }, async () => {
    const d = deps('none', { hex: { kind: 'builds', url: HEX_BUILDS_URL }, rebar3: { kind: 'builds', url: HEX_BUILDS_URL }, hexOffline: false });
    const { outcome } = await build(d);
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message.split('\n')[0]).toMatch(
      // Mix answers its own "Shall I install Hex?" with no (no terminal), so the first step loading the dependencies fails.
      /^(?:deps|compile) failed with exit code 1: dependency leaf needs Hex \(a dependency declares Hex packages\), which this build does not have: Hex could not be installed from `mix local.hex` from https:\/\/builds\.hex\.pm: .*(?:failed_connect|nxdomain|could not).*; set XAMAL_HEX_ARCHIVE to a Hex archive \(\.ez\) on the worker, or HEX_BUILDS_URL \/ HEX_MIRROR/,
    );
  });
});
