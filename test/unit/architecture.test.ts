import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/services/config.ts';

const PARTS = ['core', 'api', 'builder', 'deployer', 'images', 'cli', 'testhosts'] as const;

function sourceFiles(dir: string): string[] {
  let out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out = out.concat(sourceFiles(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Every file's imports, relative ones resolved to repo paths, packages by name. */
function graph(): Map<string, { local: string[]; packages: string[]; source: string }> {
  const g = new Map<string, { local: string[]; packages: string[]; source: string }>();
  for (const part of PARTS) {
    for (const file of sourceFiles(join(PROJECT_ROOT, part))) {
      const source = readFileSync(file, 'utf8');
      const local: string[] = [];
      const packages: string[] = [];
      for (const m of source.matchAll(IMPORT_RE)) {
        const spec = (m[1] ?? m[2])!;
        if (spec.startsWith('.')) local.push(relative(PROJECT_ROOT, resolve(dirname(file), spec)));
        else packages.push(spec);
      }
      g.set(relative(PROJECT_ROOT, file), { local, packages, source });
    }
  }
  return g;
}

const partOf = (path: string) => path.split('/')[0]!;

/** Which parts each part may import (besides itself). `cli` is the composition root. */
const ALLOWED: Record<(typeof PARTS)[number], string[]> = {
  core: [],
  images: ['core'],
  builder: ['core', 'images'],
  api: ['core', 'images'],
  deployer: ['core'],
  cli: ['core', 'api', 'builder', 'deployer', 'images', 'testhosts'],
  // Test hosts and the load harness (tests, benchmarks, `xamal lab`): never the product's parts.
  testhosts: ['core'],
};

/** External systems each reached through exactly one module. */
const ONE_MODULE: Record<string, string> = {
  dockerode: 'builder/docker.ts',
  '@aws-sdk/client-s3': 'core/storage/s3.ts',
  '@aws-sdk/lib-storage': 'core/storage/s3.ts',
  ssh2: 'deployer/ssh.ts',
  bullmq: 'core/queue.ts',
  // bull-board's BullMQ adapter imports bullmq at runtime: it is created next to the queues.
  '@bull-board/api/bullMQAdapter': 'core/queue.ts',
};

describe('module boundaries', () => {
  const g = graph();

  it('each part imports only the parts it may (core nothing, deployer only core, api never builder)', () => {
    const violations: string[] = [];
    for (const [file, { local }] of g) {
      const from = partOf(file) as (typeof PARTS)[number];
      for (const target of local) {
        const to = partOf(target);
        if (to !== from && !ALLOWED[from].includes(to)) violations.push(`${file} -> ${target}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('dockerode, the S3 client and ssh2 are each imported by one module only', () => {
    const violations: string[] = [];
    for (const [file, { packages }] of g) {
      for (const pkg of packages) {
        const owner = Object.entries(ONE_MODULE).find(([name]) => pkg === name || pkg.startsWith(`${name}/`));
        if (owner && owner[1] !== file) violations.push(`${file} imports ${pkg} (only ${owner[1]} may)`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('only config.ts files read process.env', () => {
    const readers = [...g].filter(([file, { source }]) => /process\.env\b/.test(source.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')) && !file.endsWith('/config.ts'));
    expect(readers.map(([f]) => f)).toEqual([]);
  });

  it('has no circular imports', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'visiting') {
        cycles.push([...stack.slice(stack.indexOf(f)), f].join(' -> '));
        return;
      }
      state.set(f, 'visiting');
      stack.push(f);
      for (const t of g.get(f)?.local ?? []) if (g.has(t)) visit(t);
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of g.keys()) visit(f);
    expect(cycles).toEqual([]);
  });
});
