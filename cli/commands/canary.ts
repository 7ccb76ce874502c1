import type { CanaryState } from '../../deployer/commands/canary.ts';
import { canaryEnd, canaryHosts, canaryStatus, type HostCanaryStatus } from '../../deployer/flows/canary.ts';
import { withLock } from '../../deployer/flows/lock.ts';
import { flagCommand, onlyAction, usageError } from '../args.ts';
import type { FlagTable } from '../help.ts';
import { REMOTE_FLAGS, REMOTE_FLAGS_USAGE, reportOutcomes, withRemote } from '../remote.ts';

const USAGE = `xamal canary status|promote|abort [--lock-wait SECONDS] ${REMOTE_FLAGS_USAGE}`;

const FLAGS = {
  ...REMOTE_FLAGS,
  'lock-wait': { type: 'string', valueName: 'SECONDS', description: 'promote, abort: wait this long for a deploy lock someone else holds before giving up', defaultText: '0' },
} as const satisfies FlagTable;

const ROUTE_WORDS: Record<HostCanaryStatus['route'], string> = {
  canary: 'splitting new sessions',
  booting: 'all traffic on the live slot (the canary was booting; a deploy --canary was cut off)',
  other: 'the ordinary route (no split)',
  none: 'none (run xamal setup)',
};

function statusLines(st: HostCanaryStatus): string[] {
  const running = `running: ${st.running.join(', ') || 'none'}`;
  if (!st.canary) return [`no canary; route: ${ROUTE_WORDS[st.route]}; ${running}`];
  const c = st.canary;
  return [
    `canary ${c.version} (${c.slot}): ${c.percent}% of new sessions`,
    `live ${c.live.version} (${c.live.slot}): the rest`,
    `started ${c.startedAt} by ${c.performer}`,
    `route: ${ROUTE_WORDS[st.route]}; ${running}`,
  ];
}

const endLines = (action: 'promote' | 'abort') => (st: CanaryState | undefined): string[] => {
  if (!st) return ['no canary here: nothing to do'];
  return action === 'promote'
    ? [`promoted ${st.version} (${st.slot} live; ${st.live.slot} with ${st.live.version} stopped)`]
    : [`aborted ${st.version} (${st.slot} stopped; ${st.live.version} in ${st.live.slot} serves everything)`];
};

/** `xamal canary status|promote|abort`: the canary `deploy --canary` started, on each host of the primary role. */
export default flagCommand({
  usage: USAGE,
  description: [
    'A canary runs the new version beside the live one on the hosts of the primary role (other roles untouched) and gives it a share of new sessions; a cookie per app keeps each client on its version. Its state is on the hosts (Caddy\'s route and a file in the app\'s directory), so every operator sees the same.',
    'Actions:\n  status: the share, both versions and slots, and Caddy\'s route, per host\n  promote: the ordinary switch to the canary: the old slot drained and stopped, the ordinary route, the canary live\n  abort: the canary slot drained and stopped, the ordinary route to the live version',
    'promote and abort take the deploy lock. A deploy, rollback or app boot is refused while a canary runs.',
  ].join('\n\n'),
  flags: FLAGS,
  examples: [
    ['xamal deploy --canary 10', 'Start a canary: the new version gets 10% of new sessions'],
    ['xamal canary status', 'The share and the versions on each host'],
    ['xamal canary promote', 'Every session to the canary, the old version stopped'],
    ['xamal canary abort --dry-run', 'Print the steps an abort would run'],
  ],
}, async ({ positionals, values }, io) => {
  const action = onlyAction(positionals, ['status', 'promote', 'abort'], USAGE);
  const wait = values['lock-wait'] === undefined ? undefined : Number(values['lock-wait']);
  if (wait !== undefined && !(wait >= 0)) throw usageError(`--lock-wait: expected seconds >= 0, got ${JSON.stringify(values['lock-wait'])}`, USAGE);
  return withRemote(values, { command: `canary ${action}`, secrets: false, say: (l) => io.err(l) }, async (remote) => {
    const { ctx } = remote;
    canaryHosts(ctx);
    if (action === 'status') {
      return reportOutcomes(io, remote, await canaryStatus(ctx), { json: values.json, render: statusLines, toJson: (st) => ({ canary: st.canary ?? null, route: st.route, running: st.running }) });
    }
    const out = await withLock(ctx, { message: `canary ${action}`, ...(wait !== undefined ? { waitS: wait } : {}) }, () => canaryEnd(ctx, action));
    return reportOutcomes(io, remote, out, { json: values.json, render: endLines(action), toJson: (st) => ({ [action === 'promote' ? 'promoted' : 'aborted']: st ?? null }) });
  });
});
