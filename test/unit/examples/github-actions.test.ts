import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BuildRequestSchema } from '../../../api/schemas/builds.ts';
import { matrixFromFlags, parseBuildFlags } from '../../../cli/commands/build.ts';
import { parseDeployFlags } from '../../../cli/commands/deploy.ts';
import { PROJECT_ROOT } from '../../../localservices/config.ts';

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
}
interface Workflow {
  on: Record<string, unknown>;
  env: Record<string, string>;
  jobs: Record<string, { 'runs-on': string; needs?: string; steps: Step[] }>;
}

/** Splits a `run:` line into words the way the shell would here (no quotes in it), `${{ … }}` kept whole. */
function words(run: string): { argv: string[]; exprs: Map<string, string> } {
  const exprs = new Map<string, string>();
  let i = 0;
  const masked = run.replace(/\$\{\{\s*([^}]+?)\s*\}\}/g, (_m, e: string) => {
    const key = `__EXPR${i++}__`;
    exprs.set(key, e);
    return key;
  });
  expect(masked, 'no quoting in the xamal build line').not.toMatch(/['"\\]/);
  const argv = masked.split(/\s+/).filter(Boolean);
  const redirect = argv.indexOf('>');
  return { argv: redirect >= 0 ? argv.slice(0, redirect) : argv, exprs };
}

describe('examples/github-actions.yml', () => {
  const text = readFileSync(join(PROJECT_ROOT, 'examples/github-actions.yml'), 'utf8');
  const wf = parse(text) as Workflow;
  const steps = wf.jobs.build!.steps;
  const step = steps.find((s) => s.run?.includes('xamal build'));
  const install = (job: string) => wf.jobs[job]!.steps.find((s) => s.name === 'Install xamal');

  it('runs `npx xamal build` with only flags the CLI accepts, the farm URL from a variable, the pushed commit uploaded from the checkout and a matrix the CLI can read', () => {
    expect(step, 'a step that runs xamal build').toBeDefined();
    const { argv, exprs } = words(step!.run!);
    expect(argv.slice(0, 2)).toEqual(['xamal', 'build']);
    // The CLI's own parser: an unknown or misspelt flag throws a usage error naming it.
    const { values, positionals } = parseBuildFlags(argv.slice(2));
    expect(positionals).toEqual([]);
    const expr = (v: string | undefined) => v?.replace(/__EXPR\d+__/g, (k) => `\${{ ${exprs.get(k)} }}`);
    expect(expr(values.farm)).toBe('${{ vars.XAMAL_FARM_URL }}');
    expect(expr(values.commit)).toBe('${{ github.sha }}');
    expect(values.source).toBe('.');
    expect(values.git).toBeUndefined();
    expect(steps.findIndex((s) => s.uses?.startsWith('actions/checkout@'))).toBeLessThan(steps.indexOf(step!));
    expect(values.app).toMatch(/^[a-z][a-z0-9_]*$/);
    expect(values.target).toBeUndefined();
    expect(matrixFromFlags(values.matrix ?? [])).toEqual({ otp: ['25', '27'], distro: ['debian12'], arch: ['x86_64', 'aarch64'] });
    expect(Number(values.timeout)).toBeGreaterThan(0);
    // …and the farm accepts the request it makes.
    const request = { app: values.app, source: { archive: `sources/${'b'.repeat(64)}.tar.gz`, sha256: 'b'.repeat(64), commit: 'a'.repeat(40) }, matrix: matrixFromFlags(values.matrix ?? []) };
    expect(BuildRequestSchema.safeParse(request).success).toBe(true);
  });

  it('installs the xamal package its farm serves, pinned by version (this package\'s) and sha256, in every job before xamal runs; never npx, never a registry name', () => {
    expect(text).not.toMatch(/\bnpx\b/);
    expect(wf.env.XAMAL_CLI_VERSION).toBe((JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    for (const job of ['build', 'deploy']) {
      const s = install(job);
      expect(s, `${job}: an Install xamal step`).toBeDefined();
      const lines = s!.run!.trim().split('\n');
      expect(lines[0]).toBe('set -euo pipefail');
      expect(lines[1]).toMatch(/^curl -fsS .*-o "\$RUNNER_TEMP\/xamal\.tgz" "\$XAMAL_FARM_URL\/v1\/cli\/xamal-\$XAMAL_CLI_VERSION\.tgz"$/);
      expect(lines[2]).toBe('echo "$XAMAL_CLI_SHA256  $RUNNER_TEMP/xamal.tgz" | sha256sum --check --strict -');
      expect(lines[3]).toMatch(/^npm install --global .*"\$RUNNER_TEMP\/xamal\.tgz"$/);
      expect(s!.env).toEqual({ XAMAL_FARM_URL: '${{ vars.XAMAL_FARM_URL }}', XAMAL_CLI_SHA256: '${{ vars.XAMAL_CLI_SHA256 }}' });
      const jobSteps = wf.jobs[job]!.steps;
      const firstXamal = jobSteps.findIndex((x) => x !== s && /^xamal /.test(x.run ?? ''));
      expect(jobSteps.indexOf(s!), job).toBeLessThan(firstXamal);
    }
  });

  it('deploys in a second job once the build job succeeded: the pushed commit, with the token and SSH key from secrets', () => {
    const deploy = wf.jobs.deploy!;
    expect(deploy.needs).toBe('build');
    const s = deploy.steps.find((x) => x.run?.startsWith('xamal deploy'));
    const { argv, exprs } = words(s!.run!);
    expect(argv.slice(0, 2)).toEqual(['xamal', 'deploy']);
    const { values, positionals } = parseDeployFlags(argv.slice(2));
    expect(positionals).toEqual([]);
    expect(exprs.get(values.version!)).toBe('github.sha');
    expect(s!.env).toEqual({ XAMAL_FARM_TOKEN: '${{ secrets.XAMAL_FARM_TOKEN }}', SSH_PRIVATE_KEY: '${{ secrets.SSH_PRIVATE_KEY }}' });
    expect(deploy.steps.findIndex((x) => x.uses?.startsWith('actions/checkout@'))).toBe(0);
  });

  it('takes the token from the repository secrets, never from the command line', () => {
    expect(step!.env?.XAMAL_FARM_TOKEN).toBe('${{ secrets.XAMAL_FARM_TOKEN }}');
    expect(step!.run).not.toMatch(/secrets\.|TOKEN/);
  });

  it('runs on tag pushes and by hand, on Node 20', () => {
    expect(Object.keys(wf.on).sort()).toEqual(['push', 'workflow_dispatch']);
    const node = steps.find((s) => s.uses?.startsWith('actions/setup-node@'));
    expect(String(node?.with?.['node-version'])).toBe('20');
  });

  it('rejects a flag `xamal build` does not know, and a matrix key it does not know, naming them', () => {
    expect(() => parseBuildFlags(['--farm', 'http://f', '--matirx', 'otp=27'])).toThrow(/--matirx/);
    expect(() => matrixFromFlags(['otp=27', 'os=linux'])).toThrow(/--matrix os=linux: expected KEY=V1,V2 with KEY one of otp, elixir, distro, arch/);
    expect(() => matrixFromFlags(['otp='])).toThrow(/at least one value/);
    expect(matrixFromFlags(['otp=25,27;arch=x86_64', 'otp=27,28'])).toEqual({ otp: ['25', '27', '28'], arch: ['x86_64'] });
  });
});
