import { describe, expect, it } from 'vitest';
import { timed } from '../../../core/timing.ts';

describe('timed', () => {
  it('records whole milliseconds under the name and passes the result through', async () => {
    const timings: Record<string, number> = {};
    expect(await timed(timings, 'sleep', () => new Promise((r) => setTimeout(() => r('ok'), 20)))).toBe('ok');
    expect(Number.isInteger(timings.sleep)).toBe(true);
    expect(timings.sleep).toBeGreaterThanOrEqual(15);
  });

  it('records the time of a step that throws, and rethrows', async () => {
    const timings: Record<string, number> = {};
    await expect(timed(timings, 'boom', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(Object.keys(timings)).toEqual(['boom']);
  });
});
