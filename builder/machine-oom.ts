import { readFile } from 'node:fs/promises';

/**
 * The kernel's own count of its OOM kills on this machine (`oom_kill` in /proc/vmstat, Linux ≥ 4.13):
 * every process the OOM killer killed since boot, at a cgroup's memory limit or with the whole
 * machine out of memory (FACTS.md#oom-kill). Read before and after a container runs, it tells a
 * SIGKILL the kernel sent from one nothing on this machine accounts for, where the engine's own
 * OOM flag can miss (FACTS.md#oom-kill) and needs no dmesg.
 */

/** Pure: the `oom_kill` count of /proc/vmstat's text; undefined when the kernel does not count them. */
export function oomKillsOf(vmstat: string): number | undefined {
  const m = /^oom_kill (\d+)$/m.exec(vmstat);
  return m ? Number(m[1]) : undefined;
}

/** OOM kills on this machine since boot; undefined where the kernel does not say (no /proc, an old kernel). */
export async function machineOomKills(path = '/proc/vmstat'): Promise<number | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : oomKillsOf(text);
}
