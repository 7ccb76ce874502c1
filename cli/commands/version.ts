import { XAMAL_VERSION } from '../version.ts';
import { flagCommand, usageError } from '../args.ts';

const USAGE = 'xamal version';

export default flagCommand({ usage: USAGE, flags: {}, examples: [['xamal --version', 'The same']] }, async ({ positionals }, io) => {
  if (positionals.length > 0) throw usageError('expected no arguments', USAGE);
  io.out(`xamal ${XAMAL_VERSION}`);
  return 0;
});
