import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { withFileLock } from '../localservices/fs-lock.ts';
import { runChecked, XamalError, type Command, type Executor } from '../core/index.ts';
import type { BuildSource } from '../core/contracts/build-job.ts';
import { GIT_REMOTE_ENV, gitUrlForDisplay, unreadableRemote } from '../core/contracts/git-url.ts';
import type { GitRemoteEnv } from '../core/contracts/git-credentials.ts';
import type { ObjectStore } from '../store/store.ts';
import { archiveProblems, tarGzEntries } from './archive-entries.ts';
import { refuseUnsafeTree } from './links.ts';
import { touchEntry } from './cache.ts';
import { asBuildUser, BUILD_USER } from './build-user.ts';

/**
 * A job's source, made ready in its work directory: a git commit through the worker's mirror of
 * the repository, or an archive uploaded through the API, from the store.
 */

/** Branches and tags, as a plain clone would have them (no pull-request or other refs). */
const REFSPECS = ['+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*'] as const;

/**
 * The worker's bare mirror of a repository: one per app and URL, under the build cache
 * (`<cache>/git/<app>/`), so no app's build ever reads objects another app's build fetched.
 */
export function mirrorPath(cacheDir: string, app: string, url: string): string {
  return join(cacheDir, 'git', app, `${createHash('sha256').update(url).digest('hex').slice(0, 32)}.git`);
}

/** Pure: the git commands of a source checkout from the mirror, as data. */
export const gitSteps = {
  init: (mirror: string): Command => ({ argv: ['git', 'init', '--quiet', '--bare', mirror], label: 'git init mirror' }),
  isRepo: (mirror: string): Command => ({ argv: ['git', `--git-dir=${mirror}`, 'rev-parse', '--is-bare-repository'], label: 'git mirror check' }),
  has: (mirror: string, commit: string): Command => ({ argv: ['git', `--git-dir=${mirror}`, 'cat-file', '-e', `${commit}^{commit}`], label: 'git has commit' }),
  // `remote`: the farm's credentials for the URL's host (core/contracts/git-credentials.ts), by environment only.
  fetchRefs: (mirror: string, url: string, remote: Record<string, string> = {}): Command => ({ argv: ['git', `--git-dir=${mirror}`, 'fetch', '--quiet', '--force', '--', url, ...REFSPECS], env: { ...GIT_REMOTE_ENV, ...remote }, label: 'git fetch', timeoutMs: 600_000 }),
  fetchCommit: (mirror: string, url: string, commit: string, remote: Record<string, string> = {}): Command => ({ argv: ['git', `--git-dir=${mirror}`, 'fetch', '--quiet', '--', url, commit], env: { ...GIT_REMOTE_ENV, ...remote }, label: 'git fetch commit', timeoutMs: 600_000 }),
  /**
   * The commit's files written into `dest` straight from the mirror (no clone, no .git in `dest`,
   * nothing written into the mirror: the index is a file of the job's, `index`).
   */
  checkout: (mirror: string, dest: string, index: string, commit: string): Command => ({ argv: ['git', `--git-dir=${mirror}`, `--work-tree=${dest}`, 'read-tree', '--reset', '-u', `${commit}^{commit}`], env: { GIT_INDEX_FILE: index }, label: 'git checkout from mirror', timeoutMs: 600_000 }),
  tree: (mirror: string, commit: string): Command => ({ argv: ['git', `--git-dir=${mirror}`, 'rev-parse', '--verify', `${commit}^{tree}`], label: 'git rev-parse tree' }),
};

/**
 * Fetches the branches and tags of `url` into the mirror. A remote git cannot read fails with one
 * answer whatever the cause (the job's error is shown to every read token: no port scanner); git's
 * own words travel as the error's cause, which the worker logs (builder/worker.ts).
 */
async function fetchRefs(exec: Executor, mirror: string, url: string, remote: Record<string, string>): Promise<void> {
  let detail: string;
  try {
    const r = await exec.run(gitSteps.fetchRefs(mirror, url, remote));
    if (r.code === 0) return;
    detail = `git fetch failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-5).join(' ')}`;
  } catch (err) {
    detail = (err as Error).message;
  }
  throw new XamalError('external', unreadableRemote(url), { cause: new Error(detail) });
}

/**
 * Checks `commit` of the repository at `url` out into `dest` (no .git left), through the worker's
 * bare mirror of it: the first build of a repository fetches its branches and tags once, later
 * builds fetch only what is new, and none when the mirror already has the commit. A commit on no
 * branch or tag is fetched by its SHA where the server allows it. One build at a time per mirror
 * (a file lock). Credentials never reach the mirror: URLs carry none (the job contract), and
 * fetches name the URL instead of storing a remote.
 */
export async function checkoutGitSource(exec: Executor, mirror: string, url: string, commit: string, dest: string, remote: Record<string, string> = {}): Promise<{ fetched: boolean; tree: string }> {
  await mkdir(dirname(mirror), { recursive: true });
  return withFileLock(`${mirror}.lock`, `git mirror of ${url}`, async () => {
    await touchEntry(mirror);
    const fresh = async () => {
      await rm(mirror, { recursive: true, force: true });
      await runChecked(exec, gitSteps.init(mirror));
    };
    const has = async () => (await exec.run(gitSteps.has(mirror, commit))).code === 0;
    // A mirror that is not a repository (e.g. a worker killed while making it) is made again; one that has the commit is one.
    const usable = existsSync(join(mirror, 'HEAD')) && ((await has()) || (await exec.run(gitSteps.isRepo(mirror))).stdout.trim() === 'true');
    if (!usable) await fresh();
    let fetched = false;
    if (!usable || !(await has())) {
      await fetchRefs(exec, mirror, url, remote);
      fetched = true;
      if (!(await has())) {
        const r = await exec.run(gitSteps.fetchCommit(mirror, url, commit, remote));
        if (r.code !== 0 || !(await has())) {
          throw new XamalError('build_failed', `commit ${commit} is on no branch or tag of ${gitUrlForDisplay(url)}, and the server does not serve it by SHA${r.code !== 0 ? ` (${r.stderr.trim().split('\n').at(-1)})` : ''}`);
        }
      }
    }
    await mkdir(dest, { recursive: true });
    const index = `${dest}.git-index`;
    try {
      await runChecked(exec, gitSteps.checkout(mirror, dest, index, commit));
    } finally {
      await rm(index, { force: true });
    }
    // The commit's tree hash, for the artifact's provenance.
    const tree = (await runChecked(exec, gitSteps.tree(mirror, commit))).stdout.trim();
    return { fetched, tree };
  });
}

