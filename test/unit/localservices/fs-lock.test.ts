import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freshRecord, lockIdentity, takeOver, tryLock, unlock, withFileLock, type LockRecord } from '../../../localservices/fs-lock.ts';

/** A holder whose process is gone: this pid runs, but under another start time. */
const deadOwner = (token: string): LockRecord => ({ pid: process.pid, startTime: 'gone', argv: [], token });
const holderOf = async (path: string) => (JSON.parse(await readFile(path, 'utf8')) as LockRecord).token;

describe('a file lock whose owner died', () => {
  let dir: string;
  let lock: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-lock-'));
    lock = join(dir, 'entry.lock');
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('is taken over by one of two contenders that both found it dead; the other gets nothing and leaves the first one\'s lock in place', async () => {
    await writeFile(lock, JSON.stringify(deadOwner('dead')));
    const a = lockIdentity();
    const b = lockIdentity();
    // Both decided the owner is dead before either acted (the race the remove-then-create takeover lost).
    expect(await takeOver(lock, 'dead', a, await freshRecord(lock, a))).toBe('held');
    expect(await takeOver(lock, 'dead', b, await freshRecord(lock, b))).toBe('changed');
    expect(await holderOf(lock)).toBe(a.token);
    // B, trying again, finds a live owner and waits.
    expect(await tryLock(lock, b)).toEqual({ held: false, owner: process.pid });
    expect(await holderOf(lock)).toBe(a.token);
    // No claim or private record is left behind.
    expect(await readdir(dir)).toEqual(['entry.lock']);
  });

  it('makes a contender wait while another, alive, is taking it over, and leaves the lock to that one', async () => {
    await writeFile(lock, JSON.stringify(deadOwner('dead')));
    const a = lockIdentity();
    const b = lockIdentity();
    // A has claimed the takeover and not yet put its record in place.
    await writeFile(`${lock}.dead.takeover`, JSON.stringify(a));
    expect(await takeOver(lock, 'dead', b, await freshRecord(lock, b))).toBe('busy');
    expect(await tryLock(lock, b)).toEqual({ held: false });
    expect(await holderOf(lock)).toBe('dead');
  });

  it('is taken over by the next contender when the one that claimed its takeover died before finishing', async () => {
    await writeFile(lock, JSON.stringify(deadOwner('dead')));
    await writeFile(`${lock}.dead.takeover`, JSON.stringify(deadOwner('claimant')));
    const b = lockIdentity();
    expect(await tryLock(lock, b)).toEqual({ held: true });
    expect(await holderOf(lock)).toBe(b.token);
    expect(await readdir(dir)).toEqual(['entry.lock']);
  });

  it('is taken over when written by an older version without a token, and when its record is unreadable for long', async () => {
    await writeFile(lock, JSON.stringify({ pid: process.pid, startTime: 'gone', argv: [] }));
    expect(await withFileLock(lock, 'test', async () => 'ran', 1000)).toBe('ran');
    await writeFile(lock, '{"pid":');
    await expect(withFileLock(lock, 'the test entry', async () => 'ran', 300)).rejects.toThrow(/the test entry is locked by pid \?/);
    await utimes(lock, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    expect(await withFileLock(lock, 'test', async () => 'ran', 1000)).toBe('ran');
    expect(existsSync(lock)).toBe(false);
  });

  it('is never removed by a holder whose lock was taken over', async () => {
    const a = lockIdentity();
    const b = lockIdentity();
    await writeFile(lock, JSON.stringify(b));
    await unlock(lock, a);
    expect(await holderOf(lock)).toBe(b.token);
  });

  it('lets one of several worker processes, racing for it at once, hold it at a time, each holder being killed (SIGKILL) in turn', async () => {
    await writeFile(lock, JSON.stringify(deadOwner('dead')));
    const log = join(dir, 'log');
    const script = join(dir, 'contender.mts');
    await writeFile(script, `
      import { appendFileSync, existsSync } from 'node:fs';
      import { withFileLock } from ${JSON.stringify(join(process.cwd(), 'localservices/fs-lock.ts'))};
      appendFileSync(${JSON.stringify(join(dir, 'ready'))}, 'ready\\n');
      while (!existsSync(${JSON.stringify(join(dir, 'go'))})) await new Promise((r) => setTimeout(r, 5));
      await withFileLock(${JSON.stringify(lock)}, 'test', async () => {
        appendFileSync(${JSON.stringify(log)}, 'in ' + process.pid + '\\n');
        await new Promise((r) => setTimeout(r, 50));
        appendFileSync(${JSON.stringify(log)}, 'out ' + process.pid + '\\n');
        // Dies holding it: the others race to take over from a dead owner again.
        process.kill(process.pid, 'SIGKILL');
      });
    `);
    const n = 6;
    const children = Array.from({ length: n }, () => spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'inherit', 'inherit'] }));
    const exits = children.map((c) => new Promise((resolve) => c.on('exit', (_code, signal) => resolve(signal))));
    // Once all have started and wait at the barrier.
    const ready = async () => (await readFile(join(dir, 'ready'), 'utf8').catch(() => '')).split('\n').length - 1;
    while ((await ready()) < n) await new Promise((r) => setTimeout(r, 20));
    await writeFile(join(dir, 'go'), '');
    expect(await Promise.all(exits)).toEqual(Array(n).fill('SIGKILL'));
    const lines = (await readFile(log, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(2 * n);
    // Each "in" is followed by the same process's "out": no two holders at once.
    for (let i = 0; i < lines.length; i += 2) expect([lines[i], lines[i + 1]]).toEqual([lines[i], lines[i]!.replace('in', 'out')]);
    // Every takeover cleaned up after itself: no claim or private record is left.
    expect((await readdir(dir)).sort()).toEqual(['contender.mts', 'entry.lock', 'go', 'log', 'ready']);
  }, 30_000);
});
