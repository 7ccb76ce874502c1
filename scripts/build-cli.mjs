#!/usr/bin/env node
// Compiles the `xamal` CLI into plain JavaScript that runs with node alone: `node scripts/build-cli.mjs
// [OUTDIR]` (default dist/; inside the project, whose node_modules the output imports from) writes OUTDIR/xamal.mjs and its lazily loaded chunks (one per command, so
// `xamal --help` loads no farm code). npm packages stay imports (installed beside it). A source file's
// `import.meta.url` keeps naming that source file (rewritten relative to OUTDIR), so the paths the code
// derives from it (the project root, deploy.yml examples, s3rver) are the same as under tsx.
import { readFile, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = resolve(process.argv[2] ?? join(root, 'dist'));

/** `import.meta.url` in a project source → that source's own URL, found from the chunk's. */
const sourceUrls = {
  name: 'source-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (args.path.includes('/node_modules/') || !text.includes('import.meta.url')) return undefined;
      const rel = relative(outdir, args.path).split('\\').join('/');
      return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`), loader: 'ts' };
    });
  },
};

await rm(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints: { xamal: join(root, 'cli', 'entry.ts') },
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
  plugins: [sourceUrls],
});
if (result.errors.length > 0) process.exit(1);
process.stdout.write(`${join(outdir, 'xamal.mjs')}\n`);
