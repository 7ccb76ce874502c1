import { XamalError } from '../core/index.ts';
import type { ContainerResult, ContainerSpec, DockerEngine, RunOptions } from './docker.ts';
import type { EgressProxy, LoopbackRelay } from './egress.ts';

/**
 * A network namespace whose only way out is the egress proxy: a sidecar container (the step's image,
 * `sleep`, network none) holds it, and the proxy listens on its loopback. Steps join it with network
 * mode `container:<id>`; one namespace serves the fetching steps of one build (deps, then assets),
 * one after the other, and goes with `close()`.
 */
export interface EgressNamespace {
  id: string;
  pid: number;
  close(): Promise<void>;
}

/** Starts a sidecar for `spec`'s image and limits, and makes the egress proxy reachable on its loopback. */
export async function openEgressNamespace(docker: DockerEngine, egress: EgressProxy | undefined, spec: ContainerSpec): Promise<EgressNamespace> {
  if (!egress) throw new XamalError('internal', 'a step needs the egress proxy but the worker has none (farm/build-deps.ts)');
  // It only holds the namespace: the step's image and limits, none of its files (no binds, no tmpfs).
  const { timeoutMs: _t, output: _o, binds: _b, tmpfs: _f, workdir: _w, ...rest } = spec;
  const sidecar = { ...rest, cmd: ['sleep', 'infinity'], networkMode: 'none' as const, env: {}, labels: { ...spec.labels, 'org.xamal.step': 'egress' } };
  const { id, pid } = await docker.startDetached(sidecar);
  try {
    const way = await egress.join(pid);
    return {
      id,
      pid,
      async close() {
        way.stop();
        await docker.removeContainer(id).catch(() => false);
      },
    };
  } catch (err) {
    await docker.removeContainer(id).catch(() => false);
    throw err;
  }
}

/**
 * Runs a build container. Network `egress`: in the namespace `ns` when given (left open for the
 * next fetching step of the build), else in one opened for this step and closed after it; each of
 * `relays` reaches its port on that loopback for this step only. Any other network mode runs as it is.
 * `options` as DockerEngine.run takes them (the step's container only).
 */
export async function runStepContainer(docker: DockerEngine, egress: EgressProxy | undefined, spec: ContainerSpec, signal: AbortSignal, relays: readonly LoopbackRelay[] = [], ns?: EgressNamespace, options?: RunOptions): Promise<ContainerResult> {
  if (spec.networkMode !== 'egress') return docker.run(spec, signal, options);
  const own = ns ? undefined : await openEgressNamespace(docker, egress, spec);
  const held = (ns ?? own)!;
  try {
    const relayed = relays.length ? await egress!.relay(held.pid, relays) : undefined;
    try {
      return await docker.run({ ...spec, networkMode: `container:${held.id}` }, signal, options);
    } finally {
      relayed?.stop();
    }
  } finally {
    await own?.close();
  }
}
