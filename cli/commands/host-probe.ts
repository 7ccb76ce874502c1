import { LocalExecutor, parseProbeOutput, probeCommand, XamalError } from '../../core/index.ts';
import { flagCommand } from '../args.ts';

export default flagCommand({
  usage: 'xamal host probe',
  description: 'The same probe a deploy runs on each host over SSH: what the farm matches artifacts against.',
  flags: {},
  examples: [['xamal host probe', "This machine's fingerprint"]],
}, async (_flags, io) => {
  const res = await new LocalExecutor().run(probeCommand());
  if (res.code !== 0) throw new XamalError('external', `host probe exited ${res.code}: ${res.stderr.trim()}`);
  io.out(JSON.stringify(parseProbeOutput(res.stdout), null, 2));
  return 0;
});
