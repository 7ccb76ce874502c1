import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { containerFailure } from '../../../builder/checks.ts';
import type { ContainerSpec, DockerEngine } from '../../../builder/docker.ts';
import { services, suiteEngineWithRuntime } from '../../../testkit/integration.ts';

/**
 * Every way a build container is SIGKILLed from outside the farm's own limits ends in an error that
 * says which (the CI run whose compile "exited 137 with neither the OOM nor the time-limit flag"):
 * the kernel's OOM killer taking a child process only, another client removing the container, and
 * another client killing it through the engine. Real containers on the suite's engine.
 */
describe('a build container killed from outside the farm', () => {
  let docker: DockerEngine;
  let image: string;

  beforeAll(async () => {
    ({ docker, image } = await suiteEngineWithRuntime());
  }, 1_800_000);

  const spec = (cmd: string, extra: Partial<ContainerSpec> = {}): ContainerSpec => ({ image, cmd: ['sh', '-c', cmd], networkMode: 'none', timeoutMs: 120_000, ...extra });
  const step = (s: ContainerSpec) => ({ name: 'compile', spec: s });
  const cli = (...args: string[]) => execFileSync('docker', ['-H', `unix://${services().dockerSocket}`, ...args], { encoding: 'utf8' }).trim();

  /** `tail` of an endless file without a newline holds all of it: a child allocating until the kernel kills it; `sh` (the first process) lives on. */
  const CHILD_HOG = 'tail /dev/zero; echo "child ended $?"';

  it('a child process killed at the memory limit, its first process alive to exit 137 after it, is reported OOM-killed and the step ran out of memory', async () => {
    const s = spec(`${CHILD_HOG}; exit 137`, { memoryBytes: 64 * 1024 ** 2 });
    const r = await docker.run(s);
    expect(r.stdout).toContain('child ended 137');
    expect(r.code).toBe(137);
    expect(r.oomKilled).toBe(true);
    if (r.machineOomKills !== undefined) expect(r.machineOomKills).toBeGreaterThanOrEqual(1);
    expect(containerFailure(step(s), r)).toEqual({ code: 'build_failed', message: 'compile ran out of memory: the kernel killed it at its memory limit of 64 MiB (exit code 137)' });
  });

  it('a child process killed at the memory limit whose first process then exits 3 fails the step as out of memory, not as exit code 3 alone', async () => {
    const s = spec(`${CHILD_HOG}; exit 3`, { memoryBytes: 64 * 1024 ** 2 });
    const r = await docker.run(s);
    expect(r.code).toBe(3);
    expect(r.oomKilled).toBe(true);
    expect(containerFailure(step(s), r)?.message).toBe('compile ran out of memory: the kernel killed one of its processes at its memory limit of 64 MiB, and compile then failed with exit code 3');
  });

  it("with an init as first process and its only child OOM-killed (as build steps run) every run is reported OOM-killed; how often the engine's flag alone missed it is printed", async () => {
    const runs = 10;
    for (let i = 0; i < runs; i++) {
      const r = await docker.run(spec('exec tail /dev/zero', { init: true, memoryBytes: 64 * 1024 ** 2 }));
      expect(r.code).toBe(137);
      expect(r.oomKilled).toBe(true);
    }
    // The engine's flag as it reads right after the wait, which is all the farm read before.
    let unset = 0;
    for (let i = 0; i < runs; i++) {
      const id = cli('run', '-d', '--init', '-m', '64m', '--memory-swap', '64m', '--network', 'none', image, 'tail', '/dev/zero');
      cli('wait', id);
      if (cli('inspect', '-f', '{{.State.OOMKilled}}', id) !== 'true') unset++;
      cli('rm', '-f', id);
    }
    console.log(`container kills: the engine's State.OOMKilled was unset right after the wait for ${unset} of ${runs} child OOM kills (init as first process)`);
  });

  /** Runs `sleep` in a labelled container and does `toIt` to it from outside once it runs. */
  async function interfered(toIt: (id: string) => Promise<unknown>) {
    const label = `kill-${randomBytes(4).toString('hex')}`;
    const s = spec('sleep 60', { labels: { 'org.xamal.test': label } });
    const running = docker.run(s);
    let ids: string[] = [];
    while (ids.length === 0) {
      await new Promise((r) => setTimeout(r, 100));
      ids = await docker.containersWithLabel('org.xamal.test', label);
    }
    // Started: `sleep` runs once the engine says so.
    while (cli('inspect', '-f', '{{.State.Running}}', ids[0]!) !== 'true') await new Promise((r) => setTimeout(r, 100));
    await toIt(ids[0]!);
    return { s, r: await running };
  }

  it('a container another client removes while it runs (docker rm -f) is reported removed, and the step says so and is retried', async () => {
    const { s, r } = await interfered((id) => docker.removeContainer(id));
    expect(r.code).toBe(137);
    expect(r.removed).toBe(true);
    expect(containerFailure(step(s), r)).toEqual({
      code: 'external',
      message: 'compile was killed with SIGKILL (exit code 137): its container was removed while it ran, by a client other than this build (docker rm -f: another attempt of this job that took it over, or an operator); the build is retried',
    });
  });

  it('a container another client kills through the engine (docker kill) is reported with the signal the engine was asked to send', async () => {
    const { s, r } = await interfered(async (id) => cli('kill', id));
    expect(r.code).toBe(137);
    expect(r.removed).toBeUndefined();
    expect(r.engineKills).toEqual(['9']);
    expect(containerFailure(step(s), r)?.message).toMatch(/^compile was killed with SIGKILL \(exit code 137\) through the engine: a client other than this build asked it to send signal 9 /);
  });
});
