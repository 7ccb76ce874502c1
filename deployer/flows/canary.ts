import { XamalError } from '../../core/index.ts';
import { appSite, routeRequest, parseCaddyJson } from '../commands/caddy.ts';
import {
  abortPlan,
  canaryBootRequest,
  canaryRouteRequest,
  canaryRouteState,
  checkCanaryPercent,
  normalRouteRequest,
  parseCanaryState,
  promotePlan,
  readCanaryStateCommand,
  splitOf,
  writeCanaryStateCommand,
  type CanaryPlanInput,
  type CanaryRouteState,
  type CanaryState,
  type CanaryStep,
} from '../commands/canary.ts';
import { rolesOnHost, SLOTS, type Slot } from '../commands/layout.ts';
import { checkVersion } from '../commands/release.ts';
import { asRoot } from '../commands/files.ts';
import { idleSlot, parseSlotState, slotStateCommand, stopSlotCommand } from '../commands/slots.ts';
import { must, type HostSession } from '../remote.ts';
import { auditResult, recordAudit } from './audit.ts';
import { caddyCall } from './caddy.ts';
import type { RemoteContext } from './context.ts';
import type { HookRunner } from '../hooks.ts';
import { bootRole, deployFlow, runReleaseCommand, stageRelease, type ArtifactSource, type DeployResult, type HostDeployRecord } from './deploy.ts';
import { failed, onSessions, type HostOutcome } from './parallel.ts';
import { pruneAfterDeploy } from './prune.ts';

/**
 * Canary releases on the primary role's hosts (other roles untouched): `deploy --canary P` boots the
 * new version in the idle slot beside the live one and splits new sessions (commands/canary.ts);
 * `canary status` reads the split from each host (its state file and Caddy's route), `promote` and
 * `abort` carry out their plans. A second operator sees the same state: it lives on the hosts.
 */

export interface CanaryDeployOptions {
  version: string;
  percent: number;
  artifacts?: ArtifactSource;
  /** Runs pre-app-boot and post-app-boot around the canary's boot, as a deploy's boot group does. */
  hooks?: HookRunner;
}

export interface HostCanaryRecord extends HostDeployRecord {
  canary: CanaryState;
}

/** The selected hosts of the primary role: a canary acts there only. */
export function canaryHosts(ctx: RemoteContext): string[] {
  const c = ctx.config;
  const primary = c.roles.find((r) => r.name === c.primaryRole);
  const hosts = ctx.targets.hosts.filter((h) => primary?.hosts.some((x) => x.host === h));
  if (!hosts.length) throw new XamalError('usage', `canary: acts on the hosts of the primary role (${c.primaryRole}), and none is selected`);
  return hosts;
}

async function readState(ctx: RemoteContext, s: HostSession): Promise<CanaryState | undefined | 'unknown'> {
  return parseCanaryState(await must(s, readCanaryStateCommand(ctx.layout)), s.host);
}

const describe = (st: CanaryState) => `${st.version} (${st.slot}) at ${st.percent}% beside ${st.live.version} (${st.live.slot}), since ${st.startedAt} by ${st.performer}`;

/** Refuses when a canary runs on any selected host of the primary role (deploy, rollback, app boot: promote or abort it first). */
export async function refuseDuringCanary(ctx: RemoteContext): Promise<void> {
  const c = ctx.config;
  if (!ctx.targets.roles.includes(c.primaryRole) || !c.roles.find((r) => r.name === c.primaryRole)?.hosts.some((h) => ctx.targets.hosts.includes(h.host))) return;
  const found = await onSessions(ctx, (s) => readState(ctx, s), canaryHosts(ctx));
  const bad = failed(found);
  if (bad.length) throw new XamalError('external', bad.map((b) => b.error.message).join('\n'));
  const running = found.flatMap((o) => (o.ok && o.value && o.value !== 'unknown' ? [`${o.host}: ${describe(o.value)}`] : []));
  if (running.length) throw new XamalError('conflict', `a canary is running; xamal canary promote or xamal canary abort first:\n${running.join('\n')}`);
}

const versionOf = (releasePath: string | undefined) => (releasePath ? releasePath.slice(releasePath.lastIndexOf('/') + 1) : undefined);

