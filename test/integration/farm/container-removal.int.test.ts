import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { dockerEngine, type ContainerSpec, type DockerEngine } from '../../../builder/docker.ts';
import { buildImage } from '../../../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../../../builder/images/context.ts';
import { pinnedRef } from '../../../images/lock.ts';
import { services, testBuilderConfig } from '../../../testkit/integration.ts';

/**
 * A build step's exited container is removed beside the next steps (builder/apply.ts hands its
 * removal to the build, which awaits it before it ends): the run's result comes without waiting for
 * the engine's removal, and nothing is left once the removal handed over has settled.
 */
describe('removing a step container after its run', () => {
  let docker: DockerEngine;
  let image: string;

  beforeAll(async () => {
    docker = dockerEngine(services().dockerSocket);
    const built = await buildImage(imageBuildDeps(testBuilderConfig(), (l) => process.stderr.write(`[images] ${l}\n`)), { suite: 'bookworm', arch: hostArch(), flavour: 'runtime' });
    image = pinnedRef(built.entry, hostArch());
  }, 1_800_000);

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
});
