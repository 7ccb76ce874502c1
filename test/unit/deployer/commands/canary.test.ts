import { describe, expect, it } from 'vitest';
import { displayCommand, isXamalError } from '../../../../core/index.ts';
import { appSite, planCaddy, proxyHandler, routeId, appRoute } from '../../../../deployer/commands/caddy.ts';
import {
  abortPlan,
  belowHexPattern,
  canaryBootRequest,
  canaryCookie,
  canaryHandler,
  canaryHandoverRequest,
  canaryRouteState,
  checkCanaryPercent,
  parseCanaryState,
  promotePlan,
  readCanaryStateCommand,
  shareThreshold,
  writeCanaryStateCommand,
  type CanaryPlanInput,
  type CanaryState,
  type CanaryStep,
} from '../../../../deployer/commands/canary.ts';
import { appLayout } from '../../../../deployer/commands/layout.ts';
import { validateDeployConfig } from '../../../../deployer/config/load.ts';

const config = validateDeployConfig({ service: 'shop', servers: { web: ['web1'], jobs: ['jobs1'] }, caddy: { hosts: ['shop.example.com'], app_port: 4000, ssl: 'internal' } });
const layout = appLayout('shop', undefined);
const site = appSite(config, layout);
const split = { percent: 10, canary: { slot: 'green' as const, version: 'v2.0' }, live: { slot: 'blue' as const, version: 'v1.0' } };
const state: CanaryState = { version: 'v2.0', slot: 'green', live: { version: 'v1.0', slot: 'blue' }, percent: 10, startedAt: '2026-12-05T09:00:00.000Z', performer: 'Ada' };
const input: CanaryPlanInput = { layout, site, primaryRole: 'web', drainTimeout: 30, healthPath: '/up', healthTimeout: 10, sshUser: 'deploy' };

type Route = { match?: Record<string, unknown>[]; handle: Record<string, unknown>[]; terminal?: boolean };
const routesOf = (h: Record<string, unknown>) => h.routes as Route[];
const upstreams = (proxy: Record<string, unknown>) => (proxy.upstreams as { dial: string }[]).map((u) => u.dial);

/** Which side the split's routes pick for a request, as Caddy evaluates them (vars and vars_regexp on placeholders, not). */
function evaluate(handler: Record<string, unknown>, req: { cookie?: string; uuid: string }): { proxy: Record<string, unknown>; setCookie: string[] } {
  const vars: Record<string, string> = {};
  const setCookie: string[] = [];
  const value = (key: string) => (key === `{http.request.cookie.${canaryCookie('shop')}}` ? (req.cookie ?? '') : key === '{http.request.uuid}' ? req.uuid : (vars[key] ?? ''));
  const matches = (m: Record<string, unknown>): boolean =>
    Object.entries(m).every(([kind, v]) => {
      if (kind === 'vars') return Object.entries(v as Record<string, string[]>).every(([k, vals]) => vals.includes(value(k)));
      if (kind === 'vars_regexp') return Object.entries(v as Record<string, { pattern: string }>).every(([k, p]) => new RegExp(p.pattern).test(value(k)));
      if (kind === 'not') return !(v as Record<string, unknown>[]).some(matches);
      throw new Error(`matcher ${kind} not modelled`);
    });
  for (const r of routesOf(handler)) {
    if (r.match && !r.match.some(matches)) continue;
    for (const h of r.handle) {
      if (h.handler === 'vars') Object.assign(vars, Object.fromEntries(Object.entries(h).filter(([k]) => k !== 'handler')));
      if (h.handler === 'headers') setCookie.push(...((h.response as { add: Record<string, string[]> }).add['Set-Cookie'] ?? []));
      if (h.handler === 'reverse_proxy') return { proxy: h, setCookie };
    }
    if (r.terminal) break;
  }
  throw new Error('no proxy reached');
}