/** A host whose canary booted: what its split needs. */
interface BootedCanary {
  rec: HostDeployRecord;
  state: CanaryState;
}

/**
 * One host: traffic pinned to the live slot, the new version booted and health-checked in the idle
 * slot. A failed boot puts the ordinary route back (the new slot is already stopped).
 */
async function bootCanary(ctx: RemoteContext, s: HostSession, opts: CanaryDeployOptions, rec: HostDeployRecord): Promise<BootedCanary> {
  const c = ctx.config;
  const site = appSite(c, ctx.layout);
  const raw = await must(s, slotStateCommand(ctx.layout, c.primaryRole));
  const slots = parseSlotState(raw);
  const idle = idleSlot(slots);
  const live: Slot = idle === 'blue' ? 'green' : 'blue';
  // An empty answer is a dry run's: the steps are shown with a stand-in for the live version.
  const liveVersion = raw.trim() ? versionOf(slots.slots[live].release) : 'LIVE_VERSION';
  if (!liveVersion || (raw.trim() && !slots.slots[live].active)) {
    throw new XamalError('not_found', `${s.host}: nothing runs in ${c.primaryRole}-${live}: a canary runs beside the live version (xamal deploy first)`);
  }
  if (liveVersion === opts.version) throw new XamalError('usage', `${s.host}: ${opts.version} is already live; a canary needs another version`);
  const state: CanaryState = { version: opts.version, slot: idle, live: { version: liveVersion, slot: live }, percent: opts.percent, startedAt: ctx.clock.now().toISOString(), performer: ctx.performer };
  const role = rolesOnHost(c, s.host).find((r) => r.name === c.primaryRole)!;
  await caddyCall(s, canaryBootRequest(site, live));
  try {
    await bootRole(ctx, s, role, { version: opts.version }, rec);
  } catch (err) {
    await s.caddy(normalRouteRequest(site)).catch(() => undefined);
    await recordAudit(ctx, s, { version: opts.version, result: auditResult(err) });
    throw err;
  }
  return { rec, state };
}

/** One booted host: the state file written, then the split. */
async function splitCanary(ctx: RemoteContext, s: HostSession, { rec, state }: BootedCanary): Promise<HostCanaryRecord> {
  await must(s, writeCanaryStateCommand(ctx.layout, state));
  await caddyCall(s, canaryRouteRequest(appSite(ctx.config, ctx.layout), splitOf(state)));
  await recordAudit(ctx, s, { version: state.version, result: `ok: canary ${state.percent}% beside ${state.live.version}` });
  ctx.step?.(s.host, `canary ${state.percent}%`);
  return { ...rec, canary: state };
}

/**
 * A booted canary taken back (post-app-boot failed): its slot stopped while the route still prefers
 * the live one, then the ordinary route. Traffic never reached it.
 */
async function unbootCanary(ctx: RemoteContext, s: HostSession, { state }: BootedCanary, err: unknown): Promise<void> {
  const c = ctx.config;
  await must(s, asRoot(stopSlotCommand(ctx.layout.app, c.primaryRole, state.slot, c.drainTimeout), ctx.sshUser(s.host)));
  await caddyCall(s, normalRouteRequest(appSite(c, ctx.layout)));
  await recordAudit(ctx, s, { version: state.version, result: auditResult(err) });
}

/**
 * `deploy --canary P`: refused where a canary already runs; the release staged on every host of the
 * primary role first (nothing boots until all have it), release_command once; pre-app-boot with
 * those hosts, each boots its canary, post-app-boot with those that booted (a failure there stops
 * them again: no split anywhere), then each splits. The caller holds the lock.
 */
