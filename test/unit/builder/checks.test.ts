import { describe, expect, it } from 'vitest';
import { containerFailure, egressDiagnosis, pidsDiagnosis, toolDiagnosis } from '../../../builder/checks.ts';
import type { ContainerSpec } from '../../../builder/docker.ts';

const spec = (networkMode: ContainerSpec['networkMode']): ContainerSpec => ({ image: 'i', cmd: ['mix', 'deps.get'], networkMode });
const failed = (stdout: string) => ({ code: 1, stdout, stderr: '', timedOut: false });

describe('why a deps step behind the egress proxy failed', () => {
  it('names a git dependency over git:// and says to use https or ssh with a deploy key', () => {
    const url = 'git://127.0.0.1:41053/greet.git';
    const out = `Resolving Hex dependencies...\n* Getting greet (${url} - origin/main)\nfatal: unable to connect to 127.0.0.1:\n** (Mix) Command "git --git-dir=.git fetch" failed`;
    expect(egressDiagnosis(out)).toBe(`git dependency greet (${url}) cannot be fetched: the deps step reaches the network only through the farm's HTTP(S) egress proxy, which git:// does not use; use an https:// URL whose host is in XAMAL_DEPS_ALLOW, or ssh with a deploy key in XAMAL_GIT_CREDENTIALS_FILE`);
  });

  it.each(['ssh://git@example.com/a/b.git', 'git@github.com:acme/secret.git'])('does not call a dependency over %s unfetchable: ssh goes through the worker\'s relay', (url) => {
    expect(egressDiagnosis(`* Getting b (${url} - origin/main)\n** (Mix) Command "git --git-dir=.git fetch" failed`)).toBeUndefined();
  });

  it("puts what the git-over-ssh relay refused first: the dependency's host and the setting", () => {
    const step = { kind: 'container' as const, name: 'deps', spec: spec('egress') };
    const problem = 'git over ssh to git.example: no ssh deploy key for git.example (repository acme/billing) in XAMAL_GIT_CREDENTIALS_FILE: add an entry "git.example" or "git.example/acme/billing" with ssh_key_file and known_hosts_file';
    expect(containerFailure(step, failed('* Getting billing (git@git.example:acme/billing.git - origin/main)'), [problem, problem])!.message).toBe(`deps failed with exit code 1: ${problem}`);
  });

  it('names the URL the proxy refused, over plain HTTP and over CONNECT', () => {
    expect(egressDiagnosis("* Getting a (http://10.0.0.9/a.git)\nfatal: unable to access 'http://10.0.0.9/a.git/': The requested URL returned error: 403")).toBe('the egress proxy refused http://10.0.0.9/a.git/: its host is not in XAMAL_DEPS_ALLOW');
    expect(egressDiagnosis("fatal: unable to access 'https://evil.example/x.git/': Received HTTP code 403 from proxy after CONNECT tunnel failed, response 403")).toBe('the egress proxy refused https://evil.example/x.git/: its host is not in XAMAL_DEPS_ALLOW');
  });

  it('says nothing more for failures of other kinds, and only for steps behind the proxy', () => {
    expect(egressDiagnosis('* Getting ok (https://github.com/a/b.git - origin/main)\n** (Mix) compile error')).toBeUndefined();
    const step = (networkMode: ContainerSpec['networkMode']) => ({ kind: 'container' as const, name: 'deps', spec: spec(networkMode) });
    const out = '* Getting greet (git://h/greet.git - origin/main)';
    expect(containerFailure(step('egress'), failed(out))!.message).toMatch(/^deps failed with exit code 1: git dependency greet \(git:\/\/h\/greet\.git\)/);
    expect(containerFailure(step('none'), failed(out))!.message).toBe('deps failed with exit code 1');
  });
});

