import { XamalError, type Command } from '../../core/index.ts';
import { appLogsCommand, type LogsQuery } from '../commands/logs.ts';
import { unitInstance } from '../commands/systemd.ts';
import { appSite } from '../commands/caddy.ts';
import { parseCanaryState, readCanaryStateCommand } from '../commands/canary.ts';
import { asRoot } from '../commands/files.ts';
import { rolesOnHost, slotLayout, type AppLayout, type Slot } from '../commands/layout.ts';
import { checkVersion } from '../commands/release.ts';
import { listReleasesCommand, parseSlotState, releaseCommandCommand, slotStateCommand, startSlotCommand, stopSlotCommand } from '../commands/slots.ts';
import { must, type HostSession, type Terminal } from '../remote.ts';
import { recordAudit } from './audit.ts';
import { setMaintenance } from './caddy.ts';
import type { RemoteContext } from './context.ts';
import type { Targets } from './targets.ts';
import type { DeployConfig } from '../config/schema.ts';
import { onHosts, onSessions, type HostOutcome } from './parallel.ts';

/**
 * `xamal app …`: what runs where, its logs, stopping and starting the live slot, commands in the
 * live release's environment, the releases kept on each host, and maintenance mode.
 */

export interface RoleDetails {
  role: string;
  live: Slot | undefined;
  running: Slot[];
  version: string | undefined;
  /** The primary role during a canary (`deploy --canary`): the version beside the live one, its slot and share. */
  canary?: { version: string; slot: Slot; percent: number };
}

const base = (p: string | undefined) => (p ? p.slice(p.lastIndexOf('/') + 1) : undefined);


function selectedRoles(ctx: RemoteContext, host: string) {
  return rolesOnHost(ctx.config, host).filter((r) => ctx.targets.roles.includes(r.name));
}

async function roleDetails(ctx: RemoteContext, s: HostSession, role: string): Promise<RoleDetails> {
  const st = parseSlotState(await must(s, slotStateCommand(ctx.layout, role)));
  const live = st.live;
  return { role, live, running: (['blue', 'green'] as const).filter((x) => st.slots[x].active), version: base(live ? st.slots[live].release : undefined) };
}

/** `fn` on each selected role of the host, in order, each with its details read just before. */
async function eachRole<T>(ctx: RemoteContext, s: HostSession, host: string, fn: (d: RoleDetails) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (const r of selectedRoles(ctx, host)) out.push(await fn(await roleDetails(ctx, s, r.name)));
  return out;
}

export function appDetails(ctx: RemoteContext): Promise<HostOutcome<RoleDetails[]>[]> {
  return onSessions(ctx, (s, h) =>
    eachRole(ctx, s, h, async (d) => {
      if (d.role !== ctx.config.primaryRole) return d;
      const c = parseCanaryState(await must(s, readCanaryStateCommand(ctx.layout)), h);
      return c && c !== 'unknown' ? { ...d, canary: { version: c.version, slot: c.slot, percent: c.percent } } : d;
    }),
  );
}

/** Stops or starts each role's live slot (systemd; stop is graceful). */
export function appStopStart(ctx: RemoteContext, verb: 'stop' | 'start'): Promise<HostOutcome<string[]>[]> {
  return onSessions(ctx, async (s, h) => {
    const done = await eachRole(ctx, s, h, async (d) => {
      if (!d.live) throw new XamalError('not_found', `${h}: ${d.role} has never been deployed`);
      const cmd = verb === 'stop' ? stopSlotCommand(ctx.layout.app, d.role, d.live, ctx.config.drainTimeout) : startSlotCommand(ctx.layout.app, d.role, d.live);
      await must(s, asRoot(cmd, ctx.sshUser(h)));
      return `${d.role}-${d.live}`;
    });
    await recordAudit(ctx, s, { command: `app ${verb}`, result: 'ok' });
    return done;
  });
}

/** The units of the selected roles' live slots on the host. */
async function liveUnits(ctx: RemoteContext, s: HostSession, host: string): Promise<string[]> {
  const roles = await eachRole(ctx, s, host, async (d) => d);
  return roles.flatMap((d) => (d.live ? [unitInstance(ctx.layout.app, d.role, d.live)] : []));
}

/** Each host's log lines of its live slots (`-n`, `--since`, `--grep`), secrets redacted. */
export function appLogs(ctx: RemoteContext, q: Omit<LogsQuery, 'follow'>): Promise<HostOutcome<string>[]> {
  return onSessions(ctx, async (s, h) => {
    const units = await liveUnits(ctx, s, h);
    if (!units.length) return '';
    return ctx.secrets.redact(await must(s, asRoot(appLogsCommand(units, q), ctx.sshUser(h))));
  });
}

/** Calls `emit` once per complete line of the chunks pushed; `flush` hands over the rest. */
function lineSplitter(emit: (line: string) => void): { push: (chunk: string) => void; flush: () => void } {
  let rest = '';
  return {
    push(chunk) {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop()!;
      for (const p of parts) emit(p);
    },
    flush() {
      if (rest) emit(rest);
      rest = '';
    },
  };
}

/**
 * `app logs -f`: every selected host at once (no concurrency cap: each stream lasts), each new line
 * of its live slots handed to `line` (secrets redacted) until `stop` aborts or the connection ends.
 */
