import { isXamalError, XamalError, type Command } from '../../core/index.ts';
import { planAccessLog } from '../commands/access-log.ts';
import { applyCaddyRequests } from '../commands/caddy-draft.ts';
import { appSite, automateRequest, caddyFactsCommand, findById, parseCaddyFacts, routeHosts, routeId, serverFor, tlsPolicyId } from '../commands/caddy.ts';
import { disownStateDirCommand } from '../commands/app-user.ts';
import { asRoot } from '../commands/files.ts';
import { rolesOnHost, SLOTS } from '../commands/layout.ts';
import {
  appPresenceCommand,
  appUserComment,
  parseAppPresence,
  removeAppUserCommand,
  removePathsCommand,
  resetFailedCommand,
  stopUnitsCommand,
  USER_KEPT_EXIT,
  type AppPresence,
} from '../commands/remove.ts';
import { daemonReloadCommand, systemctlCommand, unitInstance, unitPath } from '../commands/systemd.ts';
import { must, type CaddyRequest, type HostSession } from '../remote.ts';
import { auditResult, recordAudit } from './audit.ts';
import { changeCaddyConfig } from './caddy.ts';
import type { RemoteContext } from './context.ts';
import { lockStatus, withLock } from './lock.ts';
import { onSessions, type HostOutcome } from './parallel.ts';

/**
 * `xamal app remove` and `xamal remove`, as Kamal's: per selected host, look at what of the app is
 * there, then take away only that — the app's Caddy route and TLS policy (admin API, by id: other
 * apps' routes untouched), its slot units (stopped gracefully, disabled if enabled, unit files
 * removed), its releases and slots. `remove` also takes `/opt/xamal/<app>` (env files, lock, audit
 * log) and the app's system user when xamal made it for this app and nothing else uses it; the app's
 * data (`/var/lib/xamal/<app>`) is never deleted: it stays, owned by root once the user is gone. Caddy
 * itself and the host's packages stay: other apps use them. A second run finds nothing and says so.
 */

export type RemoveScope = 'app' | 'all';

export interface HostRemoval {
  /** What was taken away, in words (empty: nothing of the app was there). */
  removed: string[];
  /** What was left on purpose, and why. */
  kept: string[];
}


/** What to look for on a host: the selected roles there, and whether all of the app's roles there are selected. */
export function removalTargets(ctx: Pick<RemoteContext, 'config' | 'layout' | 'targets'>, host: string, scope: RemoveScope) {
  const { layout } = ctx;
  const onHost = [...new Set(rolesOnHost(ctx.config, host).map((r) => r.name))];
  const roles = onHost.filter((r) => ctx.targets.roles.includes(r));
  const others = onHost.filter((r) => !roles.includes(r));
  const whole = others.length === 0;
  const perRole = roles.flatMap((r) => [...SLOTS.flatMap((s) => [`${layout.slots}/${r}-${s}`, `${layout.tmp}/${r}-${s}`]), `${layout.slots}/${r}.live`]);
  const paths = !whole ? perRole : scope === 'all' ? [layout.root] : [layout.releases, layout.current, layout.slots, layout.tmp];
  return {
    roles,
    others,
    whole,
    paths,
    /** The route is on the hosts of the primary role (where setup put it). */
    caddy: roles.includes(ctx.config.primaryRole),
    /** Host-level parts (the app directory, the user) go only when no unselected role of the app stays. */
    hostLevel: scope === 'all' && whole,
    /** Looked for, never removed: the app's data (its state directory). */
    keep: scope === 'all' && whole ? [layout.state] : [],
  };
}

type Targets = ReturnType<typeof removalTargets>;

/** A dry run's empty answer: assume everything the removal looks for is there, so every step shows. */
function assumePresent(ctx: RemoteContext, t: Targets): AppPresence {
  return {
    known: false,
    units: t.roles.flatMap((role) => SLOTS.map((slot) => ({ role, slot, active: 'active', enabled: '' }))),
    unitFiles: t.roles,
    paths: new Set([...t.paths, ...t.keep]),
    userComment: t.hostLevel ? appUserComment(ctx.layout.app) : undefined,
  };
}