export async function canaryDeployFlow(ctx: RemoteContext, opts: CanaryDeployOptions): Promise<HostOutcome<HostCanaryRecord>[]> {
  checkVersion(opts.version);
  checkCanaryPercent(opts.percent);
  const hook: HookRunner = opts.hooks ?? (async () => {});
  const hosts = canaryHosts(ctx);
  await refuseDuringCanary(ctx);
  const records = new Map<string, HostDeployRecord>(hosts.map((h) => [h, { host: h, version: opts.version, roles: [], pulled: false, durationsMs: {} }]));
  // Every host says what it needs, each artifact is verified, then they pull; a failure throws before any canary starts.
  await stageRelease(ctx, { version: opts.version, ...(opts.artifacts ? { artifacts: opts.artifacts } : {}) }, records, hosts);
  if (ctx.config.releaseCommand) await runReleaseCommand(ctx, opts.version);
  await hook('pre-app-boot', { hosts });
  const booted = await onSessions(ctx, (s, h) => bootCanary(ctx, s, opts, records.get(h)!), hosts);
  const ready = new Map(booted.flatMap((o) => (o.ok ? [[o.host, o.value] as const] : [])));
  if (ready.size) {
    try {
      await hook('post-app-boot', { hosts: [...ready.keys()] });
    } catch (err) {
      await onSessions(ctx, (s, h) => unbootCanary(ctx, s, ready.get(h)!, err), [...ready.keys()]);
      throw err;
    }
  }
  const split = new Map((await onSessions(ctx, (s, h) => splitCanary(ctx, s, ready.get(h)!), [...ready.keys()])).map((o) => [o.host, o]));
  return booted.map((b) => (b.ok ? { ...split.get(b.host)!, ms: b.ms + split.get(b.host)!.ms } : b));
}

export interface HostCanaryStatus {
  /** undefined: no canary on this host. */
  canary: CanaryState | undefined;
  /** What Caddy's route for the app does. */
  route: CanaryRouteState | 'none';
  running: Slot[];
}

/** `canary status`: per host of the primary role, the state file, the route's kind and the running slots. */
export function canaryStatus(ctx: RemoteContext): Promise<HostOutcome<HostCanaryStatus>[]> {
  return onSessions(ctx, async (s) => {
    const st = await readState(ctx, s);
    const route = await s.caddy(routeRequest(ctx.layout.app));
    const slots = parseSlotState(await must(s, slotStateCommand(ctx.layout, ctx.config.primaryRole)));
    return {
      canary: st === 'unknown' ? undefined : st,
      route: route.status >= 200 && route.status < 300 ? canaryRouteState(parseCaddyJson(route.body), ctx.layout.app) : 'none',
      running: SLOTS.filter((x) => slots.slots[x].active),
    };
  }, canaryHosts(ctx));
}

/** What a dry run shows promote and abort with (its empty answers name no canary). */
const DRY_RUN_STATE: CanaryState = { version: 'CANARY_VERSION', slot: 'green', live: { version: 'LIVE_VERSION', slot: 'blue' }, percent: 10, startedAt: '', performer: '' };

export function planInput(ctx: RemoteContext, host: string): CanaryPlanInput {
  const c = ctx.config;
  return { layout: ctx.layout, site: appSite(c, ctx.layout), primaryRole: c.primaryRole, drainTimeout: c.drainTimeout, healthPath: c.healthCheck.path, healthTimeout: c.healthCheck.timeout, sshUser: ctx.sshUser(host) };
}

async function apply(s: HostSession, steps: readonly CanaryStep[]): Promise<void> {
  for (const step of steps) {
    if (step.kind === 'caddy') await caddyCall(s, step.request);
    else await must(s, step.command);
  }
}

/**
 * `canary promote` (the ordinary switch to the canary) or `canary abort` (the live version alone
 * again) on each host of the primary role where a canary runs; a host without one is left as it
 * is (undefined). The caller holds the lock.
 */
export async function canaryEnd(ctx: RemoteContext, action: 'promote' | 'abort'): Promise<HostOutcome<CanaryState | undefined>[]> {
  const out = await onSessions(ctx, async (s, h) => {
    const read = await readState(ctx, s);
    if (read === undefined) return undefined;
    const state = read === 'unknown' ? DRY_RUN_STATE : read;
    const plan = action === 'promote' ? promotePlan(planInput(ctx, h), state) : abortPlan(planInput(ctx, h), state);
    ctx.step?.(h, `canary ${action}`);
    try {
      await apply(s, plan);
    } catch (err) {
      await recordAudit(ctx, s, { command: `canary ${action}`, version: state.version, result: auditResult(err) });
      throw err;
    }
    await recordAudit(ctx, s, { command: `canary ${action}`, version: state.version, result: 'ok' });
    return state;
  }, canaryHosts(ctx));
  if (out.every((o) => o.ok && o.value === undefined)) throw new XamalError('not_found', `no canary is running on ${out.map((o) => o.host).join(', ')} (xamal canary status)`);
  return out;
}

