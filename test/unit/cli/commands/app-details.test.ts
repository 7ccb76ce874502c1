import { describe, expect, it } from 'vitest';
import { roleLine } from '../../../../cli/commands/app.ts';

describe('xamal app details, one line per role', () => {
  it('shows a running canary beside the live slot, and nothing about one when none runs', () => {
    const r = { role: 'web', live: 'blue' as const, running: ['blue' as const, 'green' as const], version: 'v1' };
    expect(roleLine({ ...r, canary: { version: 'v2', slot: 'green', percent: 10 } })).toBe('web: live blue (v1), running: blue, green; canary v2 in green (10% of new sessions)');
    expect(roleLine(r)).toBe('web: live blue (v1), running: blue, green');
    expect(roleLine({ role: 'jobs', live: undefined, version: undefined, running: [] })).toBe('jobs: live none (never deployed), running: none');
  });
});
