import { appSite, serverFor } from '../commands/caddy.ts';
import { appDetails, type RoleDetails } from './app.ts';
import { slotPort } from '../commands/layout.ts';
import { accessLogSizeCommand, countAccessLogCommand, parseAccessLogCount } from '../commands/access-log.ts';
import { asRoot } from '../commands/files.ts';
import { clearFailedCommand, markFailedCommand, parseProbe, readAttemptCommand, readFailedCommand, watchProbeCommand, watchProbeTimeoutS } from '../commands/rollout.ts';
import { auditResult, recordAudit } from './audit.ts';
import type { RemoteContext } from './context.ts';
import { deployFlow, type HostDeployRecord } from './deploy.ts';
import { failed as failedOf, onSessions, type HostOutcome } from './parallel.ts';
import type { ResumePlan } from './resume.ts';
import { failedVersionRefusal, latestAttempt, parseFailedMarks, rollbackTargets, silentAccessLogs, watchVerdict, type AttemptOutcome, type AttemptRecord, type FailedMark, type FiveXx, type HostCounts, type WatchAnswer, type WatchVerdict } from './rollout-plan.ts';

/**
 * A watched rollout (`rollout.watch`): after the switch, the health path is requested on every host
 * the version went live on — through Caddy, as users reach it — every `interval` for the window. The
 * verdict is `watchVerdict`'s (pure). On failure the previous version is booted in the idle slot and
 * switched back (the `xamal rollback` way: `deployFlow` with `rollback`), and the version is marked
 * failed on every host of the app (`APP/failed/<version>.json`), so a later deploy of it by anyone
 * is refused without `--force`.
 */

export interface WatchReport {
  result: 'passed' | 'failed';
  windowS: number;
  intervalS: number;
  failures: number;
  /** What each check requests. */
  check: string;
  hosts: string[];
  checks: number;
  elapsedS: number;
  /** When failed: the host, why, and the failing answers (or the 5xx share over the maximum). */
  host?: string;
  reason?: string;
  answers?: WatchAnswer[];
  fiveXx?: FiveXx;
  /** With max_5xx_percent: each host's answers through Caddy during the watch, and how many were 5xx. */
  max5xxPercent?: number | undefined;
  counts?: Record<string, HostCounts>;
  /** Hosts whose access log counted nothing although Caddy answered the checks there (`silentAccessLogs`). */
  uncounted?: string[];
}

export interface RolloutReport {
  watch: WatchReport;
  /** When the watch failed: each host's rollback outcome, the version it went back to, hosts with none to go back to. */
  rollback?: { outcomes: HostOutcome<HostDeployRecord>[]; to: Record<string, string>; none: string[] };
  failed?: FailedMark;
}

/** Where each check goes: through Caddy when the app has host names, else to the live slot's port. */
function probeFor(ctx: RemoteContext, records: ReadonlyMap<string, HostDeployRecord>, timeoutS: number) {
  const c = ctx.config;
  const path = c.healthCheck.path;
  if (c.caddy.hosts.length) {
    const site = appSite(c, ctx.layout);
    const cmd = watchProbeCommand({ hosts: site.hosts, https: serverFor(site).name === 'xamal' }, path, timeoutS);
    return { check: `GET ${cmd.label!.replace(/^watch /, '')}`, command: () => cmd };
  }
  const port = (h: string) => slotPort(c, c.primaryRole, records.get(h)!.roles.find((r) => r.role === c.primaryRole)!.live);
  return { check: `GET ${path} on the live slot's port`, command: (h: string) => watchProbeCommand({ port: port(h) }, path, timeoutS) };
}

/**
 * With `max_5xx_percent`: each host's answers through Caddy since the watch began, counted from the
 * app's access log (read from the byte offset it had then, FACTS.md#caddy). A host whose log cannot
 * be read keeps its counts (the health checks still judge it).
 */
class AccessCounts {
  readonly counts = new Map<string, HostCounts>();
  private readonly offsets = new Map<string, number>();
  constructor(private readonly ctx: RemoteContext, private readonly hosts: readonly string[]) {}

