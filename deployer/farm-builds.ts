import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BuildStatus, SubmitResult } from '../api/schemas/builds.ts';
import type { SourceArchive } from '../api/schemas/sources.ts';
import { LocalExecutor, runChecked, XamalError, type Executor } from '../core/index.ts';
import type { FarmClient } from './farm-client.ts';

/**
 * The commit `rev` names in the repository at `dir`, packed with `git archive` (its header records
 * the commit, which the worker checks) and uploaded, saying how many bytes went; the build request
 * names the upload and the commit, so the artifact is filed under the commit as a build from git is.
 */
export async function uploadCheckout(client: FarmClient, dir: string, rev: string, onUpload?: (sent: number, total: number, commit: string) => void, exec: Executor = new LocalExecutor()): Promise<SourceArchive> {
  const found = await exec.run({ argv: ['git', '-C', dir, 'rev-parse', '--verify', '--quiet', `${rev}^{commit}`], timeoutMs: 30_000 });
  if (found.code !== 0) throw new XamalError('usage', `--source ${dir}: ${JSON.stringify(rev)} is not a commit of a git repository there${found.stderr.trim() ? ` (${found.stderr.trim().split('\n').at(-1)})` : ''}`);
  const commit = found.stdout.trim();
  const tmp = await mkdtemp(join(tmpdir(), 'xamal-source-'));
  try {
    const file = join(tmp, 'source.tar.gz');
    await runChecked(exec, { argv: ['git', '-C', dir, 'archive', '--format=tar.gz', '-o', file, commit], timeoutMs: 300_000 }, `--source ${dir}: git archive`);
    const upload = await client.uploadSource(file, (sent, total) => onUpload?.(sent, total, commit));
    return { archive: upload.archive, sha256: upload.sha256, commit };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** How often a followed build's status is asked for. */
export const POLL_MS = 1_000;

/**
 * Follows every submitted build to its end (completed or failed), reporting each status it sees;
 * resolves with the final status of each, by build ID. Past `timeoutMs`: `unavailable`.
 */
export async function followBuilds(
  client: Pick<FarmClient, 'status'>,
  builds: SubmitResult['builds'],
  onStatus: (build: SubmitResult['builds'][number], status: BuildStatus) => void,
  timeoutMs: number,
  pollMs = POLL_MS,
): Promise<Map<string, BuildStatus>> {
  const final = new Map<string, BuildStatus>();
  const deadline = Date.now() + timeoutMs;
  while (final.size < builds.length) {
    if (Date.now() > deadline) throw new XamalError('unavailable', `timed out after ${timeoutMs / 1000} s waiting for the farm`);
    for (const b of builds) {
      if (final.has(b.id)) continue;
      const st = await client.status(b.id);
      onStatus(b, st);
      if (st.state === 'completed' || st.state === 'failed') final.set(b.id, st);
    }
    if (final.size < builds.length) await new Promise((r) => setTimeout(r, pollMs));
  }
  return final;
}
