import { compareVersions, NUMERIC_VERSION, RELEASE_VERSION } from '../core/index.ts';
import type { ContainerResult } from './docker.ts';
import type { ReleaseScan } from './elf.ts';
import { describeBytes } from './output-limit.ts';
import type { BuildStep } from './plan.ts';

/**
 * Pure checks of what a build step found, which the plan could not know beforehand. Each returns why
 * the build fails, or undefined.
 */

type ContainerStep = Extract<BuildStep, { kind: 'container' }>;

export interface StepFailure {
  /** `cancelled` (asked for) or `build_failed` (the build's own fault: final, with the log's tail). */
  code: 'cancelled' | 'build_failed';
  message: string;
}

/** Why a finished container step failed (cancelled, over its output, time or memory limit, non-zero exit, output missing). */
export function containerFailure(step: Pick<ContainerStep, 'name' | 'spec' | 'expect'>, r: ContainerResult): StepFailure | undefined {
  const { name, spec } = step;
  if (r.cancelled) return { code: 'cancelled', message: `build cancelled during ${name}` };
  if (r.outputExceeded) {
    const cap = spec.output ? describeBytes(spec.output.maxBytes) : 'its limit';
    return { code: 'build_failed', message: `step ${name} printed more than ${cap} of output; killed (XAMAL_MAX_STEP_OUTPUT_BYTES)` };
  }
  if (r.timedOut) return { code: 'build_failed', message: `${name} exceeded its time limit of ${spec.timeoutMs} ms` };
  if (r.oomKilled) {
    const mib = spec.memoryBytes ? `${Math.round(spec.memoryBytes / 1024 ** 2)} MiB` : 'the engine\'s';
    return { code: 'build_failed', message: `${name} ran out of memory: the kernel killed it at its memory limit of ${mib} (exit code ${r.code})` };
  }
  if (r.code !== 0) {
    const why = spec.networkMode === 'egress' ? egressDiagnosis(`${r.stdout}\n${r.stderr}`) : undefined;
    return { code: 'build_failed', message: `${name} failed with exit code ${r.code}${why ? `: ${why}` : ''}` };
  }
  if (step.expect && !r.stdout.includes(step.expect.stdout)) return { code: 'build_failed', message: step.expect.failure };
  return undefined;
}

/** Why a step whose work directory grew past the plan's disk limit failed. */
export function diskFailure(step: Pick<ContainerStep, 'name' | 'disk'>, bytes: number): string {
  return `step ${step.name} filled its work directory past ${describeBytes(step.disk.maxBytes)} (${describeBytes(bytes)} found); killed (XAMAL_MAX_BUILD_DISK_BYTES)`;
}

/** A git URL that does not go through an HTTP proxy: `git://`, `ssh://`, or scp-like `user@host:path`. */
const UNPROXIED_GIT = /^(?:git:\/\/|ssh:\/\/|git\+ssh:\/\/|[\w.-]+@[\w.-]+:)/;

/**
 * Pure: why a step behind the egress proxy failed, from its output — a git dependency over a
 * protocol the proxy does not carry, or a URL the proxy refused — naming the URL; else undefined.
 */
export function egressDiagnosis(output: string): string | undefined {
  for (const m of output.matchAll(/^\* Getting (\S+) \((\S+)/gm)) {
    if (UNPROXIED_GIT.test(m[2]!)) {
      return `git dependency ${m[1]} (${m[2]}) cannot be fetched: the deps step reaches the network only through the farm's HTTP(S) egress proxy, which git:// and ssh do not use; use an https:// URL whose host is in XAMAL_DEPS_ALLOW`;
    }
  }
  const refused = /unable to access '([^']+)': (?:The requested URL returned error: 403|.*CONNECT tunnel failed, response 403)/.exec(output);
  if (refused) return `the egress proxy refused ${refused[1]}: its host is not in XAMAL_DEPS_ALLOW`;
  return undefined;
}

/** The build log's line for a release scan. */
export function scanSummary(scan: ReleaseScan): string {
  return `==> scan: ${scan.elfFiles.length} ELF files, glibc needed ${scan.glibcNeeded ?? 'none'}, sonames ${scan.sonames.join(' ')}`;
}

/** Refuses a release that needs a newer glibc than its target's floor. */
export function checkScan(step: Extract<BuildStep, { kind: 'check-scan' }>, scan: Pick<ReleaseScan, 'glibcNeeded'>): string | undefined {
  if (step.glibcFloor && scan.glibcNeeded && compareVersions(scan.glibcNeeded, step.glibcFloor) > 0) {
    return `the release needs glibc ${scan.glibcNeeded}, above its target's floor ${step.glibcFloor}`;
  }
  return undefined;
}

/** A release version as the manifest may carry it: SemVer (`1.2.3`, `1.2.3-rc.1+build.5`), at most 64 characters. */
const RELEASE_VERSION_MAX = 64;
const START_ERL = new RegExp(`^(${NUMERIC_VERSION}) (${RELEASE_VERSION})\n?$`);

/**
 * The release version in releases/start_erl.data, which holds exactly `<erts version> <release
 * version>` (a newline may follow); undefined for anything else.
 */
export function releaseVersionOf(startErl: string): string | undefined {
  const version = START_ERL.exec(startErl)?.[2];
  return version !== undefined && version.length <= RELEASE_VERSION_MAX ? version : undefined;
}

export const NO_START_ERL = 'the release has no releases/start_erl.data';
export const BAD_START_ERL = 'releases/start_erl.data does not hold `<erts version> <release version>` (e.g. `15.2.7 1.2.3`, the version SemVer)';
