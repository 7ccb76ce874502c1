import { describe, expect, it } from 'vitest';
import { builderConfig } from '../../../builder/config.ts';
import { HEX_BUILDS_URL, mixToolsContainer, mixToolsEnv, mixToolsKey, mixToolsOutcome, TOOLS_MOUNT, type MixToolsSettings } from '../../../builder/mix-tools.ts';
import { DEFAULT_LIMITS, planBuild } from '../../../builder/plan.ts';
import { isXamalError } from '../../../core/index.ts';
import { BuildJobSchema } from '../../../core/contracts/build-job.ts';

const DIGEST = `sha256:${'d'.repeat(64)}`;
const builds: MixToolsSettings = { hex: { kind: 'builds', url: HEX_BUILDS_URL }, rebar3: { kind: 'builds', url: HEX_BUILDS_URL }, hexOffline: false };
const files: MixToolsSettings = { hex: { kind: 'file', path: '/srv/hex/hex-2.1.1.ez' }, rebar3: { kind: 'file', path: '/srv/rebar3' }, hexOffline: false };
const prep = (settings: MixToolsSettings, network: 'egress' | 'none' = 'egress') => mixToolsContainer({ settings, image: { pinned: `b@${DIGEST}` }, staging: '/cache/mix-tools/k.staging-1', network, limits: DEFAULT_LIMITS });
const ok = (stdout: string) => ({ code: 0, stdout, stderr: '', timedOut: false });

describe('where builds get Hex and rebar3 (builder/mix-tools.ts)', () => {
  it('by default installs both with `mix local.hex` and `mix local.rebar` from Hex\'s builds, through the egress proxy', () => {
    const spec = prep(builds);
    expect(spec.networkMode).toBe('egress');
    expect(spec.env).toMatchObject({ HEX_BUILDS_URL: 'https://builds.hex.pm', MIX_HOME: '/tools/mix', XAMAL_REBAR3_BUILDS: '1', https_proxy: 'http://127.0.0.1:3128' });
    expect(spec.env).not.toHaveProperty('XAMAL_HEX_FILE');
    expect(spec.cmd.join(' ')).toMatch(/mix local\.hex --force/);
    expect(spec).toMatchObject({ user: '1000:1000', readOnly: true, capDrop: ['ALL'], binds: ['/cache/mix-tools/k.staging-1:/tools'] });
  });

  it('from files on the worker installs the archive with no network at all; a farm without egress never reaches a builds URL', () => {
    const spec = prep(files);
    expect(spec.networkMode).toBe('none');
    expect(spec.env).toMatchObject({ XAMAL_HEX_FILE: '/tools/in/hex-2.1.1.ez' });
    expect(spec.env).not.toHaveProperty('https_proxy');
    expect(spec.env).not.toHaveProperty('XAMAL_REBAR3_BUILDS');
    expect(prep(builds, 'none').networkMode).toBe('none');
  });

  it('keys the prepared directory by image, sources and the files\' bytes', () => {
    const k = mixToolsKey(files, DIGEST, { hex: 'a', rebar3: 'b' });
    expect(mixToolsKey(files, DIGEST, { hex: 'a', rebar3: 'b' })).toBe(k);
    expect(mixToolsKey(files, DIGEST, { hex: 'c', rebar3: 'b' })).not.toBe(k);
    expect(mixToolsKey(files, `sha256:${'e'.repeat(64)}`, { hex: 'a', rebar3: 'b' })).not.toBe(k);
    expect(mixToolsKey(builds, DIGEST, {})).not.toBe(mixToolsKey({ ...builds, hex: { kind: 'builds', url: 'https://mirror.example' } }, DIGEST, {}));
  });

  it('reads each tool\'s outcome from the container\'s output, and says why one is missing', () => {
    expect(mixToolsOutcome(builds, ok('* creating /tools/mix/archives/hex-2.1.1\nxamal-hex-exit=0\nxamal-rebar3-exit=0\n'), false)).toEqual({ hex: true, rebar3: true, problems: [] });
    const failed = mixToolsOutcome(builds, ok('** (Mix) httpc request failed with: {:failed_connect, []}\nAlternatively, you can compile and install Hex directly with this command:\n    mix archive.install github hexpm/hex branch latest\nxamal-hex-exit=1\n** (Mix) could not fetch rebar3\nxamal-rebar3-exit=1\n'), false);
    expect(failed.hex).toBe(false);
    expect(failed.problems[0]).toBe('Hex could not be installed from `mix local.hex` from https://builds.hex.pm: ** (Mix) httpc request failed with: {:failed_connect, []}');
    expect(failed.problems[1]).toBe('rebar3 could not be installed from `mix local.rebar` from https://builds.hex.pm: ** (Mix) could not fetch rebar3');
    expect(mixToolsOutcome(files, ok('xamal-hex-exit=0\n'), true)).toEqual({ hex: true, rebar3: true, problems: [] });
  });

  it('gives Mix the archives and rebar3 it has, and Hex the mirror and offline settings', () => {
    const tools = { dir: '/cache/mix-tools/k', hex: true, rebar3: false, problems: [] };
    expect(mixToolsEnv(tools, { ...builds, hexMirror: 'https://hexmirror.example', hexOffline: true })).toEqual({ MIX_ARCHIVES: `${TOOLS_MOUNT}/mix/archives`, HEX_MIRROR: 'https://hexmirror.example', HEX_OFFLINE: '1' });
    expect(mixToolsEnv({ ...tools, rebar3: true }, undefined)).toEqual({ MIX_ARCHIVES: '/build/tools/mix/archives', MIX_REBAR3: '/build/tools/rebar3' });
    expect(mixToolsEnv(undefined, builds)).toEqual({});
  });

  it('mounts the tools read-only into deps and compile, never into the release\'s smoke test, and carries why one is missing', () => {
    const tools = { dir: '/cache/mix-tools/k', hex: true, rebar3: false, problems: ['rebar3 could not be installed from x: y'] };
    const plan = planBuild({
      job: BuildJobSchema.parse({ app: 'hello', source: { kind: 'git', url: 'file:///repo', commit: 'c'.repeat(40) }, target: 'linux-x86_64-gnu2.36-debian12-otp27.3.4-elixir1.18.3' }),
      jobId: 'bjob',
      image: { ref: 'b:t', pinned: `b@${DIGEST}`, digest: DIGEST },
      source: { lockHash: 'l', configHash: 'c', mixExs: 'm', hasDeps: false, linkedDirs: [] },
      workDir: '/work/bjob-1',
      cacheDir: '/cache',
      limits: DEFAULT_LIMITS,
      depsNetwork: 'egress',
      cache: { deps: false, build: false },
      tools,
      mixTools: builds,
    });
    for (const name of ['deps', 'compile'] as const) {
      expect(plan.containers[name].binds).toContain('/cache/mix-tools/k:/build/tools:ro');
      expect(plan.containers[name].env).toMatchObject({ MIX_ARCHIVES: '/build/tools/mix/archives' });
    }
    expect(plan.containers.smoke.binds!.some((b) => b.includes('mix-tools'))).toBe(false);
    const steps = plan.steps.filter((s) => s.kind === 'container' && (s.name === 'deps' || s.name === 'compile'));
    expect(steps.map((s) => s.kind === 'container' && s.toolProblems)).toEqual([tools.problems, tools.problems]);
  });
});

