import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerResult, ContainerSpec, DockerEngine } from '../../builder/docker.ts';
import { buildElf } from './elf-fixture.ts';

/**
 * A DockerEngine without an engine, for runBuild tests: each container step (by its
 * `org.xamal.step` label) does to the bind-mounted host directories what `mix deps.get`, `mix
 * release hello` and the smoke test would. Steps can be replaced (a hostile release), and `script`
 * gives results per step, one per run (then success).
 */
export const FAKE_DIGEST = `sha256:${'d'.repeat(64)}`;
export const FAKE_PINNED = `xamal/builder@${FAKE_DIGEST}`;

export type Script = Partial<Record<string, Partial<ContainerResult>[]>>;
export type StepEffect = (spec: ContainerSpec) => Promise<string>;

/** The host directory bound at `path` in a container spec. */
export const hostPath = (spec: ContainerSpec, path: string) => spec.binds!.map((b) => b.split(':')).find(([, c]) => c === path)![0]!;

/** What `mix release hello` leaves: start_erl.data, an ELF needing `glibc`, and a _build entry. */
export async function writeRelease(spec: ContainerSpec, glibc = 'GLIBC_2.34'): Promise<string> {
  const rel = join(hostPath(spec, '/build/out'), 'hello');
  await mkdir(join(rel, 'releases'), { recursive: true });
  await mkdir(join(rel, 'bin'), { recursive: true });
  await writeFile(join(rel, 'releases', 'start_erl.data'), '15.2.7 0.1.0\n');
  await writeFile(join(rel, 'bin', 'beam.smp'), buildElf({ bits: 64, littleEndian: true, needed: ['libc.so.6', 'libtinfo.so.6'], verneed: [{ file: 'libc.so.6', names: ['GLIBC_2.2.5', glibc] }] }).buf);
  await mkdir(join(hostPath(spec, '/build/src'), '_build', 'prod'), { recursive: true });
  await writeFile(join(hostPath(spec, '/build/src'), '_build', 'prod', 'hello.app'), 'app');
  return 'Release created';
}

export function fakeDocker(script: Script, glibc = 'GLIBC_2.34', replace: Partial<Record<string, StepEffect>> = {}) {
  const runs: string[] = [];
  /** Containers started ahead for a step, and those removed with their command never run. */
  const held: string[] = [];
  const discarded: string[] = [];
  const effects: Record<string, StepEffect> = {
    deps: async (spec) => {
      await mkdir(join(hostPath(spec, '/build/src'), 'deps', 'jason'), { recursive: true });
      await writeFile(join(hostPath(spec, '/build/src'), 'deps', 'jason', 'mix.exs'), 'jason');
      return 'fetched jason';
    },
    compile: (spec) => writeRelease(spec, glibc),
    smoke: async () => 'xamal-smoke-ok',
    ...replace,
  };
  const docker: Partial<DockerEngine> = {
    inspectImage: async () => ({ id: 'sha256:img', architecture: 'amd64', variant: undefined, os: 'linux', repoDigests: [FAKE_PINNED], repoTags: [], labels: {} }),
    containersWithLabel: async () => [],
    removeContainer: async () => true,
    run: async (spec) => {
      const step = spec.labels!['org.xamal.step']!;
      runs.push(step);
      const scripted = script[step]?.shift();
      const stdout = scripted && scripted.code ? '' : await effects[step]!(spec);
      return { code: 0, stdout: `${stdout}\n`, stderr: '', timedOut: false, ...scripted };
    },
    // Held for a later step: runs through `run` (as replaced by a test) when that step takes it.
    startHeld: async (spec) => {
      const step = spec.labels!['org.xamal.step']!;
      held.push(step);
      let taken = false;
      return {
        run: (signal, options) => ((taken = true), docker.run!(spec, signal, options)),
        discard: async () => void (taken || discarded.push(step)),
      };
    },
  };
  return { docker: docker as DockerEngine, runs, held, discarded };
}
