import { XamalError } from '../../core/index.ts';
import { planAccessLog } from '../commands/access-log.ts';
import { applyCaddyRequests, caddyEtag } from '../commands/caddy-draft.ts';
import { appSite, configRequest, liveRequest, maintenanceRequest, parseCaddyJson, planCaddy, routeRequest, serverFor, upstreamsRequest, type AppSite } from '../commands/caddy.ts';
import type { CaddyRequest, CaddyResponse, HostSession } from '../remote.ts';
import type { RemoteContext } from './context.ts';
import { onSessions, type HostOutcome } from './parallel.ts';

/** Caddy through its admin API: one request at a time, any non-2xx answer is an error with its body. */
export async function caddyCall(session: HostSession, req: CaddyRequest): Promise<CaddyResponse> {
  return succeeded(session, req, await session.caddy(req));
}

/** `r` if Caddy answered `req` with a 2xx, else an error naming the request, the status and the body. */
function succeeded(session: HostSession, req: CaddyRequest, r: CaddyResponse): CaddyResponse {
  if (r.status < 200 || r.status >= 300) {
    throw new XamalError('external', `${session.host}: Caddy admin ${req.method} ${req.path}${req.label ? ` (${req.label})` : ''} answered ${r.status}: ${r.body.trim().slice(0, 500)}`);
  }
  return r;
}

/** Times a change planned on a config that changed meanwhile (412) is read and planned again. */
const CHANGE_ATTEMPTS = 5;

/**
 * One config change — one Caddy reload — for whatever `plan` wants of the config it is given: read,
 * plan, send with `If-Match` (one request as planned; several as one `POST /config/` of the config
 * they make, commands/caddy-draft.ts). A 412 (another change came in between) reads and plans again.
 */
export async function changeCaddyConfig<P extends { requests: CaddyRequest[] }>(session: HostSession, plan: (current: unknown, known: boolean) => P): Promise<P> {
  for (let attempt = 1; ; attempt++) {
    const read = await caddyCall(session, configRequest());
    const current = parseCaddyJson(read.body);
    // Caddy always answers a body (`null` for no config); none is a dry run's recording session,
    // which then records each request the change is made of.
    const known = read.body.trim() !== '';
    const planned = plan(current, known);
    if (!known) {
      for (const req of planned.requests) await caddyCall(session, req);
      return planned;
    }
    if (planned.requests.length === 0) return planned;
    const one: CaddyRequest =
      planned.requests.length === 1
        ? planned.requests[0]!
        : { method: 'POST', path: '/config/', body: applyCaddyRequests(current, planned.requests), label: planned.requests.map((r) => r.label ?? `${r.method} ${r.path}`).join(' + ') };
    const r = await session.caddy({ ...one, ifMatch: caddyEtag('/config/', read.body) });
    if (r.status === 412 && attempt < CHANGE_ATTEMPTS) continue;
    if (r.status === 412) throw new XamalError('conflict', `${session.host}: Caddy's config changed under each of ${CHANGE_ATTEMPTS} attempts to ${one.label ?? 'change it'}; another client keeps changing it — try again`);
    succeeded(session, one, r);
    return planned;
  }
}

/** Brings this app's route (and TLS policy, and access log) on the host to what the config says, in one reload; returns the changes. */
export async function ensureCaddySite(session: HostSession, site: AppSite): Promise<{ changes: string[]; warnings: string[] }> {
  const server = serverFor(site);
  const done = await changeCaddyConfig(session, (current, known) => {
    const plan = planCaddy(current, site);
    // The access log (max_5xx_percent) is planned against the config with the route in place.
    const log = planAccessLog(known ? applyCaddyRequests(current, plan.requests) : current, { app: site.app, hosts: site.hosts, server: server.name, port: server.listen[0]!.replace(/^.*:/, ''), on: site.accessLog === true });
    return { requests: [...plan.requests, ...log.requests], changes: [...plan.changes, ...log.changes], warnings: plan.warnings };
  });
  return { changes: done.changes, warnings: done.warnings };
}

/** Maintenance on (503 page for this app only) or off (back to the proxy). */
export async function setMaintenance(session: HostSession, site: AppSite, on: boolean, html?: string): Promise<void> {
  await caddyCall(session, on ? maintenanceRequest(site.app, html) : liveRequest(site));
}

export interface CaddyDetails {
  /** This app's route as Caddy has it (null: none). */
  route: unknown;
  /** Health and load of this app's upstreams, as Caddy reports them. */
  upstreams: { address: string; num_requests?: number; fails?: number; healthy?: boolean }[];
}

/** `xamal caddy details`: the app's route and its upstreams' state on every host that serves it. */
export async function caddyDetails(ctx: RemoteContext): Promise<HostOutcome<CaddyDetails>[]> {
  const site = appSite(ctx.config, ctx.layout);
  const dials = new Set(site.ports.map((p) => `127.0.0.1:${p}`));
  const primary = ctx.config.roles.find((r) => r.name === ctx.config.primaryRole);
  const hosts = ctx.targets.hosts.filter((h) => primary?.hosts.some((x) => x.host === h));
  return onSessions(
    ctx,
    async (s) => {
      const route = await s.caddy(routeRequest(site.app));
      const ups = await caddyCall(s, upstreamsRequest());
      const all = parseCaddyJson(ups.body);
      return {
        route: route.status >= 200 && route.status < 300 ? parseCaddyJson(route.body) : null,
        upstreams: (Array.isArray(all) ? (all as CaddyDetails['upstreams']) : []).filter((u) => dials.has(u.address)),
      };
    },
    hosts,
  );
}