export function followAppLogs(ctx: RemoteContext, q: Omit<LogsQuery, 'follow'>, line: (host: string, text: string) => void, stop: AbortSignal): Promise<HostOutcome<void>[]> {
  const hosts = ctx.targets.hosts;
  return onHosts(
    hosts,
    async (h) => {
      const s = await ctx.pool.session(h);
      const units = await liveUnits(ctx, s, h);
      if (!units.length) throw new XamalError('not_found', `${h}: nothing deployed yet: no live slot to follow`);
      const out = lineSplitter((l) => line(h, ctx.secrets.redact(l)));
      const err = lineSplitter((l) => line(h, ctx.secrets.redact(l)));
      const code = await s.stream(asRoot(appLogsCommand(units, { ...q, follow: true }), ctx.sshUser(h)), { stdout: out.push, stderr: err.push }, stop);
      out.flush();
      err.flush();
      if (code !== 0) throw new XamalError('external', `${h}: following the logs ended with exit ${code}`);
    },
    { concurrency: Math.max(1, hosts.length) },
  );
}

/** Runs a shell command in each live slot's release directory with its environment. */
export function appExec(ctx: RemoteContext, line: string): Promise<HostOutcome<string>[]> {
  return onSessions(ctx, async (s, h) => {
    const outs = await eachRole(ctx, s, h, async (d) => {
      if (!d.live || !d.version) throw new XamalError('not_found', `${h}: ${d.role} has never been deployed`);
      const slot = slotLayout(ctx.config, ctx.layout, d.role, d.live);
      const res = await s.run(asRoot(releaseCommandCommand(ctx.layout, slot, checkVersion(d.version), line, ctx.config.deployTimeout * 4), ctx.sshUser(h)));
      if (res.code !== 0) throw new XamalError('external', `${h}: exit ${res.code}: ${ctx.secrets.redact((res.stderr || res.stdout).trim())}`);
      return ctx.secrets.redact(res.stdout);
    });
    await recordAudit(ctx, s, { command: 'app exec', result: 'ok' });
    return outs.join('');
  });
}

/** Root step: `line` as the app's user in a live slot's release and env (as `app exec`), with no timeout: the user ends it. */
export function interactiveExecCommand(config: DeployConfig, layout: AppLayout, role: string, live: Slot, version: string, line: string, sshUser: string): Command {
  const { timeoutMs: _none, ...cmd } = releaseCommandCommand(layout, slotLayout(config, layout, role, live), checkVersion(version), line, 1);
  return asRoot({ ...cmd, label: 'app exec -i' }, sshUser);
}

/**
 * Pure: the one host and role an interactive command runs on, as Kamal's `app exec -i`: the primary
 * host of the primary role (of the first selected role when `-r` leaves the primary one out); with
 * `--hosts`, the one host they name — more than one is a usage error.
 */
export function interactiveTarget(config: Pick<DeployConfig, 'roles' | 'primaryRole'>, targets: Targets, hostsGiven: boolean): { host: string; role: string } {
  const role = targets.roles.includes(config.primaryRole) ? config.primaryRole : targets.roles[0]!;
  if (hostsGiven) {
    if (targets.hosts.length !== 1) throw new XamalError('usage', `--interactive runs on one host; --hosts selects ${targets.hosts.length} (${targets.hosts.join(', ')})`);
    const host = targets.hosts[0]!;
    const onHost = rolesOnHost(config, host).map((r) => r.name).filter((r) => targets.roles.includes(r));
    return { host, role: onHost.includes(role) ? role : onHost[0]! };
  }
  const host = config.roles.find((r) => r.name === role)!.hosts.map((h) => h.host).find((h) => targets.hosts.includes(h));
  if (!host) throw new XamalError('not_found', `no selected host is in role ${role}`);
  return { host, role };
}

/**
 * `app exec -i`: `line` on one host (interactiveTarget) in the live slot's release and environment,
 * attached to `terminal`; resolves with its exit status. One audit line when it ends.
 */
export async function appExecInteractive(ctx: RemoteContext, line: string, terminal: Terminal, hostsGiven: boolean): Promise<{ host: string; code: number }> {
  const { host, role } = interactiveTarget(ctx.config, ctx.targets, hostsGiven);
  const s = await ctx.pool.session(host);
  const d = await roleDetails(ctx, s, role);
  if (!d.live || !d.version) throw new XamalError('not_found', `${host}: ${role} has never been deployed`);
  ctx.say?.(`${host}: ${role}-${d.live} (${d.version}): ${line}`);
  const code = await s.interactive(interactiveExecCommand(ctx.config, ctx.layout, role, d.live, d.version, line, ctx.sshUser(host)), terminal);
  await recordAudit(ctx, s, { command: 'app exec -i', result: code === 0 ? 'ok' : `exit ${code}` });
  return { host, code };
}

export function appReleases(ctx: RemoteContext): Promise<HostOutcome<string[]>[]> {
  return onSessions(ctx, async (s) => (await must(s, listReleasesCommand(ctx.layout))).split('\n').filter(Boolean));
}

/** Maintenance on (a 503 page for this app only) or off, on the hosts that serve it through Caddy. */
export function appMaintenance(ctx: RemoteContext, on: boolean): Promise<HostOutcome<boolean>[]> {
  const site = appSite(ctx.config, ctx.layout);
  const hosts = ctx.targets.hosts.filter((h) => rolesOnHost(ctx.config, h).some((r) => r.name === ctx.config.primaryRole));
  return onSessions(
    ctx,
    async (s) => {
      await setMaintenance(s, site, on);
      await recordAudit(ctx, s, { command: on ? 'app maintenance' : 'app live', result: 'ok' });
      return on;
    },
    hosts,
  );
}