async function readPresence(ctx: RemoteContext, s: HostSession, t: Targets): Promise<AppPresence> {
  const got = parseAppPresence(await must(s, appPresenceCommand(ctx.layout, { roles: t.roles, paths: [...t.paths, ...t.keep], discover: t.hostLevel, user: t.hostLevel })));
  return got.known ? got : assumePresent(ctx, t);
}

/**
 * The app's route, TLS policy and access log taken out of Caddy's config in one change (one reload:
 * each reload resets other apps' idle connections, FACTS.md#caddy); what Caddy does not have is not
 * asked for.
 */
async function removeCaddySite(ctx: RemoteContext, s: HostSession, out: HostRemoval): Promise<void> {
  const app = ctx.layout.app;
  const server = serverFor(appSite(ctx.config, ctx.layout));
  let done;
  try {
    done = await changeCaddyConfig(s, (current, known) => {
      const requests: CaddyRequest[] = [];
      const changes: string[] = [];
      for (const [id, what] of [[routeId(app), 'caddy route'], [tlsPolicyId(app), 'caddy TLS policy']] as const) {
        if (known && !findById(current, id)) continue;
        requests.push({ method: 'DELETE', path: `/id/${id}`, label: `remove ${what}` });
        changes.push(`${what} ${id} removed`);
      }
      // A dry run (no config read): what a removal sends.
      if (!known) return { requests, changes };
      // Its names in the list Caddy loads certificates for as a config starts (those of its route, and of its config).
      const names = [...new Set([...routeHosts(findById(current, routeId(app))?.value), ...ctx.config.caddy.hosts])];
      const automate = automateRequest(applyCaddyRequests(current, requests), names, []);
      if (automate) {
        requests.push(automate);
        changes.push(`caddy no longer loads certificates for ${names.join(', ')}`);
      }
      // Its access log (rollout.max_5xx_percent), when setup gave it one: host names, file, default-log exclusion.
      const log = planAccessLog(applyCaddyRequests(current, requests), { app, hosts: [], server: server.name, port: server.listen[0]!.replace(/^.*:/, ''), on: false });
      return { requests: [...requests, ...log.requests], changes: [...changes, ...log.changes] };
    });
  } catch (err) {
    // No Caddy on the host at all: no route of this app either.
    if (isXamalError(err) && err.code === 'unavailable' && !parseCaddyFacts(await must(s, asRoot(caddyFactsCommand(), ctx.sshUser(s.host)))).installed) return;
    throw err;
  }
  out.removed.push(...done.changes);
}

const RUNNING = (active: string) => active !== '' && active !== 'inactive' && active !== 'failed';

/** Stops (gracefully) and disables the slot units, forgets failed ones, removes the unit files. */
async function removeUnits(ctx: RemoteContext, s: HostSession, p: AppPresence, out: HostRemoval): Promise<void> {
  const root = (c: Command) => asRoot(c, ctx.sshUser(s.host));
  const app = ctx.layout.app;
  const running = p.units.filter((u) => RUNNING(u.active)).map((u) => unitInstance(app, u.role, u.slot));
  if (running.length) {
    await must(s, root(stopUnitsCommand(running, ctx.config.drainTimeout)));
    out.removed.push(...running.map((u) => `stopped ${u}`));
  }
  const enabled = p.units.filter((u) => u.enabled.startsWith('enabled') || u.enabled === 'linked').map((u) => unitInstance(app, u.role, u.slot));
  if (enabled.length) {
    await must(s, root(systemctlCommand('disable', enabled)));
    out.removed.push(...enabled.map((u) => `disabled ${u}`));
  }
  const failedUnits = p.units.filter((u) => u.active === 'failed').map((u) => unitInstance(app, u.role, u.slot));
  if (failedUnits.length) await must(s, root(resetFailedCommand(failedUnits)));
  const files = p.unitFiles.map((r) => unitPath(app, r));
  if (files.length) {
    await must(s, root(removePathsCommand(files, `remove unit files ${files.join(' ')}`)));
    await must(s, root(daemonReloadCommand()));
    out.removed.push(...files.map((f) => `removed ${f}`));
  }
}