  async start(): Promise<void> {
    const got = await onSessions(this.ctx, async (s) => Number((await s.run(asRoot(accessLogSizeCommand(this.ctx.layout.app), this.ctx.sshUser(s.host)))).stdout.trim()) || 0, this.hosts);
    for (const o of got) {
      this.offsets.set(o.host, o.ok ? o.value : 0);
      this.counts.set(o.host, { answers: 0, errors5xx: 0 });
    }
  }

  async read(): Promise<void> {
    const got = await onSessions(this.ctx, async (s, h) => parseAccessLogCount((await s.run(asRoot(countAccessLogCommand(this.ctx.layout.app, this.offsets.get(h) ?? 0), this.ctx.sshUser(s.host)))).stdout), this.hosts);
    for (const o of got) {
      if (!o.ok || !o.value) continue;
      const c = this.counts.get(o.host)!;
      this.counts.set(o.host, { answers: c.answers + o.value.answers, errors5xx: c.errors5xx + o.value.errors5xx });
      this.offsets.set(o.host, o.value.next);
    }
  }
}

/** Checks every `interval` until the verdict is in; every answer kept (and, with max_5xx_percent, each host's counts). */
async function watch(ctx: RemoteContext, hosts: readonly string[], records: ReadonlyMap<string, HostDeployRecord>): Promise<{ verdict: WatchVerdict; answers: WatchAnswer[]; elapsedS: number; check: string; counts?: Map<string, HostCounts> }> {
  const r = ctx.config.rollout;
  const windowS = r.watchS!;
  const access = r.max5xxPercent !== undefined ? new AccessCounts(ctx, hosts) : undefined;
  await access?.start();
  const probe = probeFor(ctx, records, watchProbeTimeoutS(r.intervalS));
  const t0 = ctx.clock.now().getTime();
  const since = () => (ctx.clock.now().getTime() - t0) / 1000;
  const answers: WatchAnswer[] = [];
  for (;;) {
    const round = since();
    const got = await onSessions(ctx, async (s, h) => ({ host: h, atS: since(), ...parseProbe((await s.run(probe.command(h))).stdout) }), hosts);
    for (const o of got) answers.push(o.ok ? o.value : { host: o.host, atS: since(), status: 0, error: ctx.secrets.redact(o.error.message.split('\n')[0]!) });
    await access?.read();
    const verdict = watchVerdict({ windowS, failures: r.failures, max5xxPercent: r.max5xxPercent, minRequests: r.minRequests }, answers, since(), probe.check, access?.counts);
    if (verdict.state !== 'watching') return { verdict, answers, elapsedS: since(), check: probe.check, ...(access ? { counts: access.counts } : {}) };
    await ctx.clock.sleep(Math.max(0, (round + r.intervalS - since()) * 1000));
  }
}

/**
 * After a deploy: watches the hosts it went live on (those of the primary role) when `rollout.watch`
 * is set; on failure rolls them back and marks the version failed. Undefined when nothing was watched.
 */
