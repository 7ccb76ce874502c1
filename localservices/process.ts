import { readFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';

/** A process we started, identified by pid *and* kernel start time so a recycled pid is never ours. */
export interface PidRecord {
  pid: number;
  startTime: string;
  argv: string[];
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or undefined if gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); a zombie has exited already.
    if (fields[0] === 'Z') return undefined;
    return fields[19];
  } catch {
    return undefined;
  }
}

export function isAlive(rec: PidRecord): boolean {
  return processStartTime(rec.pid) === rec.startTime;
}

export async function readPidRecord(path: string): Promise<PidRecord | undefined> {
  try {
    const rec = JSON.parse(await readFile(path, 'utf8')) as PidRecord;
    return Number.isInteger(rec.pid) && typeof rec.startTime === 'string' ? rec : undefined;
  } catch {
    return undefined;
  }
}

export async function writePidRecord(path: string, rec: PidRecord): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(rec));
  await rename(tmp, path);
}

/** A bare pid from a file a program wrote itself (dockerd's containerd.pid). */
export async function readBarePid(path: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(path, 'utf8')).trim());
    return Number.isInteger(n) && n > 1 ? n : undefined;
  } catch {
    return undefined;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** SIGTERM, wait up to `timeoutMs`, then SIGKILL. Resolves once the process is gone. */
export async function terminate(rec: PidRecord, timeoutMs: number, beforeKill?: () => Promise<void>): Promise<'terminated' | 'killed' | 'gone'> {
  if (!isAlive(rec)) return 'gone';
  try {
    process.kill(rec.pid, 'SIGTERM');
  } catch {
    return 'gone';
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(rec)) return 'terminated';
    await sleep(50);
  }
  await beforeKill?.();
  try {
    process.kill(rec.pid, 'SIGKILL');
  } catch {
    /* exited meanwhile */
  }
  for (let i = 0; i < 100 && isAlive(rec); i++) await sleep(50);
  return 'killed';
}
