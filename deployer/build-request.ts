import { DEFAULT_MIX_ENV, formatSelectorString, shellQuote, type HostFingerprint, type TargetSelector } from '../core/index.ts';
import { CommitSchema } from '../core/contracts/build-job.ts';

/** What the `xamal build` line for a missing artifact is made of. */
export interface BuildRequestInput {
  farmUrl: string;
  app: string;
  /** The repository the farm clones (the checkout's `origin`); undefined when it has none: the line then uploads the checkout (`--source .`). */
  git: string | undefined;
  /** A full commit (`--commit`), else a ref the farm resolves (`--ref`). */
  version: string;
  /** deploy.yml's `farm.target`: a tuple (asked for as it is) or a selector (narrowed to the host). */
  target: string | TargetSelector | undefined;
  host: HostFingerprint;
  /** deploy.yml's `release.mix_env`: named on the line unless it is prod. */
  mixEnv?: string;
}

/**
 * Pure: what to build for a host: deploy.yml's tuple as it is, or its selector with the host's arch
 * and Debian release in place of its own (the artifact then fits the host's libc and OpenSSL).
 */
export function hostTarget(target: string | TargetSelector | undefined, host: HostFingerprint): string | TargetSelector {
  return typeof target === 'string' ? target : { ...target, arch: host.arch, distro: `${host.distro}${host.distroVersion}` };
}

/**
 * Pure: the exact `xamal build` line that asks the farm for an artifact this host runs: the
 * deploy's selector with the host's arch and distro release (the artifact then fits its libc and
 * OpenSSL), every word shell-quoted.
 */
export function buildRequestLine(r: BuildRequestInput): string {
  const wanted = hostTarget(r.target, r.host);
  const target = typeof wanted === 'string' ? wanted : formatSelectorString(wanted);
  const q = (...words: string[]) => words.map(shellQuote);
  return q(
    'xamal', 'build', '--farm', r.farmUrl, '--app', r.app,
    ...(r.git === undefined ? ['--source', '.'] : ['--git', r.git]),
    CommitSchema.safeParse(r.version).success ? '--commit' : '--ref', r.version, '--target', target,
    ...(r.mixEnv && r.mixEnv !== DEFAULT_MIX_ENV ? ['--mix-env', r.mixEnv] : []),
  ).join(' ');
}
