import { routeId } from '../../deployer/commands/caddy.ts';
import { detailsFlow, type HostDetails } from '../../deployer/flows/details.ts';
import { flagCommand, noExtraArgs } from '../args.ts';
import { REMOTE_FLAGS, REMOTE_FLAGS_USAGE, reportOutcomes, withRemote } from '../remote.ts';

const USAGE = `xamal details ${REMOTE_FLAGS_USAGE}`;

/** Lines for one host: each role's live slot and version, then the app's Caddy route and upstreams. */
export function detailsLines(d: HostDetails, app: string): string[] {
  const roles = d.roles.map((r) => `${r.role}: live ${r.live ?? 'none'} (${r.version ?? 'never deployed'}), running: ${r.running.join(', ') || 'none'}${r.canary ? `; canary ${r.canary.version} in ${r.canary.slot} (${r.canary.percent}% of new sessions)` : ''}`);
  if (!d.caddy) return roles;
  const route = d.caddy.state === 'none' ? `caddy route ${routeId(app)}: none (run xamal setup)` : `caddy route ${routeId(app)}: ${d.caddy.state === 'maintenance' ? 'maintenance page (503)' : 'serving'}`;
  const ups = d.caddy.upstreams.length ? d.caddy.upstreams.map((u) => `upstream ${u.address}: ${u.num_requests ?? 0} in flight, ${u.fails ?? 0} recent failures`) : ['upstreams: none known to Caddy yet'];
  return [...roles, route, ...ups];
}

/** `xamal details`: Kamal's top-level details for this app — app details and Caddy details per host. */
export default flagCommand({
  usage: USAGE,
  description: "Per host: each role's live slot, version and running slots; on hosts of the primary role, the app's Caddy route (serving, maintenance page or none) and its upstreams.",
  flags: REMOTE_FLAGS,
  examples: [['xamal details', 'What runs where, and what Caddy sends it'], ['xamal details --json -r web', 'The same for the web role, as JSON']],
}, async ({ positionals, values }, io) => {
  noExtraArgs(positionals, USAGE);
  return withRemote(values, { command: 'details', secrets: false }, async (remote) =>
    reportOutcomes(io, remote, await detailsFlow(remote.ctx), { json: values.json, render: (d) => detailsLines(d, remote.ctx.layout.app) }),
  );
});
