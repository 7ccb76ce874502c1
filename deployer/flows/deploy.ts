import { isXamalError, parseProbeOutput, timed as timedInto, XamalError, type Command, type HostFingerprint } from '../../core/index.ts';
import { appSite, serverFor } from '../commands/caddy.ts';
import { envFile, writeEnvFileCommand } from '../commands/env-file.ts';
import { asRoot } from '../commands/files.ts';
import { rolesOnHost, slotLayout, type Slot } from '../commands/layout.ts';
import { checkVersion, probeCommand, pullFailure, pullReleaseCommand, releasePresentCommand } from '../commands/release.ts';
import {
  healthCheckCommand,
  idleSlot,
  linkReleaseCommand,
  markLiveCommand,
  parseSlotState,
  releaseCommandCommand,
  slotStateCommand,
  startSlotCommand,
  stopSlotCommand,
  throughCaddyCommand,
  unitLogCommand,
} from '../commands/slots.ts';
import { unitInstance } from '../commands/systemd.ts';
import type { HookRunner } from '../hooks.ts';
import { must, type HostSession } from '../remote.ts';
import { releaseEnv } from '../secrets.ts';
import { auditResult, recordAudit } from './audit.ts';
import type { RemoteContext } from './context.ts';
import { failed, onSessions, type HostOutcome } from './parallel.ts';

/**
 * A deploy, host by host (in `boot.limit` groups): the artifact that fits the host (its fingerprint
 * → the farm's resolver) pulled by the host itself and verified; `release_command` once on the
 * primary host before anything moves; then per group: every role's idle slot booted and
 * health-checked on every host of the group, and only then, group-wide, the switch: the old slot
 * stopped gracefully (Caddy's `first` policy and health checks move traffic with no config reload)
 * and the app checked through Caddy — on failure the old slot is started again and the new one
 * stopped. `current` moves only after success. The boot and switch hooks run between these steps.
 */

/** Where a host's artifact comes from: the farm (resolve, verification, short-lived link). */
export interface ArtifactSource {
  resolve(host: string, fingerprint: HostFingerprint): Promise<{ tuple: string; sha256: string }>;
  /**
   * Checks a tuple's artifact (signature, provenance: deployer/trust.ts) before any host pulls it:
   * resolves with the sha256 of its signed manifest, which the hosts then check (undefined: let
   * through unverified, only when deploy.yml pins no key), or throws `verification_failed`.
   */
  verify(tuple: string): Promise<{ sha256: string | undefined }>;
  link(tuple: string): Promise<{ url: string; sha256: string }>;
}

export interface DeployOptions {
  version: string;
  /** rollback: the release must already be on the host; nothing is pulled. */
  rollback?: boolean;
  artifacts?: ArtifactSource;
  /** Runs the boot and switch hooks (pre-app-boot … post-caddy-switch) with each boot group's hosts; none when absent. */
  hooks?: HookRunner;
}

export interface HostDeployRecord {
  host: string;
  version: string;
  tuple?: string;
  /** Per role: the slot made live, the slot stopped, and the version that was live before (what an automatic rollback goes back to). */
  roles: { role: string; live: Slot; stopped?: Slot; previous?: string }[];
  pulled: boolean;
  durationsMs: Record<string, number>;
}


/** Reports `step` (the progress line), then runs `fn` timed into `d[name]`. */
function timed<T>(d: Record<string, number>, name: string, fn: () => Promise<T>, step?: () => void): Promise<T> {
  step?.();
  return timedInto(d, name, fn);
}

/** Batches of hosts per `boot.limit` (a count or a percentage); all at once when unset. */
export function bootBatches(hosts: readonly string[], limit: { hosts: number } | { percent: number } | undefined): string[][] {
  if (!limit) return [hosts.slice()];
  const size = 'hosts' in limit ? limit.hosts : Math.max(1, Math.floor((hosts.length * limit.percent) / 100));
  const out: string[][] = [];
  for (let i = 0; i < hosts.length; i += size) out.push(hosts.slice(i, i + size));
  return out;
}

