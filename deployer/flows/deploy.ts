import { commandName, parseProbeOutput, runChecked, timed as timedInto, XamalError, type Command, type HostFingerprint } from '../../core/index.ts';
import { appSite, serverFor } from '../commands/caddy.ts';
import { envFile, writeEnvFileCommand } from '../commands/env-file.ts';
import { asRoot } from '../commands/files.ts';
import { rolesOnHost, slotLayout, type Slot } from '../commands/layout.ts';
import { checkVersion, probeCommand, pullFailure, pullReleaseCommand, releasePresentCommand } from '../commands/release.ts';
import {
  healthCheckCommand,
  idleSlot,
  linkReleaseCommand,
  listReleasesCommand,
  markLiveCommand,
  parseSlotState,
  releaseCommandCommand,
  removeReleasesCommand,
  slotStateCommand,
  startSlotCommand,
  stopSlotCommand,
  throughCaddyCommand,
  unitLogCommand,
} from '../commands/slots.ts';
import { unitInstance } from '../commands/systemd.ts';
import type { HostSession } from '../remote.ts';
import { releaseEnv } from '../secrets.ts';
import { auditResult, recordAudit } from './audit.ts';
import type { RemoteContext } from './context.ts';
import { failed, onSessions, type HostOutcome } from './parallel.ts';

/**
 * A deploy, host by host (in `boot.limit` batches): the artifact that fits the host (its fingerprint
 * → the farm's resolver) pulled by the host itself and verified; `release_command` once on the
 * primary host before anything moves; per role the idle slot booted and health-checked on the host;
 * for the role behind Caddy the old slot then stopped gracefully (Caddy's `first` policy and health
 * checks move traffic with no config reload) and the app checked through Caddy — on failure the old
 * slot is started again and the new one stopped. `current` moves only after success.
 */

/** Where a host's artifact comes from: the farm (resolve + short-lived link). */
export interface ArtifactSource {
  resolve(host: string, fingerprint: HostFingerprint): Promise<{ tuple: string; sha256: string }>;
  link(tuple: string): Promise<{ url: string; sha256: string }>;
}

export interface DeployOptions {
  version: string;
  /** rollback: the release must already be on the host; nothing is pulled. */
  rollback?: boolean;
  artifacts?: ArtifactSource;
}

export interface HostDeployRecord {
  host: string;
  version: string;
  tuple?: string;
  /** Per role: the slot made live, and the slot stopped. */
  roles: { role: string; live: Slot; stopped?: Slot }[];
  pulled: boolean;
  durationsMs: Record<string, number>;
}

/** A command's stdout; one that fails throws, naming the host, with its output's last lines. */
const must = async (s: HostSession, cmd: Command): Promise<string> => (await runChecked(s, cmd, `${s.host}: ${commandName(cmd)}`)).stdout;

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

/** Gets the release onto every host (pull, verified); resolves with each host's tuple. */
async function stageRelease(ctx: RemoteContext, s: HostSession, opts: DeployOptions, rec: HostDeployRecord): Promise<void> {
  const present = (await s.run(releasePresentCommand(ctx.layout, opts.version))).code === 0;
  if (present) return;
  if (opts.rollback) throw new XamalError('not_found', `${s.host}: release ${opts.version} is not on this host (rollback only goes to a retained release; see xamal app releases)`);
  if (!opts.artifacts) throw new XamalError('usage', 'farm: not configured in deploy.yml (farm.url): there is no artifact to deploy');
  const fp = await timed(rec.durationsMs, 'probe', async () => parseProbeOutput(await must(s, probeCommand())), () => ctx.step?.(s.host, 'probe'));
  const chosen = await opts.artifacts.resolve(s.host, fp);
  rec.tuple = chosen.tuple;
  const link = await opts.artifacts.link(chosen.tuple);
  if (link.sha256 !== chosen.sha256) throw new XamalError('conflict', `${s.host}: the farm's artifact for ${chosen.tuple} changed while deploying (sha256 ${chosen.sha256} → ${link.sha256})`);
  await timed(rec.durationsMs, 'pull', async () => {
    const r = await s.run(pullReleaseCommand({ layout: ctx.layout, version: opts.version, sha256: chosen.sha256 }, link.url));
    if (r.code !== 0) throw pullFailure(s.host, opts.version, r);
  }, () => ctx.step?.(s.host, `pull ${chosen.tuple}`));
  rec.pulled = true;
}

