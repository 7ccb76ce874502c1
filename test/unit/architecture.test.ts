import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import ts from 'typescript';
import { PROJECT_ROOT } from '../../localservices/config.ts';

/** The rows of the markdown table under `## heading` in ARCHITECTURE.md, as arrays of cells (backticks dropped). */
function architectureTable(heading: string): string[][] {
  const text = readFileSync(join(PROJECT_ROOT, 'ARCHITECTURE.md'), 'utf8');
  const section = text.split(/^## /m).find((s) => s.startsWith(`${heading}\n`));
  if (!section) throw new Error(`ARCHITECTURE.md has no section "## ${heading}"`);
  const rows = section.split('\n').filter((l) => l.startsWith('|')).slice(2);
  return rows.map((r) => r.split('|').slice(1, -1).map((c) => c.trim().replace(/`/g, '')));
}

/** Folder → what it may import, as ARCHITECTURE.md's "Folders" table says. */
const FOLDERS = new Map(architectureTable('Folders').map(([folder, , may]) => [folder!, may === '—' ? [] : may!.split(',').map((m) => m.trim())]));
/**
 * What only tests and benchmarks use: `testkit/` (every piece of test support: the test farm, the CLI
 * runner, test hosts and the load harness, fixtures, fakes, the integration setup) and `bench/`. They
 * may import any product part; no product part imports them.
 */
const TEST_SUPPORT = ['testkit', 'bench'];
const PARTS = [...FOLDERS.keys()].filter((f) => !f.includes('/'));
/** The product's top-level folders. */
const PRODUCT = PARTS.filter((p) => !TEST_SUPPORT.includes(p));
const partOf = (path: string) => path.split('/')[0]!;
const isProduct = (path: string) => PRODUCT.includes(partOf(path));

function filesUnder(dir: string): string[] {
  let out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out = out.concat(filesUnder(p));
    else out.push(p);
  }
  return out;
}

const sourceFiles = (dir: string) => filesUnder(dir).filter((p) => p.endsWith('.ts'));

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

/** Package → the one module (or folder, ending in `/`) that may import it: ARCHITECTURE.md's table. */
const ONE_OWNER: Record<string, string> = Object.fromEntries(architectureTable('External systems, each through one owner').map(([pkg, owner]) => [pkg!, owner!]));

/** Source folders may not be named like build output: tools skip such folders by default. */
const BUILD_OUTPUT_NAMES = ['build', 'target', 'dist', 'out', 'lib'];

/** The integration test projects: vitest.config.ts has one per folder of test/integration/. */
const INTEGRATION_PROJECTS = ['farm', 'faults', 'hosts'];

/** Longest product function, in lines (ARCHITECTURE.md). */
const MAX_FUNCTION_LINES = 80;

const owns = (owner: string, file: string) => (owner.endsWith('/') ? file.startsWith(owner) : file === owner);
/** The most specific row of the Folders table for a file (`api/schemas` before `api`). */
const folderOf = (file: string) => [...FOLDERS.keys()].filter((f) => file.startsWith(`${f}/`)).sort((a, b) => b.length - a.length)[0];
const allowed = (from: string, to: string) => {
  const folder = folderOf(from);
  if (!folder) return false;
  if (to.startsWith(`${folder}/`)) return true;
  return FOLDERS.get(folder)!.some((a) => to === a || to.startsWith(`${a}/`));
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

  it('no product part imports test support (testkit/, bench/); test support may import any product part', () => {
    const violations: string[] = [];
    for (const [file, { local }] of g) {
      if (!isProduct(file)) continue;
      for (const target of local) if ((TEST_SUPPORT as readonly string[]).includes(partOf(target))) violations.push(`${file} -> ${target}`);
    }
    expect(violations).toEqual([]);
  });

  it('dockerode, the S3 client, ssh2, BullMQ and ioredis each have one owner in the product', () => {
    const violations: string[] = [];
    for (const [file, { packages }] of g) {
      if (!isProduct(file)) continue;
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
    const long = [...g].flatMap(([file, { source }]) => (isProduct(file) ? longFunctions(file, source, MAX_FUNCTION_LINES) : []));
    expect(long).toEqual([]);
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

describe('test layout', () => {
  it('test/ holds only tests: support lives in testkit/, each integration test in a project folder', () => {
    const misplaced = filesUnder(join(PROJECT_ROOT, 'test'))
      .map((f) => relative(PROJECT_ROOT, f))
      .filter((f) => !f.includes('/__snapshots__/'))
      .filter((f) => {
        if (f.startsWith('test/unit/')) return !f.endsWith('.test.ts') || f.endsWith('.int.test.ts');
        const project = /^test\/integration\/([^/]+)\/.+\.int\.test\.ts$/.exec(f)?.[1];
        return !project || !INTEGRATION_PROJECTS.includes(project);
      });
    expect(misplaced).toEqual([]);
  });
});

describe('ARCHITECTURE.md and FACTS.md', () => {
  it('the Folders table names every top-level source folder, and each names a folder that exists', () => {
    const notSource = ['test', 'scripts', 'examples', 'node_modules', 'bin'];
    const candidates = readdirSync(PROJECT_ROOT).filter((d) => !d.startsWith('.') && !notSource.includes(d) && statSync(join(PROJECT_ROOT, d)).isDirectory());
    expect(candidates.filter((d) => sourceFiles(join(PROJECT_ROOT, d)).length > 0).sort()).toEqual([...PARTS].sort());
    for (const folder of FOLDERS.keys()) expect(statSync(join(PROJECT_ROOT, folder)).isDirectory(), folder).toBe(true);
  });

  it('every FACTS.md section that code or docs cite exists, and nothing cites a file outside the repository', () => {
    const facts = readFileSync(join(PROJECT_ROOT, 'FACTS.md'), 'utf8');
    const sections = new Set([...facts.matchAll(/^## (\S+)$/gm)].map((m) => m[1]));
    const texts = [...PARTS, 'test', 'scripts']
      .flatMap((d) => filesUnder(join(PROJECT_ROOT, d)))
      .filter((f) => /\.(ts|mjs|md)$/.test(f))
      .concat(['README.md', 'ARCHITECTURE.md', 'BENCHMARKS.md'].map((f) => join(PROJECT_ROOT, f)));
    const missing: string[] = [];
    const outside: string[] = [];
    for (const file of texts) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/FACTS\.md#([a-z0-9-]+)/g)) if (!sections.has(m[1]!)) missing.push(`${relative(PROJECT_ROOT, file)}: FACTS.md#${m[1]}`);
      if (/\bLAB\.md\b|\.\.\/shared\//.test(text)) outside.push(relative(PROJECT_ROOT, file));
    }
    expect(missing).toEqual([]);
    expect(outside).toEqual([]);
  });
});
