import { XamalError } from '../core/index.ts';
import type { ContainerResult, ContainerSpec, DockerEngine } from './docker.ts';
import type { EgressProxy, LoopbackRelay } from './egress.ts';

/**
 * Runs a build container. Network `egress`: a sidecar (same image, `sleep`, network none) holds a
 * fresh network namespace, the egress proxy listens on its loopback, and the step joins that
 * namespace (and each of `relays` its port there); any other network mode runs as it is.
 */
export async function runStepContainer(docker: DockerEngine, egress: EgressProxy | undefined, spec: ContainerSpec, signal: AbortSignal, relays: readonly LoopbackRelay[] = []): Promise<ContainerResult> {
  if (spec.networkMode !== 'egress') return docker.run(spec, signal);
  if (!egress) throw new XamalError('internal', 'a step needs the egress proxy but the worker has none (farm/build-deps.ts)');
  const { timeoutMs: _t, output: _o, ...rest } = spec;
  const sidecar = { ...rest, cmd: ['sleep', 'infinity'], networkMode: 'none' as const, env: {}, labels: { ...spec.labels, 'org.xamal.step': 'egress' } };
  const { id, pid } = await docker.startDetached(sidecar);
  try {
    const way = await egress.join(pid, relays);
    try {
      return await docker.run({ ...spec, networkMode: `container:${id}` }, signal);
    } finally {
      way.stop();
    }
  } finally {
    await docker.removeContainer(id).catch(() => false);
  }
}