/** The app's user, when xamal made it for this app (its comment says so) and nothing else uses it. */
async function removeUser(ctx: RemoteContext, s: HostSession, p: AppPresence, out: HostRemoval): Promise<void> {
  const { user, app } = ctx.layout;
  if (p.userComment === undefined) return;
  if (p.userComment !== appUserComment(app)) {
    out.kept.push(`user ${user} kept: xamal did not create it for ${app} (its comment is ${JSON.stringify(p.userComment)})`);
    return;
  }
  const r = await s.run(asRoot(removeAppUserCommand(ctx.layout), ctx.sshUser(s.host)));
  if (r.code === USER_KEPT_EXIT) out.kept.push(`user ${user} kept: ${r.stdout.trim() || 'still in use'}`);
  else if (r.code !== 0) throw new XamalError('external', `${s.host}: removing user ${user} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join('; ')}`);
  else {
    out.removed.push(`removed user ${user}`);
    // Its data stays, no longer owned by a uid a later user could be given.
    if (p.paths.has(ctx.layout.state)) await must(s, asRoot(disownStateDirCommand(ctx.layout), ctx.sshUser(s.host)));
  }
}

async function removeFromHost(ctx: RemoteContext, s: HostSession, scope: RemoveScope, out: HostRemoval): Promise<HostRemoval> {
  const t = removalTargets(ctx, s.host, scope);
  const p = await readPresence(ctx, s, t);
  if (t.caddy) await removeCaddySite(ctx, s, out);
  await removeUnits(ctx, s, p, out);
  const paths = t.paths.filter((x) => p.paths.has(x));
  if (paths.length) {
    await must(s, asRoot(removePathsCommand(paths), ctx.sshUser(s.host)));
    out.removed.push(...paths.map((x) => `removed ${x}`));
  }
  if (t.hostLevel) await removeUser(ctx, s, p, out);
  if (t.keep.some((x) => p.paths.has(x))) out.kept.push(`${ctx.layout.state} (the app's data)${out.removed.includes(`removed user ${ctx.layout.user}`) ? `, owned by root until \`xamal setup\` gives it to the app's user again` : ''}`);
  if (!t.whole && (scope === 'all' || paths.length)) {
    out.kept.push(`${scope === 'all' ? ctx.layout.root : `${ctx.layout.releases} and ${ctx.layout.current}`} kept: ${t.others.join(', ')} of ${ctx.layout.app} stay${t.others.length === 1 ? 's' : ''} on this host (not selected)`);
  }
  return out;
}

/** Removes the app (scope `app`) or everything of it (`all`) from each selected host; every host's outcome. */
export function removeFlow(ctx: RemoteContext, scope: RemoveScope): Promise<HostOutcome<HostRemoval>[]> {
  return onSessions(ctx, async (s) => {
    const out: HostRemoval = { removed: [], kept: [] };
    try {
      await removeFromHost(ctx, s, scope, out);
      // Written where the app directory still is (app remove, or roles kept); nothing otherwise.
      await recordAudit(ctx, s, { result: out.removed.length ? `ok: ${out.removed.length} removed` : 'ok: nothing to remove' });
      return out;
    } catch (err) {
      await recordAudit(ctx, s, { result: auditResult(err) });
      if (out.removed.length && err instanceof Error) err.message += `\n(removed before the failure: ${out.removed.join('; ')})`;
      throw err;
    }
  });
}

/**
 * Runs `fn` holding the deploy lock, as other changing commands do; when the app directory is not on
 * the primary host (never set up, or already removed) there is no lock to take and nothing deploys.
 * A full removal takes the lock's directory away with the app's: releasing finds none, quietly.
 */
export async function withRemovalLock<T>(ctx: RemoteContext, message: string, fn: () => Promise<T>): Promise<T> {
  try {
    await lockStatus(ctx);
  } catch (err) {
    if (isXamalError(err) && err.code === 'not_found') return fn();
    throw err;
  }
  return withLock(ctx, { message }, fn);
}
