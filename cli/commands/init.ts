import { applyInit, initPlan } from '../../deployer/config/init.ts';
import { flagCommand, noExtraArgs } from '../args.ts';

const USAGE = 'xamal init [-q]';

/** Writes config/deploy.yml, .xamal/secrets and sample hooks; refuses to overwrite anything. */
export default flagCommand(USAGE, { quiet: { type: 'boolean', short: 'q' } }, async ({ positionals, values }, io) => {
  noExtraArgs(positionals, USAGE);
  const written = await applyInit(process.cwd(), initPlan());
  for (const f of written) io.out(`created ${f}`);
  if (!values.quiet) io.err('Keep .xamal/secrets out of git (add .xamal/secrets* to .gitignore). Next: edit config/deploy.yml, then `xamal config`.');
  return 0;
});
