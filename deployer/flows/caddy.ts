import { XamalError } from '../../core/index.ts';
import { planAccessLog } from '../commands/access-log.ts';
import { appSite, configRequest, liveRequest, maintenanceRequest, parseCaddyJson, planCaddy, routeRequest, serverFor, upstreamsRequest, type AppSite } from '../commands/caddy.ts';
import type { CaddyRequest, CaddyResponse, HostSession } from '../remote.ts';
import type { RemoteContext } from './context.ts';
import { onSessions, type HostOutcome } from './parallel.ts';

/** Caddy through its admin API: one request at a time, any non-2xx answer is an error with its body. */
export async function caddyCall(session: HostSession, req: CaddyRequest): Promise<CaddyResponse> {
  const r = await session.caddy(req);
  if (r.status < 200 || r.status >= 300) {
    throw new XamalError('external', `${session.host}: Caddy admin ${req.method} ${req.path}${req.label ? ` (${req.label})` : ''} answered ${r.status}: ${r.body.trim().slice(0, 500)}`);
  }
  return r;
}

/** Brings this app's route (and TLS policy) on the host to what the config says; returns the changes. */
export async function ensureCaddySite(session: HostSession, site: AppSite): Promise<{ changes: string[]; warnings: string[] }> {
  const current = parseCaddyJson((await caddyCall(session, configRequest())).body);
  const plan = planCaddy(current, site);
  for (const req of plan.requests) await caddyCall(session, req);
  // The access log (max_5xx_percent) is planned against the config with the route in place.
  const now = plan.requests.length ? parseCaddyJson((await caddyCall(session, configRequest())).body) : current;
  const server = serverFor(site);
  const log = planAccessLog(now, { app: site.app, hosts: site.hosts, server: server.name, port: server.listen[0]!.replace(/^.*:/, ''), on: site.accessLog === true });
  for (const req of log.requests) await caddyCall(session, req);
  return { changes: [...plan.changes, ...log.changes], warnings: plan.warnings };
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