/** The artifact a host needs (read only: whether the release is there, its fingerprint, the farm's answer); none when the release is there. */
async function locateRelease(ctx: RemoteContext, s: HostSession, opts: DeployOptions, rec: HostDeployRecord): Promise<Chosen | undefined> {
  const present = (await s.run(releasePresentCommand(ctx.layout, opts.version))).code === 0;
  if (present) return undefined;
  if (opts.rollback) throw new XamalError('not_found', `${s.host}: release ${opts.version} is not on this host (rollback only goes to a retained release; see xamal app releases)`);
  if (!opts.artifacts) throw new XamalError('usage', 'farm: not configured in deploy.yml (farm.url): there is no artifact to deploy');
  const fp = await timed(rec.durationsMs, 'probe', async () => parseProbeOutput(await must(s, probeCommand())), () => ctx.step?.(s.host, 'probe'));
  const chosen = await opts.artifacts.resolve(s.host, fp);
  rec.tuple = chosen.tuple;
  return chosen;
}

interface Chosen {
  tuple: string;
  sha256: string;
}

/**
 * Verifies each artifact the hosts need, once per tuple, before any host pulls: resolves with the
 * sha256 each tuple's hosts check (its signed manifest's). Any failure stops here, every failing
 * artifact named with its reason, before anything changed on a host.
 */
async function verifyArtifacts(artifacts: ArtifactSource, version: string, chosen: readonly Chosen[]): Promise<Map<string, string>> {
  const byTuple = new Map(chosen.map((c) => [c.tuple, c.sha256]));
  const results = await Promise.all(
    [...byTuple].map(async ([tuple, answered]) => {
      try {
        const { sha256 } = await artifacts.verify(tuple);
        if (sha256 !== undefined && sha256 !== answered) {
          throw new XamalError('verification_failed', `artifact ${tuple}: the farm answered sha256 ${answered}, its signed manifest says ${sha256}`);
        }
        return { tuple, sha256: sha256 ?? answered };
      } catch (err) {
        return { tuple, error: err instanceof Error ? err : new Error(String(err)) };
      }
    }),
  );
  const bad = results.filter((r): r is { tuple: string; error: Error } => 'error' in r);
  if (bad.length) {
    const code = bad.every((b) => isXamalError(b.error) && b.error.code === 'verification_failed') ? 'verification_failed' : isXamalError(bad[0]!.error) ? bad[0]!.error.code : 'external';
    throw new XamalError(code, `release ${version} was not deployed: ${bad.length === 1 ? 'its artifact' : `${bad.length} artifacts`} could not be verified; nothing was changed on any host:\n${bad.map((b) => b.error.message).join('\n')}`, { cause: bad[0]!.error });
  }
  return new Map(results.map((r) => [r.tuple, (r as { sha256: string }).sha256]));
}

/** The host pulls its verified artifact by a short-lived link and checks the sha256 from the signed manifest. */
async function pullRelease(ctx: RemoteContext, s: HostSession, opts: DeployOptions, rec: HostDeployRecord, tuple: string, sha256: string): Promise<void> {
  const link = await opts.artifacts!.link(tuple);
  if (link.sha256 !== sha256) throw new XamalError('conflict', `${s.host}: the farm's artifact for ${tuple} changed while deploying (sha256 ${sha256} → ${link.sha256})`);
  await timed(rec.durationsMs, 'pull', async () => {
    const r = await s.run(pullReleaseCommand({ layout: ctx.layout, version: opts.version, sha256 }, link.url));
    if (r.code !== 0) throw pullFailure(s.host, opts.version, r);
  }, () => ctx.step?.(s.host, `pull ${tuple}`));
  rec.pulled = true;
}

/**
 * Gets the release onto every host, plan then apply: each host says what it needs (nothing changes),
 * every artifact needed is verified, and only then do the hosts pull in parallel.
 */
