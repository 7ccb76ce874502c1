import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { machineOomKills, oomKillsOf } from '../../../builder/machine-oom.ts';

describe("the machine's count of OOM kills", () => {
  it("reads oom_kill from /proc/vmstat's text, and nothing from a kernel that does not count them", () => {
    expect(oomKillsOf('pgfault 123\noom_kill 6\nnr_free_pages 9\n')).toBe(6);
    expect(oomKillsOf('pgfault 123\nnr_free_pages 9\n')).toBeUndefined();
    expect(oomKillsOf('oom_kill_other 3\n')).toBeUndefined();
  });

  it('reads the file it is given, and says nothing when there is none', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xamal-vmstat-'));
    try {
      await writeFile(join(dir, 'vmstat'), 'oom_kill 41\n');
      expect(await machineOomKills(join(dir, 'vmstat'))).toBe(41);
      expect(await machineOomKills(join(dir, 'missing'))).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