describe('why a step that needed a tool failed', () => {
  const step = (problems?: string[]) => ({ kind: 'container' as const, name: 'compile', spec: spec('none'), ...(problems ? { toolProblems: problems } : {}) });

  it('names the dependency and Hex, with the setting to use, and why the farm has no Hex', () => {
    const out = '==> inner\nCould not find Hex, which is needed to build dependency :leaf\nShall I install Hex? (if running non-interactively, use "mix local.hex --force") [Yn] ==> app\n** (Mix) Could not find an SCM for dependency :leaf from Inner.MixProject';
    const why = 'Hex could not be installed from `mix local.hex` from https://builds.hex.pm: ** (Mix) httpc request failed';
    expect(containerFailure({ ...step([why]), name: 'deps' }, failed(out))!.message).toBe(
      `deps failed with exit code 1: dependency leaf needs Hex (a dependency declares Hex packages), which this build does not have: ${why}; set XAMAL_HEX_ARCHIVE to a Hex archive (.ez) on the worker, or HEX_BUILDS_URL / HEX_MIRROR to a mirror the deps step may reach (XAMAL_DEPS_ALLOW)`,
    );
    expect(toolDiagnosis(out, [])).toMatch(/needs Hex .*: no Hex source is configured; set XAMAL_HEX_ARCHIVE/);
    expect(toolDiagnosis('Mix requires the Hex package manager to fetch dependencies\nShall I install Hex?', [])).toMatch(/^a dependency needs Hex/);
  });

  it('names the dependency and rebar3', () => {
    expect(toolDiagnosis('** (Mix) Could not find "rebar3", which is needed to build dependency :telemetry', ['rebar3 could not be installed from /srv/rebar3 (XAMAL_REBAR3): gone'])).toBe(
      'dependency telemetry needs rebar3, which this build does not have: rebar3 could not be installed from /srv/rebar3 (XAMAL_REBAR3): gone; set XAMAL_REBAR3 to a rebar3 escript on the worker, or HEX_BUILDS_URL to a mirror the deps step may reach',
    );
  });

  it.each([
    // Measured: the bookworm builder before it had build tools (testkit/builder/deps-app.ts).
    ['==> inner\nGenerated inner app\n==> cnif\ncould not compile dependency :cnif, "mix compile" failed. Errors may have been logged above.\n==> deps_app\n** (Mix) "make" not found in the path', 'cnif', 'make (make)'],
    ['==> cnif\nmkdir -p /build/src/_build/prod/lib/cnif/priv\ncc -O2 -fPIC -shared -o priv/cnif.so c_src/cnif.c\nmake: cc: No such file or directory\nmake: *** [Makefile:5: priv/cnif.so] Error 127', 'cnif', 'cc (a C compiler)'],
    ['==> bcrypt_elixir\nsh: 1: gcc: not found\n** (Mix) Could not compile dependency :bcrypt_elixir, "mix compile" failed.', 'bcrypt_elixir', 'gcc (a C compiler)'],
  ])('names the dependency and the missing build tool (%#)', (out, dep, tool) => {
    expect(toolDiagnosis(out, [])).toBe(`dependency ${dep} needs ${tool}, which the builder image does not have; build in an image with build tools (the farm's Debian builders have gcc and make)`);
  });

  it('says nothing more for a failure that is no missing tool', () => {
    expect(toolDiagnosis('== Compilation error in file lib/a.ex ==\n** (CompileError) undefined function x/0', [])).toBeUndefined();
    expect(containerFailure(step(), failed('** (CompileError) lib/a.ex:1'))!.message).toBe('compile failed with exit code 1');
  });
});