export async function stageRelease(ctx: RemoteContext, opts: DeployOptions, records: Map<string, HostDeployRecord>, hosts: readonly string[] = ctx.targets.hosts): Promise<void> {
  const located = await onSessions(ctx, (s, h) => locateRelease(ctx, s, opts, records.get(h)!), hosts);
  throwStageFailures(opts.version, located);
  const needs = located.flatMap((o) => (o.ok && o.value ? [{ host: o.host, ...o.value }] : []));
  if (!needs.length) return;
  const sha = await verifyArtifacts(opts.artifacts!, opts.version, needs);
  const byHost = new Map(needs.map((n) => [n.host, n.tuple]));
  const pulled = await onSessions(ctx, (s, h) => pullRelease(ctx, s, opts, records.get(h)!, byHost.get(h)!, sha.get(byHost.get(h)!)!), [...byHost.keys()]);
  throwStageFailures(opts.version, pulled);
}

function throwStageFailures<T>(version: string, outcomes: readonly HostOutcome<T>[]): void {
  const stageFailures = failed(outcomes);
  if (stageFailures.length) {
    throw new XamalError('external', `release ${version} could not be staged; nothing was switched:\n${stageFailures.map((f) => `${f.host}: ${f.error.message}`).join('\n')}`);
  }
}

/** The role's env for a slot, plus XAMAL_VERSION (the deployed version, as Kamal sets KAMAL_VERSION). */
function slotEnv(ctx: RemoteContext, role: { name: string; tags: string[] }, version: string) {
  const e = releaseEnv(ctx.config, ctx.secrets, role.name, role.tags);
  return { ...e, clear: { ...e.clear, XAMAL_VERSION: version } };
}

/** A role's new slot, booted and healthy, not yet live: the old slot still serves. */
export interface BootedRole {
  role: { name: string; tags: string[] };
  idle: Slot;
  live: Slot;
  liveRunning: boolean;
  port: number;
  /** The version the live slot runs (before the switch). */
  previous: string | undefined;
}

/** Boots the role's idle slot with the release and health-checks it; the old slot keeps serving. */
export async function bootRole(ctx: RemoteContext, s: HostSession, role: { name: string; tags: string[] }, opts: DeployOptions, rec: HostDeployRecord): Promise<BootedRole> {
  const c = ctx.config;
  const root = (cmd: Command) => asRoot(cmd, ctx.sshUser(s.host));
  const state = parseSlotState(await must(s, slotStateCommand(ctx.layout, role.name)));
  const idle = idleSlot(state);
  const live: Slot = idle === 'blue' ? 'green' : 'blue';
  const slot = slotLayout(c, ctx.layout, role.name, idle);
  const d = rec.durationsMs;
  const key = (n: string) => `${role.name}.${n}`;
  const step = (n: string) => () => ctx.step?.(s.host, `${role.name}-${idle} ${n}`);

  await must(s, linkReleaseCommand(ctx.layout, slot, opts.version));
  const env = envFile(ctx.layout, slot, slotEnv(ctx, role, opts.version), ctx.secrets.get('RELEASE_COOKIE'));
  await must(s, writeEnvFileCommand(ctx.layout, slot, env, ctx.sshUser(s.host), `write ${role.name}-${idle} env`));
  await timed(d, key('boot'), () => must(s, root(startSlotCommand(ctx.layout.app, role.name, idle))), step('boot'));
  const unit = unitInstance(ctx.layout.app, role.name, idle);
  const healthy = await timed(d, key('health'), () => s.run(healthCheckCommand(slot.port, c.healthCheck.path, c.healthCheck.interval, c.healthCheck.timeout, unit)), step('health check'));
  if (healthy.code !== 0) {
    const log = (await s.run(unitLogCommand(ctx.layout.app, role.name, idle))).stdout.trim().split('\n').slice(-8).join('\n');
    await s.run(root(stopSlotCommand(ctx.layout.app, role.name, idle, c.drainTimeout)));
    throw new XamalError('external', `${s.host}: ${role.name} ${opts.version} failed its health check (${c.healthCheck.path} on :${slot.port}: last status ${healthy.stdout.trim() || 'none'} after ${c.healthCheck.timeout} s); the old version keeps serving.${log ? `\nlast log lines:\n${ctx.secrets.redact(log)}` : ''}`);
  }
  const before = state.slots[live].release;
  return { role, idle, live, liveRunning: state.slots[live].active, port: slot.port, previous: before ? versionOf(before) : undefined };
}

