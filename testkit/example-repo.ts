import { execFileSync } from 'node:child_process';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { childEnv, PROJECT_ROOT, servicesConfig } from '../localservices/config.ts';
import { localStore } from '../store/local.ts';
import type { ObjectStore } from '../store/store.ts';
import type { GitUrlPolicy } from '../core/contracts/git-url.ts';

/**
 * Git repositories holding the example apps, as the farm's sources in tests and benchmarks. HOME is
 * the repo itself so no user git config applies; author, committer and their dates are fixed, so the
 * same files give the same commit in every run (and an artifact store kept across runs, like
 * `testArtifactStore`, already holds its builds).
 */
const FIXED_DATE = '2026-01-01T00:00:00Z';

/**
 * The git URL policy a farm needs to build these repositories (their URLs are file://): what
 * XAMAL_GIT_ALLOW_LOCAL=1 gives `xamal farm up`. The test kit's farms (testkit/farm.ts) use it.
 */
export const LOCAL_SOURCES: GitUrlPolicy = { allowLocal: true, allowHttp: false };

export const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: { PATH: childEnv({}).PATH, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t', GIT_AUTHOR_DATE: FIXED_DATE, GIT_COMMITTER_DATE: FIXED_DATE, HOME: cwd },
  }).trim();

/** A git repo holding examples/<name> (plus `extra` files) at `dir`; returns its file:// URL and commit. */
export async function exampleRepo(name: string, dir: string, extra: Record<string, string> = {}): Promise<{ url: string; commit: string }> {
  await cp(join(PROJECT_ROOT, 'examples', name), dir, { recursive: true, filter: (s) => !/\/(_build|deps)(\/|$)/.test(s) });
  for (const [path, text] of Object.entries(extra)) await writeFile(join(dir, path), text);
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', name);
  return { url: `file://${dir}`, commit: git(dir, 'rev-parse', 'HEAD') };
}

/** A new commit in the repo at `dir` with `files` written (paths relative to the repo); returns its commit. */
export async function commitFiles(dir: string, message: string, files: Record<string, string>): Promise<string> {
  for (const [path, text] of Object.entries(files)) await writeFile(join(dir, path), text);
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', message);
  return git(dir, 'rev-parse', 'HEAD');
}

/** A repository at `work` with `files` committed on main, cloned bare to `bare` (a git host's copy); returns the commit. */
export async function bareRepoWith(files: Record<string, string>, work: string, bare: string): Promise<string> {
  await mkdir(work, { recursive: true });
  git(work, 'init', '-q', '-b', 'main');
  const commit = await commitFiles(work, 'one', files);
  await mkdir(dirname(bare), { recursive: true });
  git(dirname(bare), 'clone', '-q', '--bare', work, bare);
  return commit;
}

/** A git repo holding examples/hello (plus `extra` files) at `dir`; returns its file:// URL and commit. */
export function helloRepo(dir: string, extra: Record<string, string> = {}): Promise<{ url: string; commit: string }> {
  return exampleRepo('hello', dir, extra);
}

/** A git repo holding examples/crypto-hello (an app whose release needs the host's libcrypto). */
export function cryptoHelloRepo(dir: string): Promise<{ url: string; commit: string }> {
  return exampleRepo('crypto-hello', dir);
}

/**
 * An artifact store kept across runs (under the cache directory), for tests whose subject is not the
 * build itself (deploys, the target matrix): with fixed commits, a warm run finds every artifact
 * already built and the farm skips the build (its own idempotency: same app, commit, target, MIX_ENV
 * and release). Builds are proven fresh in every run by the build-worker tests, which use stores of
 * their own.
 */
export function testArtifactStore(name: string): ObjectStore {
  return localStore(join(servicesConfig().cacheDir, 'test-artifacts', name));
}

/**
 * examples/hello's mix.exs with a release step run after `:assemble`: `step` is Elixir with `release`
 * bound (it must not rebind it); `prelude` runs whenever Mix evaluates the file.
 */
export function helloMixExsWithReleaseStep(step: string, prelude = ''): string {
  return `${prelude}
defmodule Hello.MixProject do
  use Mix.Project

  def project do
    [
      app: :hello,
      version: "0.1.0",
      elixir: "~> 1.10",
      start_permanent: Mix.env() == :prod,
      deps: [],
      releases: [hello: [include_erts: true, include_executables_for: [:unix], steps: [:assemble, &__MODULE__.after_assemble/1]]]
    ]
  end

  def application, do: [extra_applications: [:logger], mod: {Hello.Application, []}]

  def after_assemble(release) do
    ${step}
    release
  end
end
`;
}