describe('why a container step was killed', () => {
  const compile = { name: 'compile', spec: { image: 'i', cmd: ['mix', 'release'], networkMode: 'none' as const, memoryBytes: 4 * 1024 ** 3, timeoutMs: 1_200_000, output: { maxBytes: 64 * 1024 ** 2, keepBytes: 1024 } } };
  const killed = { code: 137, stdout: '', stderr: '', timedOut: false, machineOomKills: 0 };

  it('says a cancel, the output limit and the time limit killed it, naming the limit and its value', () => {
    expect(containerFailure(compile, { ...killed, cancelled: true })).toEqual({ code: 'cancelled', message: 'build cancelled during compile' });
    expect(containerFailure(compile, { ...killed, outputExceeded: true })).toEqual({ code: 'build_failed', message: 'step compile printed more than 64 MiB of output; killed (XAMAL_MAX_STEP_OUTPUT_BYTES)' });
    expect(containerFailure(compile, { ...killed, timedOut: true })).toEqual({ code: 'build_failed', message: 'compile exceeded its time limit of 1200000 ms' });
  });

  it('calls an OOM kill of its first process running out of memory at its limit, and one of another process too, whatever the step then exited with', () => {
    expect(containerFailure(compile, { ...killed, oomKilled: true, machineOomKills: 1 })).toEqual({ code: 'build_failed', message: 'compile ran out of memory: the kernel killed it at its memory limit of 4096 MiB (exit code 137)' });
    expect(containerFailure(compile, { ...killed, code: 1, oomKilled: true })).toEqual({
      code: 'build_failed',
      message: 'compile ran out of memory: the kernel killed one of its processes at its memory limit of 4096 MiB, and compile then failed with exit code 1',
    });
  });

  it('says a container removed by another client while it ran was killed from outside, and is retried', () => {
    expect(containerFailure(compile, { ...killed, removed: true, engineKills: ['9'] })).toEqual({
      code: 'external',
      message: 'compile was killed with SIGKILL (exit code 137): its container was removed while it ran, by a client other than this build (docker rm -f: another attempt of this job that took it over, or an operator); the build is retried',
    });
  });

  it('names the signals another client asked the engine to send, once each', () => {
    expect(containerFailure(compile, { ...killed, engineKills: ['15', '9', '9'] })).toEqual({
      code: 'external',
      message: 'compile was killed with SIGKILL (exit code 137) through the engine: a client other than this build asked it to send signal 15, 9 (docker kill, docker stop, docker rm -f, or the engine stopping); the build is retried',
    });
  });

  it('points at the machine running out of memory when the kernel OOM-killed processes while the step ran and the engine flagged none', () => {
    const f = containerFailure(compile, { ...killed, machineOomKills: 2 })!;
    expect(f.code).toBe('external');
    expect(f.message).toBe(
      "compile was killed with SIGKILL (exit code 137), not by the farm (time, output or disk limit, cancel) and with no OOM kill reported by the engine for its container; the kernel's OOM killer killed 2 processes on this machine while it ran: the machine ran out of memory, or the engine missed the OOM kill at the step's own limit of 4096 MiB (FACTS.md#oom-kill); the kernel log (dmesg) names the process; the build is retried",
    );
  });

  it('does not rule the OOM killer out where the machine does not count its kills', () => {
    const { machineOomKills: _, ...unknown } = killed;
    const f = containerFailure(compile, unknown)!;
    expect(f.code).toBe('external');
    expect(f.message).toContain("this machine does not say how many processes the kernel's OOM killer killed (no oom_kill in /proc/vmstat), so it may have been one of them");
  });

  it('with no trace of anyone, says what it ruled out and fails the build for good', () => {
    expect(containerFailure(compile, killed)).toEqual({
      code: 'build_failed',
      message: "compile was killed with SIGKILL (exit code 137), by none of the farm's limits (time, output, memory, disk) nor a cancel, not through the engine and not by the kernel's OOM killer (none on this machine while it ran): a process of the step itself sent it, or one outside the engine (kill -9 on the worker's machine)",
    });
  });

  it('leaves other exit codes to the step\'s own failure', () => {
    expect(containerFailure(compile, { ...killed, code: 1, engineKills: ['9'] })).toEqual({ code: 'build_failed', message: 'compile failed with exit code 1' });
  });
});

describe('a step at its process limit', () => {
  it('names the limit and its setting when the step failed printing that a fork or thread could not start', () => {
    const step = { name: 'compile', spec: { image: 'i', cmd: ['mix'], networkMode: 'none' as const, pidsLimit: 256 } };
    expect(containerFailure(step, { code: 2, stdout: '', stderr: 'sh: 1: Cannot fork\n', timedOut: false })).toEqual({
      code: 'build_failed',
      message: 'compile failed with exit code 2: it could not start processes (EAGAIN), as at its limit of 256 processes and threads (XAMAL_BUILD_PIDS_LIMIT)',
    });
    expect(pidsDiagnosis('bash: fork: retry: Resource temporarily unavailable', 512)).toContain('its limit of 512 processes');
  });

  it('says nothing for other failures, nor without a limit', () => {
    expect(pidsDiagnosis('** (CompileError) lib/hello.ex:1', 256)).toBeUndefined();
    expect(pidsDiagnosis('sh: 1: Cannot fork', undefined)).toBeUndefined();
  });
});
