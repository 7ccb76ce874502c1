import { caddyDetails } from '../../deployer/flows/caddy.ts';
import { flagCommand, onlyAction } from '../args.ts';
import { REMOTE_FLAGS, REMOTE_FLAGS_USAGE, reportOutcomes, withRemote } from '../remote.ts';

const USAGE = `xamal caddy details ${REMOTE_FLAGS_USAGE}`;

/** `xamal caddy details`: this app's route and its upstreams' health on each host of the primary role. */
export default flagCommand({
  usage: USAGE,
  flags: REMOTE_FLAGS,
  examples: [['xamal caddy details --json', "The route and its upstreams' state on each host, as JSON"]],
}, async ({ positionals, values }, io) => {
  onlyAction(positionals, ['details'], USAGE);
  return withRemote(values, { command: 'caddy details', secrets: false }, async (remote) =>
    reportOutcomes(io, remote, await caddyDetails(remote.ctx), {
      json: values.json,
      render: (d) => [
        d.route ? `route: ${JSON.stringify(d.route)}` : 'route: none (run xamal setup)',
        ...(d.upstreams.length ? d.upstreams.map((u) => `upstream ${u.address}: ${u.num_requests ?? 0} in flight, ${u.fails ?? 0} recent failures`) : ['upstreams: none known to Caddy yet']),
      ],
    }),
  );
});