/**
 * Makes a booted role live: the old slot stopped gracefully; for the role behind Caddy, the app
 * checked through Caddy (on failure: switched back, old slot started again, new one stopped).
 */
async function switchRole(ctx: RemoteContext, s: HostSession, b: BootedRole, opts: DeployOptions, rec: HostDeployRecord): Promise<void> {
  const c = ctx.config;
  const root = (cmd: Command) => asRoot(cmd, ctx.sshUser(s.host));
  const { role, idle, live, liveRunning } = b;
  const d = rec.durationsMs;
  const key = (n: string) => `${role.name}.${n}`;
  const step = (n: string) => () => ctx.step?.(s.host, `${role.name}-${idle} ${n}`);
  const behindCaddy = role.name === c.primaryRole;
  if (liveRunning) {
    // The old slot stops gracefully: it closes its listener, finishes requests in flight; Caddy's
    // health checks and retries send everything to the new slot meanwhile (no config change).
    await timed(d, key('stopOld'), () => must(s, root(stopSlotCommand(ctx.layout.app, role.name, live, c.drainTimeout))), () => ctx.step?.(s.host, `${role.name}-${live} stop (drain)`));
  }
  if (behindCaddy && c.caddy.hosts.length > 0) {
    const site = appSite(c, ctx.layout);
    const check = await timed(d, key('verify'), () => s.run(throughCaddyCommand({ hosts: site.hosts, https: serverFor(site).name === 'xamal' }, c.healthCheck.path, c.healthCheck.timeout)), step('check through Caddy'));
    if (check.code !== 0) {
      // Switch back: the old slot again, the new one stopped.
      if (liveRunning) await s.run(root(startSlotCommand(ctx.layout.app, role.name, live)));
      await s.run(root(stopSlotCommand(ctx.layout.app, role.name, idle, c.drainTimeout)));
      const [status, ...why] = check.stdout.trim().split(' ');
      throw new XamalError('external', `${s.host}: ${opts.version} answered on :${b.port} but not through Caddy within ${c.healthCheck.timeout} s (status ${status || 'none'}${why.length ? `: ${ctx.secrets.redact(why.join(' '))}` : ''}); switched back to the old version`);
    }
  }
  await must(s, markLiveCommand(ctx.layout, role.name, idle, opts.version, behindCaddy || role.name === rolesOnHost(c, s.host)[0]?.name));
  rec.roles.push({ role: role.name, live: idle, ...(liveRunning ? { stopped: live } : {}), ...(b.previous && b.previous !== opts.version ? { previous: b.previous } : {}) });
  step('live')();
}

/** Stops new slots that booted but will not go live (another role failed, or a hook stopped the deploy): the old ones keep serving. */
async function stopBooted(ctx: RemoteContext, s: HostSession, booted: readonly BootedRole[]): Promise<void> {
  for (const b of booted) await s.run(asRoot(stopSlotCommand(ctx.layout.app, b.role.name, b.idle, ctx.config.drainTimeout), ctx.sshUser(s.host)));
}

/** Boots every selected role of the host; when one fails, those already booted are stopped again (nothing switched). */
async function bootHost(ctx: RemoteContext, s: HostSession, opts: DeployOptions, rec: HostDeployRecord): Promise<BootedRole[]> {
  const booted: BootedRole[] = [];
  try {
    for (const role of rolesOnHost(ctx.config, s.host).filter((r) => ctx.targets.roles.includes(r.name))) booted.push(await bootRole(ctx, s, role, opts, rec));
  } catch (err) {
    await stopBooted(ctx, s, booted);
    await recordAudit(ctx, s, { version: opts.version, result: auditResult(err) });
    throw err;
  }
  return booted;
}

