import { applyInit, initPlan } from '../../deployer/config/init.ts';
import { parseFlags, usageError } from '../args.ts';
import type { CliCommand } from '../io.ts';

const USAGE = 'xamal init [-q]';

/** Writes config/deploy.yml, .xamal/secrets and sample hooks; refuses to overwrite anything. */
const command: CliCommand = {
  async run(args, io) {
    const { positionals, values } = parseFlags(args, { quiet: { type: 'boolean', short: 'q' } }, USAGE);
    if (positionals.length) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`, USAGE);
    const written = await applyInit(process.cwd(), initPlan());
    for (const f of written) io.out(`created ${f}`);
    if (!values.quiet) io.err('Keep .xamal/secrets out of git (add .xamal/secrets* to .gitignore). Next: edit config/deploy.yml, then `xamal config`.');
    return 0;
  },
};
export default command;
