import { describe, expect, it } from 'vitest';
import { containerFailure, egressDiagnosis, toolDiagnosis } from '../../../builder/checks.ts';
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
