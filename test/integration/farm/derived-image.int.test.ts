import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBuild, type BuildDeps } from '../../../builder/apply.ts';
import { DERIVED_REPO } from '../../../builder/derived-image.ts';
import { hostArch } from '../../../builder/images/context.ts';
import { DEFAULT_LIMITS } from '../../../builder/plan.ts';
import { parseTargetOrThrow } from '../../../core/index.ts';
import { localStore } from '../../../store/local.ts';
import { helloRepo } from '../../../testkit/example-repo.ts';
import { evalRelease, unpackStoredRelease, workerBase, type WorkerBase } from '../../../testkit/builder/worker-base.ts';

/**
 * Issue 20 item 2, extra system packages: a Debian package made here (a command printing a stamp)
 * in a flat repository on disk (XAMAL_APT_MIRROR_DIR, as an offline farm has; in production Debian's
 * archive), installed into a builder derived from the bookworm one; the app runs the command at
 * compile time, so its release carries the stamp only if the build ran in the derived builder.
 */

const PACKAGE = 'xamal-test-stamp';

/** A flat apt repository holding one package whose command prints `stamp`. */
async function stampRepository(dir: string, stamp: string): Promise<string> {
  const root = join(dir, 'pkg');
  await mkdir(join(root, 'DEBIAN'), { recursive: true });
  await mkdir(join(root, 'usr', 'bin'), { recursive: true });
  await writeFile(join(root, 'DEBIAN', 'control'), `Package: ${PACKAGE}\nVersion: 1.0\nArchitecture: all\nMaintainer: xamal tests <tests@xamal.invalid>\nDescription: prints a stamp (xamal's derived-image test)\n`);
  await writeFile(join(root, 'usr', 'bin', PACKAGE), `#!/bin/sh\necho ${stamp}\n`);
  await chmod(join(root, 'usr', 'bin', PACKAGE), 0o755);
  const repo = join(dir, 'repo');
  await mkdir(repo, { recursive: true });
  const deb = `${PACKAGE}_1.0_all.deb`;
  execFileSync('dpkg-deb', ['--build', '--root-owner-group', root, join(repo, deb)], { stdio: 'ignore' });
  const bytes = await readFile(join(repo, deb));
  const control = (await readFile(join(root, 'DEBIAN', 'control'), 'utf8')).trimEnd();
  await writeFile(join(repo, 'Packages'), `${control}\nFilename: ./${deb}\nSize: ${(await stat(join(repo, deb))).size}\nSHA256: ${createHash('sha256').update(bytes).digest('hex')}\n\n`);
  return repo;
}

describe('extra Debian packages for a build: a derived builder (issue 20)', () => {
  const arch = hostArch();
  const target = parseTargetOrThrow(`linux-${arch}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`);
  const stamp = `stamp-${randomBytes(6).toString('hex')}`;
  let tmp: string;
  let base: WorkerBase;
  let d: BuildDeps;
  const derived: string[] = [];

  const build = async (name: string, packages: string[]) => {
    const lines: string[] = [];
    // Each build its own commit (an artifact already stored would answer without building).
    const stampModule = `defmodule Hello.Stamp do\n  @stamp elem(System.cmd("${PACKAGE}", []), 0) |> String.trim()\n  def stamp, do: @stamp\nend\n`;
    const src = await helloRepo(join(tmp, 'repos', name), { 'lib/hello/stamp.ex': stampModule, [`lib/hello/build_${name}.ex`]: `defmodule Hello.Build${name.toUpperCase()} do\nend\n` });
    const job = { app: 'hello', source: { kind: 'git' as const, ...src }, target, mixEnv: 'prod', packages };
    const outcome = await runBuild(d, job, { phase: () => {}, log: (l) => void lines.push(l) }).catch((e: Error) => e);
    return { outcome, log: lines.join('\n') };
  };

  beforeAll(async () => {
    ({ tmp, base } = await workerBase('derived-image-int'));
    d = { ...base, store: localStore(join(tmp, 'store')), limits: DEFAULT_LIMITS, aptMirrorDir: await stampRepository(join(tmp, 'apt'), stamp) };
  }, 1_800_000);

  afterAll(async () => {
    // The derived builders are this test's alone (its repository's index is in their tag).
    for (const id of derived) await base?.docker.removeImage(id).catch(() => false);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('installs the package once into a builder derived from the target\'s, builds in it (the release carries what the command printed), and reuses it for the next build', { timeout: 600_000 }, async () => {
    const first = await build('a', [PACKAGE]);
    if (first.outcome instanceof Error) throw new Error(`${first.outcome.message}\n${first.log}`);
    expect(first.log).toMatch(new RegExp(`image: installing ${PACKAGE} into the builder \\(${DERIVED_REPO}:[0-9a-f]{32}\\)`));
    const image = first.outcome.manifest.image.ref;
    derived.push(image);

    const rel = await unpackStoredRelease(d.store, first.outcome.manifest.tarball.key, join(tmp, 'release'));
    const answer = await evalRelease(base.docker, image, rel, 'hello', 'IO.puts(Hello.Stamp.stamp())');
    expect(answer.stdout.trim(), answer.stderr).toBe(stamp);

    const second = await build('b', [PACKAGE]);
    if (second.outcome instanceof Error) throw new Error(`${second.outcome.message}\n${second.log}`);
    expect(second.log).toMatch(new RegExp(`image: ${PACKAGE} installed before in ${DERIVED_REPO}:`));
    expect(second.log).not.toMatch(/image: installing/);
    expect(second.outcome.manifest.image.ref).toBe(image);
  });

  it('a package the repository does not have fails the build naming it and where it was looked for', { timeout: 600_000 }, async () => {
    const { outcome } = await build('c', ['xamal-no-such-package']);
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message).toMatch(/^packages: could not install xamal-no-such-package from the repository in .* \(XAMAL_APT_MIRROR_DIR\): apt exited 100/);
  });
});