describe('the farm\'s Hex and rebar3 settings', () => {
  it('default to Hex\'s builds; files and a mirror come from XAMAL_HEX_ARCHIVE, XAMAL_REBAR3, HEX_BUILDS_URL, HEX_MIRROR, HEX_OFFLINE', () => {
    expect(builderConfig({}).mixTools).toEqual(builds);
    const set = builderConfig({ XAMAL_HEX_ARCHIVE: '/srv/hex/hex-2.1.1.ez', XAMAL_REBAR3: '/srv/rebar3', HEX_MIRROR: 'https://hexmirror.example', HEX_OFFLINE: '1' }).mixTools;
    expect(set).toEqual({ ...files, hexMirror: 'https://hexmirror.example', hexOffline: true });
    expect(builderConfig({ HEX_BUILDS_URL: 'https://builds.mirror.example' }).mixTools.rebar3).toEqual({ kind: 'builds', url: 'https://builds.mirror.example' });
  });

  it.each([
    [{ XAMAL_HEX_ARCHIVE: 'hex.ez' }, /XAMAL_HEX_ARCHIVE.*absolute path of a Hex archive/],
    [{ XAMAL_HEX_ARCHIVE: '/srv/hex/hex.tar' }, /XAMAL_HEX_ARCHIVE/],
    [{ HEX_MIRROR: 'ftp://x' }, /HEX_MIRROR/],
    [{ HEX_OFFLINE: 'yes' }, /HEX_OFFLINE.*expected 1 or true/],
  ])('refuses %j naming the setting', (env, message) => {
    let err: unknown;
    try {
      builderConfig(env);
    } catch (e) {
      err = e;
    }
    expect(isXamalError(err) && err.code).toBe('validation');
    expect((err as Error).message).toMatch(message);
  });
});