/**
 * Pure: what a promote finishes beyond the primary role's switch — the selected roles other than
 * the primary one, and the selected hosts that run any of them — as an ordinary deploy of the
 * canary's version would.
 */
export function promoteRest(config: Pick<RemoteContext['config'], 'roles' | 'primaryRole'>, targets: Pick<RemoteContext['targets'], 'roles' | 'hosts'>): { roles: string[]; hosts: string[] } {
  const roles = config.roles.filter((r) => r.name !== config.primaryRole && targets.roles.includes(r.name));
  const hosts = targets.hosts.filter((h) => roles.some((r) => r.hosts.some((x) => x.host === h)));
  return { roles: hosts.length ? roles.map((r) => r.name) : [], hosts };
}

export interface PromoteResult {
  /** The canary's version (undefined: no canary anywhere was read). */
  version: string | undefined;
  promoted: HostOutcome<CanaryState | undefined>[];
  /** The other roles' deploy (none: no other role selected, or the promote failed on a host). */
  rest?: DeployResult;
  /** Why the other roles were not deployed, when they were not. */
  restSkipped?: string;
  /** Per host that now runs the version (promoted or deployed), the releases pruned to `retain_releases`, or why that failed. */
  pruned: Map<string, HostOutcome<string[]>>;
}

/**
 * `canary promote` as the end of the deploy `deploy --canary` began: pre-caddy-switch with the
 * hosts where a canary runs, their switch (`canaryEnd`), post-caddy-switch with those switched, then
 * the other selected roles get the version the ordinary way (`deployFlow`, its boot and switch hooks
 * included), then every host now running it is pruned as after a deploy. When the promote failed on
 * a host, the other roles are left as they are (said). The caller holds the lock and runs post-deploy. `artifacts` is asked once the version is known.
 */
export async function canaryPromoteFlow(ctx: RemoteContext, opts: { hooks?: HookRunner; artifacts?: (version: string) => ArtifactSource | undefined; onVersion?: (version: string) => void } = {}): Promise<PromoteResult> {
  const hook: HookRunner = opts.hooks ?? (async () => {});
  const read = await onSessions(ctx, (s) => readState(ctx, s), canaryHosts(ctx));
  const states = read.flatMap((o) => (o.ok && o.value ? [{ host: o.host, state: o.value === 'unknown' ? DRY_RUN_STATE : o.value }] : []));
  const version = states[0]?.state.version;
  if (version) opts.onVersion?.(version);
  if (states.length) await hook('pre-caddy-switch', { hosts: states.map((x) => x.host), ...(version ? { version } : {}) });
  const promoted = await canaryEnd(ctx, 'promote');
  const live = promoted.filter((o) => o.ok && o.value).map((o) => o.host);
  if (live.length) await hook('post-caddy-switch', { hosts: live, ...(version ? { version } : {}) });
  const rest = promoteRest(ctx.config, ctx.targets);
  // As a deploy prunes where it went live (still holding the lock): the promoted hosts, and those the other roles' deploy reached.
  const prune = async (r: Omit<PromoteResult, 'pruned'>): Promise<PromoteResult> => {
    const live = [...promoted.filter((o) => o.ok && o.value), ...(r.rest?.outcomes.filter((o) => o.ok) ?? [])];
    return { ...r, pruned: await pruneAfterDeploy(ctx, live.filter((o, i) => live.findIndex((x) => x.host === o.host) === i)) };
  };
  if (!version || !rest.hosts.length) return prune({ version, promoted });
  const bad = failed(promoted);
  if (bad.length) return prune({ version, promoted, restSkipped: `${rest.roles.join(', ')} not deployed: the promote failed on ${bad.map((b) => b.host).join(', ')}` });
  ctx.say?.(`deploying ${version} to ${rest.roles.join(', ')} on ${rest.hosts.join(', ')}`);
  const artifacts = opts.artifacts?.(version);
  const restCtx: RemoteContext = { ...ctx, targets: { ...ctx.targets, roles: rest.roles, hosts: rest.hosts } };
  return prune({ version, promoted, rest: await deployFlow(restCtx, { version, ...(artifacts ? { artifacts } : {}), hooks: opts.hooks ?? hook }) });
}
