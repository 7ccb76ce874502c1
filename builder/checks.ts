import { compareVersions, NUMERIC_VERSION, RELEASE_VERSION } from '../core/index.ts';
import { SIGKILL_EXIT, type ContainerResult } from './docker.ts';
import type { ReleaseScan } from './elf.ts';
import { describeBytes } from './output-limit.ts';
import type { BuildStep } from './plan.ts';

/**
 * Pure checks of what a build step found, which the plan could not know beforehand. Each returns why
 * the build fails, or undefined.
 */

type ContainerStep = Extract<BuildStep, { kind: 'container' }>;

export interface StepFailure {
  /**
   * `cancelled` (asked for), `build_failed` (the build's own fault: final, with the log's tail) or
   * `external` (killed from outside the build: retried).
   */
  code: 'cancelled' | 'build_failed' | 'external';
  message: string;
}

/** Why a finished container step failed (cancelled, over its output, time or memory limit, non-zero exit, output missing). */
export function containerFailure(step: Pick<ContainerStep, 'name' | 'spec' | 'expect' | 'toolProblems'>, r: ContainerResult, sshProblems: readonly string[] = []): StepFailure | undefined {
  const { name, spec } = step;
  if (r.cancelled) return { code: 'cancelled', message: `build cancelled during ${name}` };
  if (r.outputExceeded) {
    const cap = spec.output ? describeBytes(spec.output.maxBytes) : 'its limit';
    return { code: 'build_failed', message: `step ${name} printed more than ${cap} of output; killed (XAMAL_MAX_STEP_OUTPUT_BYTES)` };
  }
  if (r.timedOut) return { code: 'build_failed', message: `${name} exceeded its time limit of ${spec.timeoutMs} ms` };
  if (r.oomKilled) return { code: 'build_failed', message: outOfMemory(name, spec, r.code) };
  if (r.code === SIGKILL_EXIT) return killedFromOutside(step, r);
  if (r.code !== 0) {
    const output = `${r.stdout}\n${r.stderr}`;
    // What the worker's git-over-ssh relay refused or saw fail (builder/git-ssh-relay.ts) is the surest reason there is.
    const why = (sshProblems.length ? [...new Set(sshProblems)].join('; ') : undefined) ?? toolDiagnosis(output, step.toolProblems ?? []) ?? (spec.networkMode === 'egress' ? egressDiagnosis(output) : undefined) ?? pidsDiagnosis(output, spec.pidsLimit);
    return { code: 'build_failed', message: `${name} failed with exit code ${r.code}${why ? `: ${why}` : ''}` };
  }
  if (step.expect && !r.stdout.includes(step.expect.stdout)) return { code: 'build_failed', message: step.expect.failure };
  return undefined;
}

const mib = (bytes: number | undefined) => (bytes ? `${Math.round(bytes / 1024 ** 2)} MiB` : "the engine's");

/** A step the kernel's OOM killer hit: the step itself (its first process) or one of its processes, and what it exited with then. */
function outOfMemory(name: string, spec: ContainerStep['spec'], code: number): string {
  const limit = mib(spec.memoryBytes);
  if (code === SIGKILL_EXIT) return `${name} ran out of memory: the kernel killed it at its memory limit of ${limit} (exit code ${code})`;
  return `${name} ran out of memory: the kernel killed one of its processes at its memory limit of ${limit}, and ${name} then failed with exit code ${code}`;
}

/**
 * Why a step was SIGKILLed (exit code 137) when none of its limits nor a cancel did it and the
 * engine saw no OOM kill: another client removed or killed its container through the engine, the
 * kernel's OOM killer was at work on the machine (FACTS.md#oom-kill), or none of these was seen.
 */
export function killedFromOutside(step: Pick<ContainerStep, 'name' | 'spec'>, r: ContainerResult): StepFailure {
  const { name, spec } = step;
  const killed = `${name} was killed with SIGKILL (exit code ${r.code})`;
  if (r.removed) {
    return { code: 'external', message: `${killed}: its container was removed while it ran, by a client other than this build (docker rm -f: another attempt of this job that took it over, or an operator); the build is retried` };
  }
  if (r.engineKills?.length) {
    return { code: 'external', message: `${killed} through the engine: a client other than this build asked it to send signal ${[...new Set(r.engineKills)].join(', ')} (docker kill, docker stop, docker rm -f, or the engine stopping); the build is retried` };
  }
  if (r.machineOomKills === undefined || r.machineOomKills > 0) {
    const seen = r.machineOomKills === undefined ? 'this machine does not say how many processes the kernel\'s OOM killer killed (no oom_kill in /proc/vmstat), so it may have been one of them' : `the kernel's OOM killer killed ${r.machineOomKills} process${r.machineOomKills === 1 ? '' : 'es'} on this machine while it ran`;
    return {
      code: 'external',
      message: `${killed}, not by the farm (time, output or disk limit, cancel) and with no OOM kill reported by the engine for its container; ${seen}: the machine ran out of memory, or the engine missed the OOM kill at the step's own limit of ${mib(spec.memoryBytes)} (FACTS.md#oom-kill); the kernel log (dmesg) names the process; the build is retried`,
    };
  }
  return {
    code: 'build_failed',
    message: `${killed}, by none of the farm's limits (time, output, memory, disk) nor a cancel, not through the engine and not by the kernel's OOM killer (none on this machine while it ran): a process of the step itself sent it, or one outside the engine (kill -9 on the worker's machine)`,
  };
}