type ArchiveSource = Extract<BuildSource, { kind: 'archive' }>;

/**
 * Pure: the command that unpacks a source archive, as the build user (not the worker's root), into
 * `dest` (the build user's), from the work directory: no owners and no setuid/setgid bits from the
 * archive (FACTS.md#tar-extract); its entries were checked before (builder/archive-entries.ts).
 */
export const unpackCommand = (workDir: string, file: string, dest: string): Command =>
  asBuildUser({ argv: ['tar', '--no-same-owner', '--no-same-permissions', '-xzf', relative(workDir, file), '-C', relative(workDir, dest)], cwd: workDir, label: 'unpack source' });

/** Pure: reads the commit ID `git archive` records in a tarball's pax header (git's own reader). */
export const archiveCommitCommand = (file: string): Command => ({
  argv: ['sh', '-c', 'gzip -dc -- "$1" | git get-tar-commit-id', 'sh', file],
  label: 'read the archive\'s commit id',
});

/** An archive that claims a commit must be `git archive` of that commit (its header records it). */
async function checkArchiveCommit(exec: Executor, source: ArchiveSource, file: string): Promise<void> {
  if (!source.commit) return;
  const r = await exec.run(archiveCommitCommand(file));
  const recorded = r.code === 0 ? r.stdout.trim() : '';
  if (recorded === source.commit) return;
  throw new XamalError(
    'build_failed',
    recorded
      ? `source archive ${source.key} claims commit ${source.commit} but was made from ${recorded}`
      : `source archive ${source.key} claims commit ${source.commit} but records none (make it with \`git archive --format=tar.gz ${source.commit}\`)`,
  );
}

/**
 * Fetches a source archive from the store into `<workDir>/source.tar.gz`, checks its sha256 and the
 * commit it claims, and unpacks it into `<workDir>/src` as the build user.
 */
export async function unpackArchiveSource(exec: Executor, store: ObjectStore, source: ArchiveSource, workDir: string): Promise<void> {
  const archive = await store.get(source.key);
  if (!archive) throw new XamalError('build_failed', `source archive ${source.key} is not in the store`);
  const got = createHash('sha256').update(archive).digest('hex');
  if (got !== source.sha256) throw new XamalError('build_failed', `source archive ${source.key} has sha256 ${got}, expected ${source.sha256}`);
  const dest = join(workDir, 'src');
  const file = join(workDir, 'source.tar.gz');
  await mkdir(dest, { recursive: true });
  // The build user's from here on (the plan hands it the whole work directory before deps anyway).
  for (const path of [workDir, dest]) await chown(path, BUILD_USER.uid, BUILD_USER.gid);
  await writeFile(file, archive, { mode: 0o644 });
  await checkArchiveCommit(exec, source, file);
  await refuseUnsafeArchive(source, archive);
  await runChecked(exec, unpackCommand(workDir, file, dest));
}

/** Refuses (naming the entries) an archive `tar` must not unpack as root: see builder/archive-entries.ts. */
async function refuseUnsafeArchive(source: ArchiveSource, archive: Buffer): Promise<void> {
  let problems: string[];
  try {
    problems = archiveProblems(await tarGzEntries(archive));
  } catch (err) {
    throw new XamalError('build_failed', `source archive ${source.key} is not a readable .tar.gz: ${(err as Error).message}`);
  }
  if (problems.length === 0) return;
  const shown = problems.slice(0, 5).map((p) => `source archive: ${p}`);
  if (problems.length > 5) shown.push(`… and ${problems.length - 5} more`);
  throw new XamalError('build_failed', shown.join('\n'));
}

export interface SourceDeps {
  exec: Executor;
  store: ObjectStore;
  cacheDir: string;
  /** The farm's credentials for a git URL's host (core/contracts/git-credentials.ts); absent: none. */
  gitRemoteEnv?: GitRemoteEnv;
}

/**
 * Puts the job's source into `<workDir>/src` and refuses a tree with links leading out of it or
 * special files (builder/links.ts); resolves with a line for the build log, if there is
 * one to say, and the git tree hash of a git source.
 */
export async function prepareSource(d: SourceDeps, app: string, source: BuildSource, workDir: string): Promise<{ line?: string; tree?: string }> {
  const dest = join(workDir, 'src');
  if (source.kind === 'archive') {
    await unpackArchiveSource(d.exec, d.store, source, workDir);
    await refuseUnsafeTree(dest, 'source');
    return {};
  }
  const { fetched, tree } = await checkoutGitSource(d.exec, mirrorPath(d.cacheDir, app, source.url), source.url, source.commit, dest, d.gitRemoteEnv?.(source.url) ?? {});
  // Before anything reads the tree: a committed `deps -> /elsewhere` is refused here.
  await refuseUnsafeTree(dest, 'source');
  return { line: `source: ${source.commit} ${fetched ? 'fetched into' : 'already in'} the worker's mirror of ${source.url}`, tree };
}
