import { z } from 'zod';
import { command, XamalError, type Command } from '../../core/index.ts';
import type { CaddyRequest } from '../remote.ts';
import { liveRequest, proxyHandler, routeId, serverFor, type AppSite } from './caddy.ts';
import { asRoot } from './files.ts';
import { SLOTS, type AppLayout, type Slot } from './layout.ts';
import { markLiveCommand, stopSlotCommand, throughCaddyCommand } from './slots.ts';

/**
 * A canary (data only; `flows/canary.ts` runs it): the new version boots in the primary role's idle
 * slot beside the live one, and the app's route (`@id: xamal-<app>`) sends a share of new sessions
 * to it, sticky by a cookie per app (`xamal_<app>=<version>`: a client keeps its version). Built
 * from what Caddy 2.6 has (FACTS.md#caddy): a `subroute` whose routes match the cookie (`vars` on
 * the `{http.request.cookie.*}` placeholder), else draw a share on the request's random
 * `{http.request.uuid}` (`vars_regexp` on its first 4 hex digits), set the cookie (`headers`) and
 * a var; two proxies, each over both slots with `first`, the preferred slot first: a dead preferred
 * slot falls through to the other, never a failed request. The canary's handlers check slots only
 * passively (a refused or failed request), never actively (`proxyPreferring` says why), so a canary
 * that answers but fails its health check keeps its share until it is aborted. Promote and abort
 * hand every request to the slot that stays, stop the other gracefully, then put the ordinary
 * route back.
 */

export const canaryId = (app: string) => `xamal-${app}-canary`;
/** While the new slot boots: the proxy over [old, new], so nothing reaches the new slot before the split. */
export const canaryBootId = (app: string) => `xamal-${app}-canary-boot`;
/** The cookie that keeps a client on its version: one per app (and destination). */
export const canaryCookie = (app: string) => `xamal_${app}`;
/** How long a client keeps its version: a canary rarely lasts longer. */
export const CANARY_COOKIE_MAX_AGE_S = 7 * 86_400;
/** The var the split sets for the proxy route to read. */
const SIDE_VAR = 'xamal_canary';

/** `--canary`'s value: a whole percentage of new sessions from 1 to 99. */
export function checkCanaryPercent(value: unknown): number {
  const n = typeof value === 'string' && /^\s*\d+\s*%?\s*$/.test(value) ? Number.parseInt(value, 10) : typeof value === 'number' ? value : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 99) {
    throw new XamalError('usage', `--canary: expected a whole percentage of new sessions from 1 to 99 (e.g. --canary 10), got ${JSON.stringify(value)}`);
  }
  return n;
}

const HEX = '0123456789abcdef';
/** The random draw reads this many hex digits of the request's UUID: 65,536 values, so a share is exact to 0.002 %. */
const SHARE_DIGITS = 4;

/** How many of the 16^4 values of the draw fall in `percent` %. */
export function shareThreshold(percent: number): number {
  return Math.round((checkCanaryPercent(percent) * HEX.length ** SHARE_DIGITS) / 100);
}

/**
 * Pure: an RE2 pattern matching a lowercase hex string whose first `digits` digits, read as a
 * number, are below `n` (0 < n < 16^digits): one alternative per digit of `n` that is above 0.
 */
export function belowHexPattern(n: number, digits = SHARE_DIGITS): string {
  if (!Number.isInteger(n) || n <= 0 || n >= HEX.length ** digits) throw new RangeError(`belowHexPattern: ${n} is outside 1..${HEX.length ** digits - 1}`);
  const hex = n.toString(16).padStart(digits, '0');
  const alts: string[] = [];
  for (let i = 0; i < digits; i++) {
    const d = HEX.indexOf(hex[i]!);
    if (d === 0) continue;
    const rest = digits - i - 1;
    alts.push(`${hex.slice(0, i)}${d === 1 ? '0' : `[${HEX.slice(0, d)}]`}${rest ? `[0-9a-f]{${rest}}` : ''}`);
  }
  return `^(?:${alts.join('|')})`;
}

/** Which version runs where during a canary (the state file holds it too). */
export interface CanarySplit {
  percent: number;
  canary: { slot: Slot; version: string };
  live: { slot: Slot; version: string };
}

/**
 * The proxy over both slots with `prefer` first: the app's proxy (same retries and passive checks)
 * without its active health checks. Caddy 2.6 cancels a replaced handler's context at every config
 * change while that handler still serves the requests it had (FACTS.md#caddy-reload-race): its
 * in-flight active checks then mark their slots down and its waiting requests stop waiting, so a
 * request there found no slot (503). A handler without active checks keeps both slots as they are:
 * its first pick is up and answers. Every handler a canary replaces is such a one; only the
 * ordinary route (which the next deploy switches by health, without a config change) has them.
 */