/** The role's env for a slot, plus XAMAL_VERSION (the deployed version, as Kamal sets KAMAL_VERSION). */
function slotEnv(ctx: RemoteContext, role: { name: string; tags: string[] }, version: string) {
  const e = releaseEnv(ctx.config, ctx.secrets, role.name, role.tags);
  return { ...e, clear: { ...e.clear, XAMAL_VERSION: version } };
}

/** Boots the role's idle slot with the release, health-checks it, and makes it live. */
async function switchRole(ctx: RemoteContext, s: HostSession, role: { name: string; tags: string[] }, opts: DeployOptions, rec: HostDeployRecord): Promise<void> {
  const c = ctx.config;
  const root = (cmd: Command) => asRoot(cmd, c.ssh.user);
  const state = parseSlotState(await must(s, slotStateCommand(ctx.layout, role.name)));
  const idle = idleSlot(state);
  const live: Slot = idle === 'blue' ? 'green' : 'blue';
  const liveRunning = state.slots[live].active;
  const slot = slotLayout(c, ctx.layout, role.name, idle);
  const d = rec.durationsMs;
  const key = (n: string) => `${role.name}.${n}`;
  const step = (n: string) => () => ctx.step?.(s.host, `${role.name}-${idle} ${n}`);

  await must(s, linkReleaseCommand(ctx.layout, slot, opts.version));
  const env = envFile(ctx.layout, slot, slotEnv(ctx, role, opts.version), ctx.secrets.get('RELEASE_COOKIE'));
  await must(s, writeEnvFileCommand(ctx.layout, slot, env, c.ssh.user, `write ${role.name}-${idle} env`));
  await timed(d, key('boot'), () => must(s, root(startSlotCommand(ctx.layout.app, role.name, idle))), step('boot'));
  const unit = unitInstance(ctx.layout.app, role.name, idle);
  const healthy = await timed(d, key('health'), () => s.run(healthCheckCommand(slot.port, c.healthCheck.path, c.healthCheck.interval, c.healthCheck.timeout, unit)), step('health check'));
  if (healthy.code !== 0) {
    const log = (await s.run(unitLogCommand(ctx.layout.app, role.name, idle))).stdout.trim().split('\n').slice(-8).join('\n');
    await s.run(root(stopSlotCommand(ctx.layout.app, role.name, idle, c.drainTimeout)));
    throw new XamalError('external', `${s.host}: ${role.name} ${opts.version} failed its health check (${c.healthCheck.path} on :${slot.port}: last status ${healthy.stdout.trim() || 'none'} after ${c.healthCheck.timeout} s); the old version keeps serving.${log ? `\nlast log lines:\n${ctx.secrets.redact(log)}` : ''}`);
  }
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
      throw new XamalError('external', `${s.host}: ${opts.version} answered on :${slot.port} but not through Caddy within ${c.healthCheck.timeout} s (status ${status || 'none'}${why.length ? `: ${ctx.secrets.redact(why.join(' '))}` : ''}); switched back to the old version`);
    }
  }
  await must(s, markLiveCommand(ctx.layout, role.name, idle, opts.version, behindCaddy || role.name === rolesOnHost(c, s.host)[0]?.name));
  rec.roles.push({ role: role.name, live: idle, ...(liveRunning ? { stopped: live } : {}) });
  step('live')();
}

export interface DeployResult {
  outcomes: HostOutcome<HostDeployRecord>[];
}

