#!/usr/bin/env node
// In a checkout the TypeScript sources run directly (tsx), so `npx xamal …` works with no build step;
// without them beside it (an installed package) the compiled CLI runs (scripts/build-cli.mjs → dist/).
import { existsSync } from 'node:fs';

const sources = new URL('../cli/entry.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import('../dist/xamal.mjs');
}