export async function watchRollout(ctx: RemoteContext, version: string, outcomes: readonly HostOutcome<HostDeployRecord>[]): Promise<RolloutReport | undefined> {
  const r = ctx.config.rollout;
  const live = outcomes.flatMap((o) => (o.ok && o.value.roles.some((x) => x.role === ctx.config.primaryRole) ? [o.value] : []));
  if (r.watchS === undefined || !live.length) return undefined;
  const hosts = live.map((x) => x.host);
  const share = r.max5xxPercent !== undefined ? `, as does more than ${r.max5xxPercent} % of 5xx through Caddy on a host after ${r.minRequests} answers` : '';
  ctx.say?.(`watching ${version} on ${hosts.join(', ')} for ${r.watchS} s (every ${r.intervalS} s; ${r.failures} failed checks in a row roll it back${share})`);
  const w = await watch(ctx, hosts, new Map(live.map((x) => [x.host, x])));
  const silent = w.counts ? silentAccessLogs(w.counts, w.answers) : [];
  if (silent.length) ctx.say?.(`${silent.join(', ')}: Caddy's access log of ${ctx.config.caddy.hosts.join(', ')} counted none of the checks that Caddy answered there: its 5xx share was not judged (xamal setup makes /var/log/caddy; FACTS.md#caddy)`);
  const report: WatchReport = {
    result: w.verdict.state === 'failed' ? 'failed' : 'passed',
    windowS: r.watchS,
    intervalS: r.intervalS,
    failures: r.failures,
    check: w.check,
    hosts,
    checks: w.answers.length,
    elapsedS: Math.round(w.elapsedS * 10) / 10,
    ...(w.counts ? { max5xxPercent: r.max5xxPercent, counts: Object.fromEntries(w.counts) } : {}),
    ...(silent.length ? { uncounted: silent } : {}),
  };
  if (w.verdict.state !== 'failed') {
    await onSessions(ctx, async (s) => recordAudit(ctx, s, { command: 'rollout watch', version, result: `ok: ${report.checks} checks in ${report.elapsedS} s` }), hosts);
    await onSessions(ctx, (s) => s.run(clearFailedCommand(ctx.layout, version)), ctx.config.hosts);
    return { watch: report };
  }
  const failed = w.verdict;
  ctx.say?.(`rollout of ${version} failed: ${ctx.secrets.redact(failed.reason)}; rolling back`);
  Object.assign(report, { host: failed.host, reason: ctx.secrets.redact(failed.reason), answers: failed.answers, ...(failed.fiveXx ? { fiveXx: failed.fiveXx } : {}) });
  await onSessions(ctx, async (s) => recordAudit(ctx, s, { command: 'rollout watch', version, result: auditResult(new Error(report.reason)) }), hosts);
  const rollback = await rollBack(ctx, live);
  const mark: FailedMark = { version, time: ctx.clock.now().toISOString(), performer: ctx.performer, host: failed.host, check: failed.fiveXx ? 'answers through Caddy (access log)' : w.check, reason: report.reason!, answers: failed.answers, ...(failed.fiveXx ? { fiveXx: failed.fiveXx } : {}), rolledBackTo: rollback.to };
  await markFailed(ctx, mark);
  return { watch: report, rollback, failed: mark };
}

/** Every switched host back to the version it ran before (grouped by that version), the `xamal rollback` way. */
async function rollBack(ctx: RemoteContext, switched: readonly HostDeployRecord[]): Promise<NonNullable<RolloutReport['rollback']>> {
  const { groups, none } = rollbackTargets(switched, ctx.config.primaryRole);
  const outcomes: HostOutcome<HostDeployRecord>[] = [];
  const to: Record<string, string> = {};
  for (const [prev, hosts] of groups) {
    ctx.say?.(`rollback to ${prev} on ${hosts.join(', ')}`);
    const rctx: RemoteContext = { ...ctx, command: 'rollback (automatic)', targets: { ...ctx.targets, hosts } };
    try {
      outcomes.push(...(await deployFlow(rctx, { version: prev, rollback: true })).outcomes);
    } catch (err) {
      outcomes.push(...hosts.map((host) => ({ host, ok: false as const, error: err as Error, ms: 0 })));
    }
    for (const h of hosts) to[h] = prev;
  }
  if (none.length) ctx.say?.(`no version to roll back to on ${none.join(', ')}: nothing ran there before; it keeps the failed version`);
  return { outcomes, to, none };
}

