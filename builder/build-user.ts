import type { Command } from '../core/index.ts';
import type { ContainerSpec } from './docker.ts';
import { BUILD_USER } from '../images/recipes/debian.ts';

/**
 * The worker runs as root (it drives the engine); what it does with a build's untrusted files —
 * unpacking a source archive, packing the release — it does as the images' build user instead.
 */
export { BUILD_USER };

/** Pure: `command` run as the build user (uid/gid, no supplementary groups) instead of the worker's root. */
export function asBuildUser(command: Command): Command {
  return { ...command, argv: ['setpriv', `--reuid=${BUILD_USER.uid}`, `--regid=${BUILD_USER.gid}`, '--clear-groups', '--', ...command.argv] };
}

/** The limits a build container runs under (a build's BuildLimits, builder/plan.ts). */
export interface SandboxLimits {
  cpus: number;
  memoryBytes: number;
  pids: number;
}

/**
 * Pure: how every build container is confined — the build user, a read-only root, an init, no
 * capabilities, no privilege gain, and the build's CPU, memory and process limits. One definition
 * for the build steps (builder/plan.ts) and the Hex/rebar3 preparation (builder/mix-tools.ts).
 */
export function sandboxed(limits: SandboxLimits) {
  return {
    user: `${BUILD_USER.uid}:${BUILD_USER.gid}`,
    readOnly: true,
    init: true,
    memoryBytes: limits.memoryBytes,
    nanoCpus: Math.round(limits.cpus * 1e9),
    capDrop: ['ALL'],
    securityOpt: ['no-new-privileges'],
    pidsLimit: limits.pids,
  } satisfies Partial<ContainerSpec>;
}
