import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import ts from 'typescript';
import { PROJECT_ROOT } from '../../localservices/config.ts';

/** The product's top-level folders (ARCHITECTURE.md lists the same, with what each holds). */
const PARTS = ['core', 'queue', 'store', 'localservices', 'images', 'builder', 'api', 'deployer', 'farm', 'cli', 'testhosts'] as const;
type Part = (typeof PARTS)[number];

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

/**
 * Which parts each part may import (besides itself); `api/schemas` is the wire contract the deployer's
 * farm client shares. `farm` is the one composition root of the farm; `cli` wires commands.
 */
const ALLOWED: Record<Part, string[]> = {
  core: [],
  queue: ['core'],
  store: ['core'],
  localservices: ['core'],
  images: ['core', 'localservices'],
  builder: ['core', 'images', 'localservices', 'queue', 'store'],
  api: ['core', 'images', 'queue', 'store'],
  deployer: ['core', 'api/schemas'],
  farm: ['core', 'api', 'builder', 'images', 'localservices', 'queue', 'store'],
  cli: ['core', 'api', 'builder', 'deployer', 'farm', 'images', 'localservices', 'queue', 'store', 'testhosts'],
  // Test hosts and the load harness (tests, benchmarks, `xamal lab`): never the product's parts.
  testhosts: ['core', 'localservices'],
};

/** What `api/schemas` may import: it is shared with clients, so only the domain. */
const SCHEMAS_MAY_IMPORT = ['core'];

/** External systems each reached through one module (or one folder, ending in `/`). */
const ONE_OWNER: Record<string, string> = {
  dockerode: 'builder/docker.ts',
  '@aws-sdk/client-s3': 'store/s3.ts',
  '@aws-sdk/lib-storage': 'store/s3.ts',
  ssh2: 'deployer/ssh.ts',
  bullmq: 'queue/',
  ioredis: 'queue/',
  // bull-board's BullMQ adapter imports bullmq at runtime: it is created next to the queues.
  '@bull-board/api/bullMQAdapter': 'queue/inspector.ts',
  fastify: 'api/',
};

/** Source folders may not be named like build output: tools skip such folders by default. */
const BUILD_OUTPUT_NAMES = ['build', 'target', 'dist', 'out', 'lib'];

/** Longest product function, in lines (ARCHITECTURE.md). */
const MAX_FUNCTION_LINES = 80;
/** Functions still over the limit, being split (issue 17): this list only shrinks. */
const STILL_LONG = [
  'store/artifact-index.ts artifactIndex',
  'store/s3.ts s3Store',
  'localservices/catalog.ts serviceSpec',
  'api/routes/builds.ts (anonymous)',
  'api/services/builds.ts buildService',
];

const owns = (owner: string, file: string) => (owner.endsWith('/') ? file.startsWith(owner) : file === owner);
const allowed = (from: string, to: string) => {
  const fromPart = partOf(from) as Part;
  if (from.startsWith('api/schemas/')) return to.startsWith('api/schemas/') || SCHEMAS_MAY_IMPORT.includes(partOf(to));
  if (partOf(to) === fromPart) return true;
  return ALLOWED[fromPart].some((a) => to === a || to.startsWith(`${a}/`));
};

/** Functions of `source` longer than `max` lines, as `name:line (n lines)`. */
function longFunctions(file: string, source: string, max: number): string[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (n: ts.Node) => {
    if (ts.isFunctionLike(n) && 'body' in n && n.body) {
      const first = sf.getLineAndCharacterOfPosition(n.getStart()).line;
      const lines = sf.getLineAndCharacterOfPosition(n.getEnd()).line - first + 1;
      const name = 'name' in n && n.name ? n.name.getText() : '(anonymous)';
      if (lines > max) out.push(`${file}:${first + 1} ${name} (${lines} lines)`);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

describe('module boundaries', () => {
  const g = graph();

  it('each part imports only the parts it may (core nothing, deployer only core and the API schemas, api never builder)', () => {
    const violations: string[] = [];
    for (const [file, { local }] of g) {
      for (const target of local) {
        if (!allowed(file, target)) violations.push(`${file} -> ${target}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('dockerode, the S3 client, ssh2, BullMQ and ioredis each have one owner', () => {
    const violations: string[] = [];
    for (const [file, { packages }] of g) {
      for (const pkg of packages) {
        const owner = Object.entries(ONE_OWNER)
          .filter(([name]) => pkg === name || pkg.startsWith(`${name}/`))
          .sort((a, b) => b[0].length - a[0].length)[0];
        if (owner && !owns(owner[1], file)) violations.push(`${file} imports ${pkg} (only ${owner[1]} may)`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('no source folder is named like build output (build, target, dist, out, lib)', () => {
    const folders = new Set([...g.keys()].flatMap((f) => f.split('/').slice(0, -1)));
    expect([...folders].filter((d) => BUILD_OUTPUT_NAMES.includes(d))).toEqual([]);
  });

  it(`no product function is longer than ${MAX_FUNCTION_LINES} lines`, () => {
    const long = [...g].flatMap(([file, { source }]) => (partOf(file) === 'testhosts' ? [] : longFunctions(file, source, MAX_FUNCTION_LINES)));
    expect(long.filter((l) => !STILL_LONG.some((k) => l.startsWith(k.split(' ')[0]!) && l.includes(` ${k.split(' ')[1]} (`)))).toEqual([]);
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
