import { LocalExecutor, parseProbeOutput, probeCommand, XamalError } from '../../core/index.ts';
import { parseFlags } from '../args.ts';
import type { CliCommand } from '../io.ts';

const command: CliCommand = {
  async run(args, io) {
    parseFlags(args, {}, 'xamal host probe');
    const res = await new LocalExecutor().run(probeCommand());
    if (res.code !== 0) throw new XamalError('external', `host probe exited ${res.code}: ${res.stderr.trim()}`);
    io.out(JSON.stringify(parseProbeOutput(res.stdout), null, 2));
    return 0;
  },
};
export default command;