/** Makes the host's booted roles live in turn; when one fails (switched back), the rest are stopped, not switched. */
async function switchHost(ctx: RemoteContext, s: HostSession, booted: readonly BootedRole[], opts: DeployOptions, rec: HostDeployRecord): Promise<HostDeployRecord> {
  let i = 0;
  try {
    for (; i < booted.length; i++) await switchRole(ctx, s, booted[i]!, opts, rec);
  } catch (err) {
    await stopBooted(ctx, s, booted.slice(i + 1));
    await recordAudit(ctx, s, { version: opts.version, result: auditResult(err) });
    throw err;
  }
  await recordAudit(ctx, s, { version: opts.version, result: 'ok' });
  return rec;
}

const noHooks: HookRunner = async () => {};

/**
 * One boot group (every host, or a `boot.limit` batch), with its hooks run once for the group:
 * pre-app-boot; every host boots and health-checks its new slots (a barrier: all hosts finish,
 * well or not, before anything switches); post-app-boot and pre-caddy-switch with the hosts that
 * booted; those hosts switch; post-caddy-switch with the hosts now live. A hook that fails before
 * the switch stops the new slots again: traffic never moved. Outcomes go to `out` in group order.
 */
async function bootGroup(ctx: RemoteContext, group: readonly string[], opts: DeployOptions, records: Map<string, HostDeployRecord>, out: HostOutcome<HostDeployRecord>[]): Promise<void> {
  const hook = opts.hooks ?? noHooks;
  await hook('pre-app-boot', { hosts: group });
  const booted = await onSessions(ctx, (s, h) => bootHost(ctx, s, opts, records.get(h)!), group);
  const ready = new Map(booted.flatMap((o) => (o.ok ? [[o.host, o] as const] : [])));
  const readyHosts = [...ready.keys()];
  if (readyHosts.length) {
    try {
      await hook('post-app-boot', { hosts: readyHosts });
      await hook('pre-caddy-switch', { hosts: readyHosts });
    } catch (err) {
      await onSessions(ctx, async (s, h) => {
        await stopBooted(ctx, s, ready.get(h)!.value);
        await recordAudit(ctx, s, { version: opts.version, result: auditResult(err) });
      }, readyHosts);
      throw err;
    }
  }
  const switched = new Map((await onSessions(ctx, (s, h) => switchHost(ctx, s, ready.get(h)!.value, opts, records.get(h)!), readyHosts)).map((o) => [o.host, o]));
  for (const b of booted) {
    const sw = switched.get(b.host);
    out.push(b.ok && sw ? { ...sw, ms: b.ms + sw.ms } : (b as Extract<typeof b, { ok: false }>));
  }
  const live = [...switched.values()].filter((o) => o.ok).map((o) => o.host);
  if (live.length) await hook('post-caddy-switch', { hosts: live });
}

export interface DeployResult {
  outcomes: HostOutcome<HostDeployRecord>[];
}

/**
 * Runs the deploy (or rollback) on the selected hosts. The caller holds the lock and runs the
 * command's hooks (pre-connect, pre-build, pre-deploy, post-deploy); the boot and switch hooks run
 * here, once per boot group (`opts.hooks`).
 */
