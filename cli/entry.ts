import { main } from './main.ts';

// The program `xamal`: bin/xamal.mjs runs it from the sources (tsx) or scripts/build-cli.mjs compiles it.
process.exitCode = await main(process.argv.slice(2));
// The command is done: a connection that keeps retrying (Redis or an engine gone away) must not keep
// the process alive. The timer does not hold the process itself, so a clean exit is not delayed.
setTimeout(() => process.exit(), 500).unref();
