import { caddyDetails } from '../../deployer/flows/caddy.ts';
import { parseFlags, usageError } from '../args.ts';
import type { CliCommand } from '../io.ts';
import { openRemote, REMOTE_FLAGS, REMOTE_FLAGS_USAGE, reportOutcomes } from '../remote.ts';

const USAGE = `xamal caddy details ${REMOTE_FLAGS_USAGE}`;

/** `xamal caddy details`: this app's route and its upstreams' health on each host of the primary role. */
const command: CliCommand = {
  async run(args, io) {
    const { positionals, values } = parseFlags(args, REMOTE_FLAGS, USAGE);
    const [action, ...rest] = positionals;
    if (action !== 'details') throw usageError(action ? `unknown action ${JSON.stringify(action)}` : 'expected details', USAGE);
    if (rest.length) throw usageError(`unexpected argument ${JSON.stringify(rest[0])}`, USAGE);
    const remote = await openRemote(values, { command: 'caddy details', secrets: false });
    try {
      return reportOutcomes(io, remote, await caddyDetails(remote.ctx), {
        json: values.json,
        render: (d) => [
          d.route ? `route: ${JSON.stringify(d.route)}` : 'route: none (run xamal setup)',
          ...(d.upstreams.length ? d.upstreams.map((u) => `upstream ${u.address}: ${u.num_requests ?? 0} in flight, ${u.fails ?? 0} recent failures`) : ['upstreams: none known to Caddy yet']),
        ],
      });
    } finally {
      await remote.close();
    }
  },
};
export default command;