describe('canary percentages', () => {
  it('accepts whole percentages from 1 to 99 (as a number or as text, with or without %)', () => {
    expect(checkCanaryPercent('10')).toBe(10);
    expect(checkCanaryPercent('1%')).toBe(1);
    expect(checkCanaryPercent(99)).toBe(99);
  });

  it.each(['0', '100', '-5', '10.5', 'ten', '', 150])('refuses %j with a usage error naming --canary and the range', (v) => {
    let err: unknown;
    try {
      checkCanaryPercent(v);
    } catch (e) {
      err = e;
    }
    expect(isXamalError(err) && err.code).toBe('usage');
    expect((err as Error).message).toContain('--canary: expected a whole percentage of new sessions from 1 to 99');
    expect((err as Error).message).toContain(JSON.stringify(v));
  });

  it('the draw pattern matches exactly the threshold count of the 65,536 values of four hex digits, for every percentage', () => {
    const all = Array.from({ length: 65_536 }, (_, i) => i.toString(16).padStart(4, '0'));
    for (const p of [1, 2, 3, 10, 33, 50, 67, 90, 99]) {
      const re = new RegExp(belowHexPattern(shareThreshold(p)));
      const n = shareThreshold(p);
      expect(Math.abs(n / 65_536 - p / 100)).toBeLessThan(1e-4);
      const hits = all.filter((h) => re.test(`${h}abcd-1234-4abc-8def-0123456789ab`));
      expect(hits.length).toBe(n);
      // The values below the threshold, none above.
      expect(hits.at(-1)).toBe((n - 1).toString(16).padStart(4, '0'));
    }
  });
});

describe('the split route', () => {
  const h = canaryHandler(site, split);

  it("is a subroute tagged xamal-<app>-canary whose two proxies each list both slots, the chosen one first, with the app's retries and passive checks and no active ones", () => {
    expect(h['@id']).toBe('xamal-shop-canary');
    expect(h.handler).toBe('subroute');
    const proxies = routesOf(h).flatMap((r) => r.handle.filter((x) => x.handler === 'reverse_proxy'));
    expect(proxies.map((p) => p['@id'])).toEqual(['xamal-shop-canary-new', 'xamal-shop-canary-old']);
    expect(proxies.map(upstreams)).toEqual([['127.0.0.1:4001', '127.0.0.1:4000'], ['127.0.0.1:4000', '127.0.0.1:4001']]);
    const { '@id': _a, upstreams: _u, health_checks: checks, ...rest } = proxyHandler(site);
    expect(checks).toMatchObject({ active: expect.anything(), passive: expect.anything() });
    for (const p of proxies) {
      expect(p).toMatchObject(rest);
      expect(p.health_checks).toEqual({ passive: (checks as { passive: unknown }).passive });
    }
  });

  it("sends a client with the canary's cookie to the canary and one with the live version's cookie to the live slot, setting no cookie", () => {
    expect(evaluate(h, { cookie: 'v2.0', uuid: 'ffff0000' })).toEqual({ proxy: expect.objectContaining({ '@id': 'xamal-shop-canary-new' }), setCookie: [] });
    expect(evaluate(h, { cookie: 'v1.0', uuid: '00000000' })).toEqual({ proxy: expect.objectContaining({ '@id': 'xamal-shop-canary-old' }), setCookie: [] });
  });

  it("draws a client without a cookie (or with an earlier canary's) by its request's random UUID, and sets the cookie of the version drawn", () => {
    const secure = '; Path=/; Max-Age=604800; HttpOnly; SameSite=Lax; Secure';
    expect(evaluate(h, { uuid: '0000abcd-0000' })).toEqual({ proxy: expect.objectContaining({ '@id': 'xamal-shop-canary-new' }), setCookie: [`xamal_shop=v2.0${secure}`] });
    expect(evaluate(h, { uuid: 'ffffabcd-0000' })).toEqual({ proxy: expect.objectContaining({ '@id': 'xamal-shop-canary-old' }), setCookie: [`xamal_shop=v1.0${secure}`] });
    expect(evaluate(h, { cookie: 'v0.9', uuid: '0000abcd' }).setCookie).toEqual([`xamal_shop=v2.0${secure}`]);
    // 10 %: 0x199a of 0x10000.
    expect(evaluate(h, { uuid: '1999ffff' }).proxy['@id']).toBe('xamal-shop-canary-new');
    expect(evaluate(h, { uuid: '199a0000' }).proxy['@id']).toBe('xamal-shop-canary-old');
  });

  it('names its cookie after the app and destination, and drops Secure on the plain-HTTP server', () => {
    const staging = appSite(validateDeployConfig({ service: 'shop', servers: ['web1'], caddy: { hosts: [], app_port: 4000 } }), appLayout('shop', 'staging'));
    const hs = canaryHandler(staging, split);
    expect(canaryCookie('shop-staging')).toBe('xamal_shop-staging');
    expect(JSON.stringify(hs)).toContain('{http.request.cookie.xamal_shop-staging}');
    expect(evaluate({ routes: routesOf(hs).map((r) => JSON.parse(JSON.stringify(r).replaceAll('xamal_shop-staging', 'xamal_shop')) as Route) }, { uuid: '00000000' }).setCookie).toEqual(['xamal_shop=v2.0; Path=/; Max-Age=604800; HttpOnly; SameSite=Lax']);
  });

  it('refuses a canary of the live version', () => {
    expect(() => canaryHandler(site, { ...split, canary: { slot: 'green', version: 'v1.0' } })).toThrow(/v1.0 is already live/);
  });

  it('while the canary boots, the route prefers the live slot (passive checks only: a booting slot gets nothing while the live one answers)', () => {
    const r = canaryBootRequest(site, 'green');
    expect(r).toMatchObject({ method: 'PATCH', path: '/id/xamal-shop/handle' });
    expect(upstreams((r.body as Record<string, unknown>[])[0]!)).toEqual(['127.0.0.1:4001', '127.0.0.1:4000']);
    expect((r.body as Record<string, unknown>[])[0]!.health_checks).not.toHaveProperty('active');
  });

  it("tells the split, the boot route and the ordinary route apart; setup's plan keeps a split as it is", () => {
    expect(canaryRouteState(appRoute(site, [h]), 'shop')).toBe('canary');
    expect(canaryRouteState(appRoute(site, (canaryBootRequest(site, 'blue').body as unknown[])), 'shop')).toBe('booting');
    expect(canaryRouteState(appRoute(site, (canaryHandoverRequest(site, 'blue').body as unknown[])), 'shop')).toBe('ending');
    expect(canaryRouteState(appRoute(site), 'shop')).toBe('other');
    const current = { apps: { http: { servers: { xamal: { listen: [':443'], routes: [appRoute(site, [h])] } } }, tls: { automation: { policies: [{ '@id': 'xamal-shop-tls', subjects: ['shop.example.com'], issuers: [{ module: 'internal' }] }] }, certificates: { automate: ['shop.example.com'] } } } };
    const plan = planCaddy(current, site);
    expect(plan.requests).toEqual([]);
    expect(plan.warnings.join()).toContain('runs a canary');
    expect(routeId('shop')).toBe('xamal-shop');
  });
});