/** Runs the deploy (or rollback) on the selected hosts. The caller holds the lock and runs hooks. */
export async function deployFlow(ctx: RemoteContext, opts: DeployOptions): Promise<DeployResult> {
  checkVersion(opts.version);
  const c = ctx.config;
  const hosts = ctx.targets.hosts;
  const records = new Map<string, HostDeployRecord>(hosts.map((h) => [h, { host: h, version: opts.version, roles: [], pulled: false, durationsMs: {} }]));

  // 1. Every host gets the release first (in parallel): nothing boots until all have it.
  const staged = await onSessions(ctx, (s, h) => stageRelease(ctx, s, opts, records.get(h)!), hosts);
  const stageFailures = failed(staged);
  if (stageFailures.length) {
    throw new XamalError('external', `release ${opts.version} could not be staged; nothing was switched:\n${stageFailures.map((f) => `${f.host}: ${f.error.message}`).join('\n')}`);
  }

  // 2. release_command once, on the primary host, with the new release and the real env.
  if (c.releaseCommand && !opts.rollback) {
    const primary = c.roles.find((r) => r.name === c.primaryRole)?.hosts.find((h) => hosts.includes(h.host));
    if (primary) {
      const s = await ctx.pool.session(primary.host);
      const state = parseSlotState(await must(s, slotStateCommand(ctx.layout, c.primaryRole)));
      const slot = slotLayout(c, ctx.layout, c.primaryRole, idleSlot(state));
      await must(s, linkReleaseCommand(ctx.layout, slot, opts.version));
      const env = envFile(ctx.layout, slot, slotEnv(ctx, { name: c.primaryRole, tags: primary.tags }, opts.version), ctx.secrets.get('RELEASE_COOKIE'));
      await must(s, writeEnvFileCommand(ctx.layout, slot, env, c.ssh.user));
      ctx.say?.(`${primary.host}: release_command`);
      const r = await s.run(asRoot(releaseCommandCommand(ctx.layout, slot, opts.version, c.releaseCommand, c.deployTimeout * 4), c.ssh.user));
      if (r.code !== 0) {
        throw new XamalError('external', `release_command failed on ${primary.host} (exit ${r.code}); nothing was switched:\n${ctx.secrets.redact((r.stderr || r.stdout).trim().split('\n').slice(-10).join('\n'))}`);
      }
    }
  }

  // 3. Boot and switch, host batch by host batch.
  const outcomes: HostOutcome<HostDeployRecord>[] = [];
  const batches = bootBatches(hosts, c.boot.limit);
  for (const [i, batch] of batches.entries()) {
    const done = await onSessions(
      ctx,
      async (s, h) => {
        const rec = records.get(h)!;
        try {
          for (const role of rolesOnHost(c, h).filter((r) => ctx.targets.roles.includes(r.name))) await switchRole(ctx, s, role, opts, rec);
          await recordAudit(ctx, s, { version: opts.version, result: 'ok' });
        } catch (err) {
          await recordAudit(ctx, s, { version: opts.version, result: auditResult(err) });
          throw err;
        }
        return rec;
      },
      batch,
    );
    outcomes.push(...done);
    if (c.boot.wait && i < batches.length - 1) await ctx.clock.sleep(c.boot.wait * 1000);
  }
  return { outcomes };
}

/** Keeps `retain` releases per host, never the one a slot points at (running or previous). */
export async function pruneFlow(ctx: RemoteContext, retain = ctx.config.retainReleases, hosts: readonly string[] = ctx.targets.hosts): Promise<HostOutcome<string[]>[]> {
  return onSessions(ctx, async (s, h) => {
    const all = (await must(s, listReleasesCommand(ctx.layout))).split('\n').filter(Boolean);
    const keep = new Set(all.slice(0, retain));
    for (const role of rolesOnHost(ctx.config, h)) {
      const st = parseSlotState(await must(s, slotStateCommand(ctx.layout, role.name)));
      for (const v of [st.slots.blue.release, st.slots.green.release, st.current]) if (v) keep.add(v.slice(v.lastIndexOf('/') + 1));
    }
    const remove = all.filter((v) => !keep.has(v));
    if (remove.length) await must(s, removeReleasesCommand(ctx.layout, remove));
    return remove;
  }, hosts);
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
