import { mkdir, open, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { XamalError } from '../core/errors/index.ts';
import { isAlive, processStartTime, readPidRecord, sleep } from './process.ts';

/**
 * A cross-process mutex on a lock file holding the owner's pid and start time. A lock whose owner
 * died is taken over; one whose content is not yet written is left alone for a few seconds.
 */
export async function withFileLock<T>(path: string, what: string, fn: () => Promise<T>, timeoutMs = 600_000): Promise<T> {
  await mkdir(dirname(path), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(JSON.stringify({ pid: process.pid, startTime: processStartTime(process.pid), argv: [] }));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = await readPidRecord(path);
      if (owner ? !isAlive(owner) : await olderThan(path, 5_000)) {
        await rm(path, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new XamalError('unavailable', `${what} is locked by pid ${owner?.pid ?? '?'} (${path})`);
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ms;
  } catch {
    return true;
  }
}
