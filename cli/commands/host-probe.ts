import { LocalExecutor, parseProbeOutput, probeCommand, XamalError } from '../../core/index.ts';
import { flagCommand } from '../args.ts';

export default flagCommand('xamal host probe', {}, async (_flags, io) => {
  const res = await new LocalExecutor().run(probeCommand());
  if (res.code !== 0) throw new XamalError('external', `host probe exited ${res.code}: ${res.stderr.trim()}`);
  io.out(JSON.stringify(parseProbeOutput(res.stdout), null, 2));
  return 0;
});