describe('the canary state file', () => {
  it('round-trips through write and read, and tells "none" from a dry run\'s empty answer', () => {
    const w = writeCanaryStateCommand(layout, state);
    expect(displayCommand(w)).toContain('/opt/xamal/shop/canary.json');
    expect(parseCanaryState(`${w.stdin as string}\nxamal-canary-state-end\n`)).toEqual(state);
    expect(parseCanaryState('\nxamal-canary-state-end\n')).toBeUndefined();
    expect(parseCanaryState('')).toBe('unknown');
    expect(displayCommand(readCanaryStateCommand(layout))).toContain('/opt/xamal/shop/canary.json');
  });

  it('refuses a file that is not JSON, or not one xamal wrote, naming the host', () => {
    expect(() => parseCanaryState('{oops\nxamal-canary-state-end', 'web1')).toThrow(/web1: the canary state file is not JSON/);
    expect(() => parseCanaryState('{"version":"v2","percent":300}\nxamal-canary-state-end', 'web1')).toThrow(/web1: the canary state file is not one xamal wrote: slot/);
  });
});

describe('promote and abort plans', () => {
  const show = (steps: CanaryStep[]) => steps.map((s) => (s.kind === 'caddy' ? `caddy ${s.request.method} ${s.request.path}` : displayCommand(s.command)));
  const bodyOf = (step: CanaryStep | undefined) => ((step as Extract<CanaryStep, { kind: 'caddy' }>).request.body as Record<string, unknown>[])[0]!;

  it('promote: every request to the canary slot, then the old slot stopped (as root), then the ordinary route, a check through Caddy, the canary marked live with current moved, the state removed', () => {
    const steps = promotePlan(input, state);
    const text = show(steps);
    expect(text[0]).toBe('caddy PATCH /id/xamal-shop/handle');
    expect(bodyOf(steps[0])['@id']).toBe('xamal-shop-canary-end');
    expect(upstreams(bodyOf(steps[0]))).toEqual(['127.0.0.1:4001', '127.0.0.1:4000']);
    expect(text[1]).toBe('sudo -n systemctl stop -- xamal-shop-web@blue.service');
    expect(text[2]).toBe('caddy PATCH /id/xamal-shop/handle');
    expect((steps[2] as Extract<CanaryStep, { kind: 'caddy' }>).request.body).toEqual([proxyHandler(site)]);
    expect(text[3]).toContain('https://shop.example.com/up');
    expect(text[4]).toContain('/opt/xamal/shop/slots/web.live');
    expect(text[4]).toContain('green');
    expect(text[4]).toContain('/opt/xamal/shop/releases/v2.0');
    expect(text[5]).toBe('rm -f -- /opt/xamal/shop/canary.json');
    expect(steps).toHaveLength(6);
  });

  it('abort: every request to the live slot, then the canary slot stopped, then the ordinary route and a check through Caddy, the state removed; nothing marked live', () => {
    const steps = abortPlan(input, state);
    const text = show(steps);
    expect(text[0]).toBe('caddy PATCH /id/xamal-shop/handle');
    expect(upstreams(bodyOf(steps[0]))).toEqual(['127.0.0.1:4000', '127.0.0.1:4001']);
    expect(text[1]).toBe('sudo -n systemctl stop -- xamal-shop-web@green.service');
    expect(text[2]).toBe('caddy PATCH /id/xamal-shop/handle');
    expect(text[3]).toContain('https://shop.example.com/up');
    expect(text[4]).toBe('rm -f -- /opt/xamal/shop/canary.json');
    expect(text).toHaveLength(5);
    expect(text.join('\n')).not.toContain('.live');
  });

  it('stops no slot while the route in effect prefers it, and every route a config change replaces has no active checks and picks a slot that is up first (Caddy 2.6 cancels the replaced handler mid-request)', () => {
    for (const [plan, stopped, kept] of [[promotePlan(input, state), 'blue', 'green'], [abortPlan(input, state), 'green', 'blue']] as const) {
      // The split is what the first config change replaces.
      let inEffect: Record<string, unknown> = canaryHandler(site, split);
      const running = new Set(['blue', 'green']);
      for (const step of plan) {
        if (step.kind === 'run') {
          const m = /xamal-shop-web@(blue|green)\.service/.exec(displayCommand(step.command));
          if (m && displayCommand(step.command).includes('systemctl stop')) {
            expect(m[1]).toBe(stopped);
            const proxies = inEffect.handler === 'subroute' ? routesOf(inEffect).flatMap((r) => r.handle.filter((x) => x.handler === 'reverse_proxy')) : [inEffect];
            expect(proxies.map((p) => upstreams(p)[0])).toEqual([`127.0.0.1:${kept === 'green' ? 4001 : 4000}`]);
            running.delete(m[1]!);
          }
          continue;
        }
        const proxies = inEffect.handler === 'subroute' ? routesOf(inEffect).flatMap((r) => r.handle.filter((x) => x.handler === 'reverse_proxy')) : [inEffect];
        for (const p of proxies) {
          expect(p.health_checks).not.toHaveProperty('active');
          expect(running.has(upstreams(p)[0] === '127.0.0.1:4000' ? 'blue' : 'green')).toBe(true);
        }
        inEffect = (step.request.body as Record<string, unknown>[])[0]!;
      }
      expect(inEffect).toEqual(proxyHandler(site));
      expect([...running]).toEqual([kept]);
    }
  });

  it('without host names there is nothing to check through Caddy', () => {
    const bare = { ...input, site: { ...site, hosts: [] } };
    expect(promotePlan(bare, state)).toHaveLength(5);
    expect(abortPlan(bare, state)).toHaveLength(4);
  });
});
