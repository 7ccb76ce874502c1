import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerSpec, DockerEngine } from '../../../builder/docker.ts';
import { suiteEngineWithRuntime } from '../../../testkit/integration.ts';

/**
 * How a build step's container runs on the real engine (builder/docker.ts): started ahead and held at
 * its gate until its step (DockerEngine.startHeld), and removed beside the next steps once it exited
 * (builder/apply.ts hands its removal to the build, which awaits it before it ends).
 */
describe('step containers: held until their step, removed after it', () => {
  let docker: DockerEngine;
  let image: string;
  let dir: string;

  beforeAll(async () => {
    ({ docker, image } = await suiteEngineWithRuntime());
    dir = await mkdtemp(join(tmpdir(), 'xamal-held-'));
  }, 1_800_000);
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const labelled = (cmd: string): { spec: ContainerSpec; label: string } => {
    const label = `removal-${randomBytes(4).toString('hex')}`;
    return { label, spec: { image, cmd: ['sh', '-c', cmd], networkMode: 'none', timeoutMs: 60_000, labels: { 'org.xamal.test': label } } };
  };

  it('a run given deferRemoval hands over exactly one removal, its result is complete, and the container is gone once that removal settled', async () => {
    const { spec, label } = labelled('echo out; echo err >&2; exit 3');
    const handed: Promise<void>[] = [];
    const r = await docker.run(spec, undefined, { deferRemoval: (p) => void handed.push(p) });
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr, removed: r.removed }).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n', removed: undefined });
    expect(handed).toHaveLength(1);
    await handed[0];
    expect(await docker.containersWithLabel('org.xamal.test', label)).toEqual([]);
  });

  it('a run without it resolves only after its container is gone', async () => {
    const { spec, label } = labelled('exit 0');
    const r = await docker.run(spec);
    expect(r.code).toBe(0);
    expect(await docker.containersWithLabel('org.xamal.test', label)).toEqual([]);
  });

  it('a removal handed over for a container another client already removed settles without an error', async () => {
    const { spec, label } = labelled('sleep 30');
    const handed: Promise<void>[] = [];
    const running = docker.run(spec, undefined, { deferRemoval: (p) => void handed.push(p) });
    let ids: string[] = [];
    for (let i = 0; i < 200 && ids.length === 0; i++) {
      await new Promise((res) => setTimeout(res, 50));
      ids = await docker.containersWithLabel('org.xamal.test', label);
    }
    expect(ids).toHaveLength(1);
    await docker.removeContainer(ids[0]!);
    const r = await running;
    expect(r.removed).toBe(true);
    await expect(handed[0]).resolves.toBeUndefined();
    expect(await docker.containersWithLabel('org.xamal.test', label)).toEqual([]);
  });

  it('a held container is started but runs nothing until run: then its command runs once, with its output, exit code and removal as a plain run', async () => {
    const { spec, label } = labelled('touch /out/ran; echo ran; exit 4');
    const out = await mkdtemp(join(dir, 'run-'));
    const held = await docker.startHeld({ ...spec, binds: [`${out}:/out`] });
    await new Promise((r) => setTimeout(r, 500));
    expect(await docker.containersWithLabel('org.xamal.test', label)).toHaveLength(1);
    expect(existsSync(join(out, 'ran'))).toBe(false);
    const r = await held.run();
    expect({ code: r.code, stdout: r.stdout, timedOut: r.timedOut }).toEqual({ code: 4, stdout: 'ran\n', timedOut: false });
    expect(existsSync(join(out, 'ran'))).toBe(true);
    expect(await docker.containersWithLabel('org.xamal.test', label)).toEqual([]);
    await expect(held.run()).rejects.toThrow('a held container runs its command once');
  });

  it('a held container discarded never runs its command and is gone', async () => {
    const { spec, label } = labelled('touch /out/ran');
    const out = await mkdtemp(join(dir, 'discard-'));
    const held = await docker.startHeld({ ...spec, binds: [`${out}:/out`] });
    await held.discard();
    expect(await docker.containersWithLabel('org.xamal.test', label)).toEqual([]);
    expect(existsSync(join(out, 'ran'))).toBe(false);
  });

  it("a held container's time limit counts from its run, not from its start", async () => {
    const { spec } = labelled('sleep 30');
    const held = await docker.startHeld({ ...spec, timeoutMs: 1_500 });
    await new Promise((r) => setTimeout(r, 2_000));
    const t0 = Date.now();
    const r = await held.run();
    expect(r.timedOut).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_400);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
