#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so `npx xamal …` works from a checkout with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
// The command is done: a connection that keeps retrying (Redis or an engine gone away) must not keep
// the process alive. The timer does not hold the process itself, so a clean exit is not delayed.
setTimeout(() => process.exit(), 500).unref();
