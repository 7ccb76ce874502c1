import type { CanaryState } from '../../deployer/commands/canary.ts';
import { canaryEnd, canaryHosts, canaryPromoteFlow, canaryStatus, type HostCanaryStatus } from '../../deployer/flows/canary.ts';
import { withLock } from '../../deployer/flows/lock.ts';
import { exitCodeForOutcomes, type HostOutcome } from '../../deployer/flows/parallel.ts';
import { pruneFields, prunedWords } from '../../deployer/flows/prune.ts';
import { hookRunner } from '../../deployer/hooks.ts';
import { LocalExecutor } from '../../core/index.ts';
import { farmArtifacts } from './deploy.ts';
import type { Io } from '../io.ts';
import type { Remote } from '../remote.ts';
import { flagCommand, onlyAction, usageError } from '../args.ts';
import type { FlagTable } from '../help.ts';
import { REMOTE_FLAGS, REMOTE_FLAGS_USAGE, reportOutcomes, withRemote } from '../remote.ts';

const USAGE = `xamal canary status|promote|abort [--lock-wait SECONDS] [-H|--skip-hooks] ${REMOTE_FLAGS_USAGE}`;

const FLAGS = {
  ...REMOTE_FLAGS,
  'lock-wait': { type: 'string', valueName: 'SECONDS', description: 'promote, abort: wait this long for a deploy lock someone else holds before giving up', defaultText: '0' },
  'skip-hooks': { type: 'boolean', short: 'H', description: 'promote: run none of the hooks in hooks_path (xamal docs hooks)' },
} as const satisfies FlagTable;

const ROUTE_WORDS: Record<HostCanaryStatus['route'], string> = {
  canary: 'splitting new sessions',
  booting: 'all traffic on the live slot (the canary was booting; a deploy --canary was cut off)',
  ending: 'all traffic on one slot (a canary promote or abort was cut off: run it again)',
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
    'Actions:\n  status: the share, both versions and slots, and Caddy\'s route, per host\n  promote: the ordinary switch to the canary: every request to the canary\'s slot, the old slot drained and stopped, the ordinary route, the canary live; then, as a deploy, the other roles get the version, the hooks run (pre-caddy-switch, post-caddy-switch, the other roles\' boot and switch hooks, post-deploy) and old releases are pruned\n  abort: every request to the live slot, the canary slot drained and stopped, the ordinary route; no hook runs and no other role moves',
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
    if (action === 'promote') return promote(remote, io, { json: values.json, skipHooks: values['skip-hooks'] === true, wait });
    // Abort runs nothing of the canary's version: no hook, no other role.
    const out = await withLock(ctx, { message: `canary ${action}`, ...(wait !== undefined ? { waitS: wait } : {}) }, () => canaryEnd(ctx, action));
    return reportOutcomes(io, remote, out, { json: values.json, render: endLines(action), toJson: (st) => ({ aborted: st ?? null }) });
  });
});

/**
 * `canary promote`: finishes the deploy `deploy --canary` began (deployer/flows/canary.ts
 * `canaryPromoteFlow`): the switch hooks around the primary role's switch, the other roles deployed
 * with their boot and switch hooks, then post-deploy when every host succeeded (as a deploy runs it).
 */
async function promote(remote: Remote, io: Io, o: { json: boolean | undefined; skipHooks: boolean; wait: number | undefined }): Promise<number> {
  const { ctx } = remote;
  const t0 = Date.now();
  const exec = new LocalExecutor(ctx.env as NodeJS.ProcessEnv);
  const dry = remote.recording !== undefined;
  let version = '';
  const say = (l: string) => io.err(ctx.secrets.redact(l));
  const hook = hookRunner(
    () => ({ service: ctx.config.service, version, hosts: ctx.targets.hosts, roles: ctx.targets.roles, destination: ctx.destination, performer: ctx.performer, recordedAt: new Date(), command: 'canary', subcommand: 'promote' }),
    { root: process.cwd(), hooksPath: ctx.config.hooksPath, executor: exec, secrets: ctx.secrets, say, skip: dry || o.skipHooks },
  );
  const r = await withLock(ctx, { message: 'canary promote', ...(o.wait !== undefined ? { waitS: o.wait } : {}) }, () =>
    canaryPromoteFlow(ctx, {
      hooks: (name, extra) => hook(name, { lock: true, ...extra }),
      onVersion: (v) => (version = v),
      ...(dry ? {} : { artifacts: (v: string) => farmArtifacts(ctx, v, exec, { say, warn: say }) }),
    }),
  );
  const rest: readonly HostOutcome<unknown>[] = r.rest?.outcomes ?? [];
  if (r.restSkipped) say(r.restSkipped);
  const redact = (t: string) => ctx.secrets.redact(t);
  const pruneOf = (host: string) => r.pruned.get(host);
  // The JSON record: one entry per host of the primary role (`promoted`), then one per host the other roles' deploy reached (`deployed`).
  const asJson = <T,>(x: HostOutcome<T>, fields: (value: T) => object) => (x.ok ? { host: x.host, ok: true, ms: x.ms, ...fields(x.value), ...pruneFields(pruneOf(x.host), redact) } : { host: x.host, ok: false, ms: x.ms, error: redact(x.error.message) });
  let promotedCode: number;
  if (o.json && !remote.recording) {
    io.out(JSON.stringify([...r.promoted.map((x) => asJson(x, (st) => ({ promoted: st ?? null }))), ...(r.rest?.outcomes ?? []).map((x) => asJson(x, (v) => ({ deployed: { version: v.version, roles: v.roles } })))], null, 2));
    promotedCode = exitCodeForOutcomes(r.promoted);
  } else {
    promotedCode = reportOutcomes(io, remote, r.promoted.map((x) => (x.ok ? { ...x, value: { st: x.value, host: x.host } } : x)), { render: ({ st, host }) => [...endLines('promote')(st), prunedWords(pruneOf(host), redact) ?? ''].filter(Boolean) });
  }
  const code = Math.max(promotedCode, rest.length ? exitCodeForOutcomes(rest) : 0);
  if (!o.json) for (const x of r.rest?.outcomes ?? []) io.out(x.ok ? [`${x.host}: ${x.value.roles.map((y) => y.role).join(', ')} now run ${x.value.version}`, prunedWords(pruneOf(x.host), redact)].filter(Boolean).join('; ') : `${x.host}: FAILED ${redact(x.error.message)}`);
  const allOk = code === 0 && r.promoted.every((x) => x.ok) && !r.restSkipped;
  if (allOk && r.version) await hook('post-deploy', { lock: false, runtime: (Date.now() - t0) / 1000 });
  return code;
}
