import { formatTarget, parseTarget, ValidationError } from '../../core/index.ts';
import { flagCommand, usageError } from '../args.ts';

const USAGE = 'xamal target parse TUPLE';

export default flagCommand({
  usage: USAGE,
  description: 'A tuple names os, arch, libc and its version, distro, OTP and Elixir: linux-x86_64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3, optionally +qualifiers.',
  flags: {},
  examples: [['xamal target parse linux-aarch64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3', 'Its fields as JSON']],
}, async ({ positionals }, io) => {
  if (positionals.length !== 1) throw usageError('expected exactly one TUPLE', USAGE);
  const r = parseTarget(positionals[0]);
  if (!r.ok) throw new ValidationError(r.issues, `invalid target tuple ${JSON.stringify(positionals[0])}`);
  io.out(JSON.stringify({ tuple: formatTarget(r.value), ...r.value }, null, 2));
  return 0;
});