/** Why a step whose work directory grew past the plan's disk limit failed. */
export function diskFailure(step: Pick<ContainerStep, 'name' | 'disk'>, bytes: number): string {
  return `step ${step.name} filled its work directory past ${describeBytes(step.disk.maxBytes)} (${describeBytes(bytes)} found); killed (XAMAL_MAX_BUILD_DISK_BYTES)`;
}

/** What a shell or the BEAM prints when a fork or a thread fails for want of a process slot (EAGAIN). */
const NO_PROCESS_SLOT = /Cannot fork|can't fork|fork: (?:retry: )?Resource temporarily unavailable|Resource temporarily unavailable|error 11 \(EAGAIN\)|eagain/i;

/**
 * Pure: a step that failed printing that it could not start a process or thread — at its process
 * limit (PidsLimit) these fail with EAGAIN; nothing is killed — names the limit and its setting.
 */
export function pidsDiagnosis(output: string, pidsLimit: number | undefined): string | undefined {
  if (!pidsLimit || !NO_PROCESS_SLOT.test(output)) return undefined;
  return `it could not start processes (EAGAIN), as at its limit of ${pidsLimit} processes and threads (XAMAL_BUILD_PIDS_LIMIT)`;
}

/** A git URL that does not go through an HTTP proxy nor the worker's ssh relay: `git://`. */
const UNPROXIED_GIT = /^git:\/\//;

/**
 * Pure: why a step behind the egress proxy failed, from its output — a git dependency over a
 * protocol the proxy does not carry, or a URL the proxy refused — naming the URL; else undefined.
 */
export function egressDiagnosis(output: string): string | undefined {
  for (const m of output.matchAll(/^\* Getting (\S+) \((\S+)/gm)) {
    if (UNPROXIED_GIT.test(m[2]!)) {
      return `git dependency ${m[1]} (${m[2]}) cannot be fetched: the deps step reaches the network only through the farm's HTTP(S) egress proxy, which git:// does not use; use an https:// URL whose host is in XAMAL_DEPS_ALLOW, or ssh with a deploy key in XAMAL_GIT_CREDENTIALS_FILE`;
    }
  }
  const refused = /unable to access '([^']+)': (?:The requested URL returned error: 403|.*CONNECT tunnel failed, response 403)/.exec(output);
  if (refused) return `the egress proxy refused ${refused[1]}: its host is not in XAMAL_DEPS_ALLOW`;
  return undefined;
}

/** Build tools a dependency's native code may call, and what each is. */
const TOOL_KINDS: Record<string, string> = { cc: 'a C compiler', gcc: 'a C compiler', 'c++': 'a C++ compiler', 'g++': 'a C++ compiler', make: 'make', cmake: 'cmake', autoconf: 'autoconf', 'pkg-config': 'pkg-config' };
const TOOL_NAMES = Object.keys(TOOL_KINDS).map((t) => t.replace(/[+]/g, '\\+')).join('|');
/** `sh: 1: cc: not found`, `make: cc: No such file or directory`, `** (Mix) "make" not found in the path`, `could not find an executable "cc"`. */
const MISSING_TOOL = new RegExp(`(?:^|[\\s:'"])(${TOOL_NAMES})(?::|"|') (?:not found|No such file or directory|command not found)|(?:executable|command) "(${TOOL_NAMES})"|"(${TOOL_NAMES})" not found`, 'm');

/** The dependency whose step failed: Mix's `Could not compile dependency :x`, else the last `==> x` header before `at`. */
function failingDependency(output: string, at: number): string | undefined {
  const named = /could not compile dependency :(\w+)/i.exec(output);
  if (named) return named[1];
  const headers = [...output.slice(0, at).matchAll(/^==> ([\w]+)$/gm)];
  return headers.at(-1)?.[1];
}

/**
 * Pure: a failed step's output says a tool Mix or a dependency needs is missing — Hex (a dependency
 * declares Hex packages), rebar3, or a C build tool — naming the dependency, the tool and what to
 * set; `problems` are why the farm's Hex or rebar3 preparation failed (builder/mix-tools.ts).
 */
export function toolDiagnosis(output: string, problems: string[]): string | undefined {
  const hexFor = /(?:Could not find Hex, which is needed to build dependency :(\w+)|Mix requires the Hex package manager)/.exec(output);
  if (hexFor) {
    const why = problems.find((p) => p.startsWith('Hex')) ?? 'no Hex source is configured';
    return `${hexFor[1] ? `dependency ${hexFor[1]}` : 'a dependency'} needs Hex (a dependency declares Hex packages), which this build does not have: ${why}; set XAMAL_HEX_ARCHIVE to a Hex archive (.ez) on the worker, or HEX_BUILDS_URL / HEX_MIRROR to a mirror the deps step may reach (XAMAL_DEPS_ALLOW)`;
  }
  const rebarFor = /Could not find "rebar3", which is needed to build dependency :(\w+)/.exec(output);
  if (rebarFor) {
    const why = problems.find((p) => p.startsWith('rebar3')) ?? 'no rebar3 source is configured';
    return `dependency ${rebarFor[1]} needs rebar3, which this build does not have: ${why}; set XAMAL_REBAR3 to a rebar3 escript on the worker, or HEX_BUILDS_URL to a mirror the deps step may reach`;
  }
  const tool = MISSING_TOOL.exec(output);
  if (tool) {
    const name = (tool[1] ?? tool[2] ?? tool[3])!;
    const dep = failingDependency(output, tool.index);
    return `${dep ? `dependency ${dep}` : 'the build'} needs ${name} (${TOOL_KINDS[name]}), which the builder image does not have; build in an image with build tools (the farm's Debian builders have gcc and make)`;
  }
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
