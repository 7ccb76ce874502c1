import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BuildRequestSchema } from '../../../api/schemas/builds.ts';
import { matrixFromFlags, parseBuildFlags } from '../../../cli/commands/build.ts';
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
  jobs: Record<string, { 'runs-on': string; steps: Step[] }>;
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
  const wf = parse(readFileSync(join(PROJECT_ROOT, 'examples/github-actions.yml'), 'utf8')) as Workflow;
  const steps = Object.values(wf.jobs).flatMap((j) => j.steps);
  const step = steps.find((s) => s.run?.includes('xamal build'));

  it('runs `npx xamal build` with only flags the CLI accepts, the farm URL from a variable, the pushed commit uploaded from the checkout and a matrix the CLI can read', () => {
    expect(step, 'a step that runs xamal build').toBeDefined();
    const { argv, exprs } = words(step!.run!);
    expect(argv.slice(0, 3)).toEqual(['npx', 'xamal', 'build']);
    // The CLI's own parser: an unknown or misspelt flag throws a usage error naming it.
    const { values, positionals } = parseBuildFlags(argv.slice(3));
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
