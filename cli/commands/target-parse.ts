import { formatTarget, parseTarget, ValidationError } from '../../core/index.ts';
import { flagCommand, usageError } from '../args.ts';

const USAGE = 'xamal target parse TUPLE';

export default flagCommand(USAGE, {}, async ({ positionals }, io) => {
  if (positionals.length !== 1) throw usageError('expected exactly one TUPLE', USAGE);
  const r = parseTarget(positionals[0]);
  if (!r.ok) throw new ValidationError(r.issues, `invalid target tuple ${JSON.stringify(positionals[0])}`);
  io.out(JSON.stringify({ tuple: formatTarget(r.value), ...r.value }, null, 2));
  return 0;
});