function proxyPreferring(site: AppSite, prefer: Slot, id: string): Record<string, unknown> {
  const ports = [...SLOTS].sort((a, b) => (a === prefer ? -1 : b === prefer ? 1 : 0)).map((s) => site.ports[SLOTS.indexOf(s)]!);
  const { health_checks: checks, ...proxy } = proxyHandler({ ...site, ports });
  return { ...proxy, health_checks: { passive: (checks as { passive: unknown }).passive }, '@id': id };
}

export function canaryCookieHeader(site: AppSite, version: string): string {
  const secure = serverFor(site).name === 'xamal' ? '; Secure' : '';
  return `${canaryCookie(site.app)}=${version}; Path=/; Max-Age=${CANARY_COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Lax${secure}`;
}

/**
 * The app's handler during a canary: a subroute. A client's cookie naming one of the two versions
 * picks it; otherwise (no cookie, or one from an earlier canary) the request's random UUID draws
 * the canary with `percent` % and the answer sets the cookie. Two proxies over both slots, the
 * chosen one first.
 */
export function canaryHandler(site: AppSite, split: CanarySplit): Record<string, unknown> {
  if (split.canary.version === split.live.version) throw new XamalError('usage', `--canary: ${split.live.version} is already live; a canary needs another version`);
  const cookie = `{http.request.cookie.${canaryCookie(site.app)}}`;
  const side = (s: 'canary' | 'live', setCookie: boolean) => [
    { handler: 'vars', [SIDE_VAR]: s },
    ...(setCookie ? [{ handler: 'headers', response: { add: { 'Set-Cookie': [canaryCookieHeader(site, split[s].version)] } } }] : []),
  ];
  const noCookie = { not: [{ vars: { [cookie]: [split.canary.version, split.live.version] } }] };
  return {
    '@id': canaryId(site.app),
    handler: 'subroute',
    routes: [
      { match: [{ vars: { [cookie]: [split.canary.version] } }], handle: side('canary', false) },
      { match: [{ vars: { [cookie]: [split.live.version] } }], handle: side('live', false) },
      { match: [{ ...noCookie, vars_regexp: { '{http.request.uuid}': { pattern: belowHexPattern(shareThreshold(split.percent)) } } }], handle: side('canary', true) },
      // Routes of a subroute run on until a terminal one: the draw above set the var, so this one must not match then.
      { match: [{ not: [...noCookie.not, { vars: { [SIDE_VAR]: ['canary'] } }] }], handle: side('live', true) },
      { match: [{ vars: { [SIDE_VAR]: ['canary'] } }], handle: [proxyPreferring(site, split.canary.slot, `${canaryId(site.app)}-new`)], terminal: true },
      { handle: [proxyPreferring(site, split.live.slot, `${canaryId(site.app)}-old`)], terminal: true },
    ],
  };
}

/** Before the canary boots: every request to the live slot first (the new one, once healthy, only as a fallback). */
export function canaryBootRequest(site: AppSite, live: Slot): CaddyRequest {
  return { method: 'PATCH', path: `/id/${routeId(site.app)}/handle`, body: [proxyPreferring(site, live, canaryBootId(site.app))], label: 'canary: traffic stays on the live slot' };
}

export function canaryRouteRequest(site: AppSite, split: CanarySplit): CaddyRequest {
  return { method: 'PATCH', path: `/id/${routeId(site.app)}/handle`, body: [canaryHandler(site, split)], label: `canary: ${split.percent}% of new sessions to ${split.canary.version}` };
}

/** Ending a canary: every request to `keep` (the other slot only as a fallback), so stopping the other one takes nothing from a handler that prefers it. */
export const canaryEndId = (app: string) => `xamal-${app}-canary-end`;

export function canaryHandoverRequest(site: AppSite, keep: Slot): CaddyRequest {
  return { method: 'PATCH', path: `/id/${routeId(site.app)}/handle`, body: [proxyPreferring(site, keep, canaryEndId(site.app))], label: `canary: every request to the ${keep} slot` };
}

/** The ordinary route again (both slots, `first`): promote and abort end with it. */
export function normalRouteRequest(site: AppSite): CaddyRequest {
  return { ...liveRequest(site), label: 'ordinary route' };
}

export type CanaryRouteState = 'canary' | 'booting' | 'ending' | 'other';

/** Pure: what the app's route (as Caddy has it) does: split, canary booting, a canary's end handing over, or anything else. */
export function canaryRouteState(route: unknown, app: string): CanaryRouteState {
  const handle = route !== null && typeof route === 'object' ? (route as { handle?: unknown }).handle : undefined;
  const id = Array.isArray(handle) ? (handle[0] as { '@id'?: unknown } | undefined)?.['@id'] : undefined;
  return id === canaryId(app) ? 'canary' : id === canaryBootId(app) ? 'booting' : id === canaryEndId(app) ? 'ending' : 'other';
}

// --- the state file on each host of the primary role --------------------------------------------

const VersionSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/);
const SlotSchema = z.enum(SLOTS);
export const CanaryStateSchema = z.object({
  version: VersionSchema,
  slot: SlotSchema,
  live: z.object({ version: VersionSchema, slot: SlotSchema }),
  percent: z.number().int().min(1).max(99),
  startedAt: z.string(),
  performer: z.string(),
});
export type CanaryState = z.infer<typeof CanaryStateSchema>;

export const canaryStatePath = (layout: AppLayout) => `${layout.root}/canary.json`;
const STATE_END = 'xamal-canary-state-end';

export function splitOf(state: CanaryState): CanarySplit {
  return { percent: state.percent, canary: { slot: state.slot, version: state.version }, live: state.live };
}

/** The state file's content (nothing when no canary runs), then an end marker. */
export function readCanaryStateCommand(layout: AppLayout): Command {
  return command(['sh', '-c', 'if [ -f "$1" ]; then cat "$1"; fi; printf "\\n%s\\n" "$2"', 'sh', canaryStatePath(layout), STATE_END], { label: 'read canary state' });
}

/**
 * Pure: the state file as read. `undefined`: no canary; `'unknown'`: the reply has no end marker
 * (a dry run's empty answer), so whether one runs is not known.
 */
export function parseCanaryState(stdout: string, host = 'host'): CanaryState | undefined | 'unknown' {
  const lines = stdout.trimEnd().split('\n');
  if (lines.at(-1)?.trim() !== STATE_END) return 'unknown';
  const text = lines.slice(0, -1).join('\n').trim();
  if (!text) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new XamalError('external', `${host}: the canary state file is not JSON: ${text.slice(0, 200)}`);
  }
  const parsed = CanaryStateSchema.safeParse(json);
  if (!parsed.success) throw new XamalError('external', `${host}: the canary state file is not one xamal wrote: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export function writeCanaryStateCommand(layout: AppLayout, state: CanaryState): Command {
  return command(['sh', '-c', 'cat > "$1.new" && mv -f "$1.new" "$1"', 'sh', canaryStatePath(layout)], { stdin: `${JSON.stringify(CanaryStateSchema.parse(state))}\n`, label: 'write canary state' });
}

export function removeCanaryStateCommand(layout: AppLayout): Command {
  return command(['rm', '-f', '--', canaryStatePath(layout)], { label: 'remove canary state' });
}

// --- promote and abort, as plans ----------------------------------------------------------------

export type CanaryStep = { kind: 'run'; command: Command } | { kind: 'caddy'; request: CaddyRequest };

export interface CanaryPlanInput {
  layout: AppLayout;
  site: AppSite;
  primaryRole: string;
  drainTimeout: number;
  healthPath: string;
  healthTimeout: number;
  sshUser: string;
}

const run = (cmd: Command): CanaryStep => ({ kind: 'run', command: cmd });

/** Checks the app through Caddy, when it has host names to check by. */
function verifyStep(p: CanaryPlanInput): CanaryStep[] {
  return p.site.hosts.length ? [run(throughCaddyCommand({ hosts: p.site.hosts, https: serverFor(p.site).name === 'xamal' }, p.healthPath, p.healthTimeout))] : [];
}

/**
 * Promote: every request to the canary's slot (the old slot as a fallback), then the old slot
 * stopped gracefully (only requests it already had), then the ordinary route (one config change),
 * checked through Caddy, the canary slot marked live and `current` moved, the state file removed.
 * No slot is stopped while the route in effect prefers it, and each config change replaces a
 * handler without active checks whose first pick is up (FACTS.md#caddy-reload-race).
 */
export function promotePlan(p: CanaryPlanInput, state: CanaryState): CanaryStep[] {
  return [
    { kind: 'caddy', request: canaryHandoverRequest(p.site, state.slot) },
    run(asRoot(stopSlotCommand(p.layout.app, p.primaryRole, state.live.slot, p.drainTimeout), p.sshUser)),
    { kind: 'caddy', request: normalRouteRequest(p.site) },
    ...verifyStep(p),
    run(markLiveCommand(p.layout, p.primaryRole, state.slot, state.version, true)),
    run(removeCanaryStateCommand(p.layout)),
  ];
}

/**
 * Abort: every request to the live slot (the canary as a fallback), then the canary slot stopped
 * gracefully, then the ordinary route, checked through Caddy; the live slot and `current` never
 * moved. Ordered as promote is, for the same reasons.
 */
export function abortPlan(p: CanaryPlanInput, state: CanaryState): CanaryStep[] {
  return [
    { kind: 'caddy', request: canaryHandoverRequest(p.site, state.live.slot) },
    run(asRoot(stopSlotCommand(p.layout.app, p.primaryRole, state.slot, p.drainTimeout), p.sshUser)),
    { kind: 'caddy', request: normalRouteRequest(p.site) },
    ...verifyStep(p),
    run(removeCanaryStateCommand(p.layout)),
  ];
}
