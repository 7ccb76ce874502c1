import { describe, expect, it } from 'vitest';
import { detailsFlow, routeState } from '../../../../deployer/flows/details.ts';
import type { RecordedStep } from '../../../../deployer/remote.ts';
import { testContext } from '../../../../testkit/deployer/context.ts';

const route = { '@id': 'xamal-shop', handle: [{ '@id': 'xamal-shop-proxy', handler: 'reverse_proxy' }] };

function host(over: { upstreamsStatus?: number } = {}) {
  return (step: RecordedStep) => {
    if (step.kind === 'caddy') {
      if (step.request.path === '/id/xamal-shop') return { status: 200, body: JSON.stringify(route) };
      if (step.request.path === '/reverse_proxy/upstreams') {
        return over.upstreamsStatus ? { status: over.upstreamsStatus, body: 'boom' } : { status: 200, body: JSON.stringify([{ address: '127.0.0.1:4001', num_requests: 1, fails: 0 }, { address: '127.0.0.1:5000', num_requests: 9, fails: 0 }]) };
      }
      return undefined;
    }
    if (step.kind === 'run' && (step.command.label ?? '').startsWith('slot state')) return { stdout: 'blue inactive /opt/xamal/shop/releases/v1\ngreen active /opt/xamal/shop/releases/v2\ncurrent /opt/xamal/shop/releases/v2\nlive green\n' };
    return undefined;
  };
}

describe('xamal details', () => {
  it('per host: each role live slot and version, and on primary-role hosts the route state and only this app upstreams', async () => {
    const { ctx } = testContext({ command: 'details', hosts: ['web1', 'jobs1'], respond: host() });
    const out = await detailsFlow(ctx);
    expect(out.map((o) => o.host)).toEqual(['web1', 'jobs1']);
    expect(out[0]!.ok && out[0]!.value).toEqual({
      roles: [{ role: 'web', live: 'green', running: ['green'], version: 'v2' }],
      caddy: { route, state: 'serving', upstreams: [{ address: '127.0.0.1:4001', num_requests: 1, fails: 0 }] },
    });
    expect(out[1]!.ok && out[1]!.value).toEqual({ roles: [{ role: 'jobs', live: 'green', running: ['green'], version: 'v2' }] });
  });

  it('a host where Caddy cannot be read fails with that error; the others still report', async () => {
    const { ctx } = testContext({ command: 'details', hosts: ['web1', 'jobs1'], respond: host({ upstreamsStatus: 500 }) });
    const out = await detailsFlow(ctx);
    expect(out.map((o) => o.ok)).toEqual([false, true]);
    expect(!out[0]!.ok && out[0]!.error.message).toMatch(/web1: Caddy admin GET \/reverse_proxy\/upstreams .*answered 500/);
  });

  it('route state: serving, the maintenance page, or none', () => {
    expect(routeState(route, 'shop')).toBe('serving');
    expect(routeState({ handle: [{ '@id': 'xamal-shop-maintenance' }] }, 'shop')).toBe('maintenance');
    expect(routeState(null, 'shop')).toBe('none');
  });
});
