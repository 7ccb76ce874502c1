import { maintenanceId } from '../commands/caddy.ts';
import { appDetails, type RoleDetails } from './app.ts';
import { caddyDetails, type CaddyDetails } from './caddy.ts';
import type { RemoteContext } from './context.ts';
import type { HostOutcome } from './parallel.ts';

/**
 * `xamal details`, as Kamal's top-level details: for this app, per host, each role's live slot,
 * version and running slots (`app details`), and on hosts of the primary role the Caddy route and
 * its upstreams' state (`caddy details`), in one view.
 */

export type RouteState = 'serving' | 'maintenance' | 'none';

export interface HostDetails {
  roles: RoleDetails[];
  /** Hosts of the primary role only. */
  caddy?: CaddyDetails & { state: RouteState };
}

/** Pure: what the app's route does — proxies to the slots, shows the maintenance page, or is not there. */
export function routeState(route: unknown, app: string): RouteState {
  if (route === null || typeof route !== 'object') return 'none';
  const handle = (route as { handle?: unknown }).handle;
  const first = Array.isArray(handle) ? (handle[0] as { '@id'?: unknown } | undefined) : undefined;
  return first?.['@id'] === maintenanceId(app) ? 'maintenance' : 'serving';
}

/** A host fails when either part failed there; the message names the part. */
export async function detailsFlow(ctx: RemoteContext): Promise<HostOutcome<HostDetails>[]> {
  const apps = await appDetails(ctx);
  const caddy = new Map((await caddyDetails(ctx)).map((o) => [o.host, o]));
  return apps.map((a): HostOutcome<HostDetails> => {
    const c = caddy.get(a.host);
    const ms = a.ms + (c?.ms ?? 0);
    const failures = [...(a.ok ? [] : [a.error]), ...(c && !c.ok ? [c.error] : [])];
    // One failing part keeps its error (and so its exit code); both: one message naming each.
    if (!a.ok || failures.length) return { host: a.host, ok: false, ms, error: failures.length === 1 ? failures[0]! : new Error(failures.map((e, i) => `${i ? 'caddy' : 'app'}: ${e.message}`).join('\n')) };
    return { host: a.host, ok: true, ms, value: { roles: a.value, ...(c?.ok ? { caddy: { ...c.value, state: routeState(c.value.route, ctx.layout.app) } } : {}) } };
  });
}