export async function deployFlow(ctx: RemoteContext, opts: DeployOptions): Promise<DeployResult> {
  checkVersion(opts.version);
  const c = ctx.config;
  const hosts = ctx.targets.hosts;
  const records = new Map<string, HostDeployRecord>(hosts.map((h) => [h, { host: h, version: opts.version, roles: [], pulled: false, durationsMs: {} }]));

  // 1. Every host gets the release first (in parallel), its artifact verified before any host pulls: nothing boots until all have it.
  await stageRelease(ctx, opts, records);

  // 2. release_command once, on the primary host, with the new release and the real env.
  if (c.releaseCommand && !opts.rollback) await runReleaseCommand(ctx, opts.version);

  // 3. Boot and switch, group by group (boot.limit), the group's hooks around each.
  const outcomes: HostOutcome<HostDeployRecord>[] = [];
  const batches = bootBatches(hosts, c.boot.limit);
  for (const [i, batch] of batches.entries()) {
    try {
      await bootGroup(ctx, batch, opts, records, outcomes);
    } catch (err) {
      throw stoppedByHook(err, opts.version, outcomes);
    }
    if (c.boot.wait && i < batches.length - 1) await ctx.clock.sleep(c.boot.wait * 1000);
  }
  return { outcomes };
}

/** A hook's failure mid-deploy, saying where the deploy stopped: which hosts already run the version. */
function stoppedByHook(err: unknown, version: string, outcomes: readonly HostOutcome<HostDeployRecord>[]): unknown {
  if (!isXamalError(err)) return err;
  const live = outcomes.filter((o) => o.ok).map((o) => o.host);
  const where = live.length ? `${version} is live on ${live.join(', ')}; no other host was switched` : 'nothing was switched';
  return new XamalError(err.code, `${err.message}\n${where}`, { cause: err, ...(err.details ? { details: err.details } : {}) });
}

/** release_command on the primary host (when it is selected), in the idle slot with the new release and the real env. */
export async function runReleaseCommand(ctx: RemoteContext, version: string): Promise<void> {
  const c = ctx.config;
  const primary = c.roles.find((r) => r.name === c.primaryRole)?.hosts.find((h) => ctx.targets.hosts.includes(h.host));
  if (!primary) return;
  const s = await ctx.pool.session(primary.host);
  const state = parseSlotState(await must(s, slotStateCommand(ctx.layout, c.primaryRole)));
  const slot = slotLayout(c, ctx.layout, c.primaryRole, idleSlot(state));
  await must(s, linkReleaseCommand(ctx.layout, slot, version));
  const env = envFile(ctx.layout, slot, slotEnv(ctx, { name: c.primaryRole, tags: primary.tags }, version), ctx.secrets.get('RELEASE_COOKIE'));
  await must(s, writeEnvFileCommand(ctx.layout, slot, env, ctx.sshUser(s.host)));
  ctx.say?.(`${primary.host}: release_command`);
  const r = await s.run(asRoot(releaseCommandCommand(ctx.layout, slot, version, c.releaseCommand!, c.deployTimeout * 4), ctx.sshUser(s.host)));
  if (r.code !== 0) {
    throw new XamalError('external', `release_command failed on ${primary.host} (exit ${r.code}); nothing was switched:\n${ctx.secrets.redact((r.stderr || r.stdout).trim().split('\n').slice(-10).join('\n'))}`);
  }
}

/** The version a rollback without an argument goes to: what the idle slot of the primary role points at. */
export async function previousVersion(ctx: RemoteContext, host: string): Promise<string> {
  const st = await primarySlotState(ctx, host);
  const prev = st.slots[idleSlot(st)].release;
  if (!prev) throw new XamalError('not_found', `${host}: no previous release to roll back to (give a version: xamal rollback VERSION)`);
  return versionOf(prev);
}

/** The version `app boot` boots again by default: what `current` points at on the primary host. */
export async function currentVersion(ctx: RemoteContext, host: string): Promise<string> {
  const cur = (await primarySlotState(ctx, host)).current;
  if (!cur) throw new XamalError('not_found', `${host}: nothing deployed yet (xamal deploy first, or give --version)`);
  return versionOf(cur);
}

async function primarySlotState(ctx: RemoteContext, host: string) {
  const s = await ctx.pool.session(host);
  return parseSlotState(await must(s, slotStateCommand(ctx.layout, ctx.config.primaryRole)));
}

const versionOf = (releasePath: string) => releasePath.slice(releasePath.lastIndexOf('/') + 1);
