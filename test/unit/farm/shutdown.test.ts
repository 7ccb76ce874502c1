import { describe, expect, it } from 'vitest';
import { shutdown, type Closable } from '../../../farm/shutdown.ts';

const never = () => new Promise<void>(() => {});
const after = (ms: number) => () => new Promise<void>((r) => setTimeout(r, ms));
/** Slack for a loaded machine (the suite runs unit tests beside integration tests): a hang would never return at all. */
const SLACK_MS = 1_500;

describe('shutdown', () => {
  it('closes every part in the given order and reports a clean stop', async () => {
    const order: string[] = [];
    const part = (name: string): Closable => ({ name, close: async () => void order.push(name) });
    const r = await shutdown([part('api'), part('workers'), part('redis')], 1_000);
    expect(order).toEqual(['api', 'workers', 'redis']);
    expect(r).toMatchObject({ clean: true, forced: [], stuck: [] });
  });

  it('forces the part that hangs and every part after it, and returns within the drain timeout', async () => {
    const forced: string[] = [];
    const parts: Closable[] = [
      { name: 'api', close: async () => {} },
      { name: 'workers', close: never, force: async () => void forced.push('workers') },
      { name: 'redis', close: async () => {}, force: async () => void forced.push('redis') },
    ];
    const t0 = Date.now();
    const r = await shutdown(parts, 400);
    expect(Date.now() - t0).toBeLessThan(400 + SLACK_MS);
    expect(r).toMatchObject({ clean: false, forced: ['workers', 'redis'], stuck: [] });
    expect(forced.sort()).toEqual(['redis', 'workers']);
  });

  it('does not wait for a force that hangs too: the part is reported stuck', async () => {
    const lines: string[] = [];
    const t0 = Date.now();
    const r = await shutdown([{ name: 'workers', close: never, force: never }], 400, (l) => lines.push(l));
    expect(Date.now() - t0).toBeLessThan(400 + SLACK_MS);
    expect(r.stuck).toEqual(['workers']);
    expect(lines.join('\n')).toMatch(/workers did not stop .* exiting anyway/);
  });

  it('gives parts that finish in time all they need, one after the other', async () => {
    const r = await shutdown([{ name: 'a', close: after(100) }, { name: 'b', close: after(100) }], 1_000);
    expect(r.clean).toBe(true);
    expect(r.ms).toBeGreaterThanOrEqual(190);
  });

  it('a part whose close fails does not stop the others from closing', async () => {
    const closed: string[] = [];
    const r = await shutdown([{ name: 'a', close: async () => { throw new Error('boom'); } }, { name: 'b', close: async () => void closed.push('b') }], 1_000);
    expect(closed).toEqual(['b']);
    expect(r.clean).toBe(true);
  });
});