/** The mark on every host of the app (best effort: a host that cannot be reached is said). */
async function markFailed(ctx: RemoteContext, mark: FailedMark): Promise<void> {
  const json = ctx.secrets.redact(JSON.stringify(mark));
  const out = await onSessions(ctx, async (s) => {
    const r = await s.run(markFailedCommand(ctx.layout, mark.version, json));
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.trim()}`);
  }, ctx.config.hosts);
  for (const o of out) if (!o.ok) ctx.say?.(`${o.host}: ${mark.version} not marked failed there: ${ctx.secrets.redact(o.error.message)}`);
}

/** The failed marks kept on `hosts` (unreachable hosts skipped: a deploy fails there anyway). */
export async function readFailedMarks(ctx: RemoteContext, hosts: readonly string[]): Promise<HostOutcome<FailedMark[]>[]> {
  return onSessions(ctx, async (s) => {
    const r = await s.run(readFailedCommand(ctx.layout));
    if (r.code !== 0) throw new Error(`reading failed versions: exit ${r.code}: ${r.stderr.trim()}`);
    return parseFailedMarks(r.stdout);
  }, hosts);
}

/**
 * Refuses a deploy of a version a watched rollout rolled back (marked on the primary host or any
 * selected one), naming when and why, unless `force`.
 */
export async function refuseFailedVersion(ctx: RemoteContext, version: string, primary: string, force: boolean): Promise<void> {
  if (force) return;
  const marks = (await readFailedMarks(ctx, [...new Set([primary, ...ctx.targets.hosts])])).flatMap((o) => (o.ok ? o.value : []));
  const refusal = failedVersionRefusal(version, marks, force);
  if (refusal) throw refusal;
}

/** What `app details` adds per host: the versions marked failed there, and the last deploy attempt with its outcome. */
export interface RolloutState {
  failed: FailedMark[];
  lastDeploy: AttemptRecord | undefined;
}

export function rolloutState(ctx: RemoteContext): Promise<HostOutcome<RolloutState>[]> {
  return onSessions(ctx, async (s) => {
    const marks = await s.run(readFailedCommand(ctx.layout));
    const attempt = await s.run(readAttemptCommand(ctx.layout));
    return { failed: parseFailedMarks(marks.stdout), lastDeploy: attempt.stdout.trim() ? latestAttempt([attempt.stdout]) : undefined };
  });
}

/** `app details`: each host's roles (as `appDetails`) with its failed versions and last deploy attempt. */
export async function appDetailsWithRollout(ctx: RemoteContext): Promise<HostOutcome<{ roles: RoleDetails[] } & RolloutState>[]> {
  const apps = await appDetails(ctx);
  const states = new Map((await rolloutState(ctx)).map((o) => [o.host, o]));
  return apps.map((a) => {
    if (!a.ok) return a;
    const st = states.get(a.host);
    return { ...a, value: { roles: a.value, failed: st?.ok ? st.value.failed : [], lastDeploy: st?.ok ? st.value.lastDeploy : undefined } };
  });
}

/** Pure: the lines `app details` prints for a host's failed versions and last deploy. */
export function rolloutStateLines(st: RolloutState): string[] {
  const out = st.failed.map((f) => `failed: ${f.version} (rolled back ${f.time}, deploy by ${f.performer}): ${f.reason}`);
  const d = st.lastDeploy;
  if (!d) return out;
  const o = d.outcome;
  const counted = o?.watch?.counts ? `; through Caddy: ${Object.entries(o.watch.counts).map(([h, c]) => `${h} ${c.errors5xx} 5xx of ${c.answers}`).join(', ')}` : '';
  const how = !o ? 'not finished' : o.rolledBack ? `rolled back: ${o.rolledBack}${counted}` : `${o.failed.length ? `failed on ${o.failed.join(', ')}` : 'ok'}${o.watch ? `, watch ${o.watch.result} (${o.watch.checks} checks in ${o.watch.elapsedS} s${counted})` : ''}`;
  return [...out, `last deploy: ${d.version} (${d.command} by ${d.performer}, ${d.time}${o?.resumed ? `, resumed on ${o.resumed.hosts.join(', ')}` : ''}): ${how}`];
}

/** Pure: how a deploy (or a resume of it) ended, for its attempt record. */
export function attemptOutcome(ctx: Pick<RemoteContext, 'clock'>, outcomes: readonly HostOutcome<unknown>[], rollout: RolloutReport | undefined, resume: Pick<ResumePlan, 'act' | 'done'> | undefined): AttemptOutcome {
  const w = rollout?.watch;
  return {
    ended: ctx.clock.now().toISOString(),
    // A resume's hosts left alone already run the version.
    ok: [...new Set([...(resume?.done ?? []), ...outcomes.filter((o) => o.ok).map((o) => o.host)])],
    failed: failedOf(outcomes).map((o) => o.host),
    ...(rollout?.failed ? { rolledBack: rollout.failed.reason } : {}),
    ...(w ? { watch: { result: w.result, checks: w.checks, elapsedS: w.elapsedS, ...(w.counts ? { counts: w.counts } : {}) } } : {}),
    ...(resume ? { resumed: { time: ctx.clock.now().toISOString(), hosts: resume.act } } : {}),
  };
}
