import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../core/index.ts';
import { validateDeployConfig } from '../../../../deployer/config/load.ts';

const minimal = { service: 'my-app', servers: ['10.0.0.1'] };

function problems(value: unknown): string[] {
  try {
    validateDeployConfig(value);
  } catch (err) {
    if (err instanceof ValidationError) return err.issues.map((i) => `${i.path}: ${i.message}`);
    throw err;
  }
  throw new Error('expected the config to be invalid');
}

describe('deploy.yml rollout', () => {
  it('watches nothing by default, checking every 2 s with 2 failures in a row as the limit once a watch is set', () => {
    expect(validateDeployConfig(minimal).rollout).toEqual({ watchS: undefined, intervalS: 2, failures: 2 });
  });

  it('takes durations as 60s, 2m, 500ms or a number of seconds', () => {
    expect(validateDeployConfig({ ...minimal, rollout: { watch: '60s', interval: '500ms' } }).rollout).toEqual({ watchS: 60, intervalS: 0.5, failures: 2 });
    expect(validateDeployConfig({ ...minimal, rollout: { watch: '2m', interval: 5, failures: 4 } }).rollout).toEqual({ watchS: 120, intervalS: 5, failures: 4 });
    expect(validateDeployConfig({ ...minimal, rollout: { watch: 1.5, interval: 0.5 } }).rollout.watchS).toBe(1.5);
  });

  it('names the field and what was expected for a bad duration, a bad failure count or an unknown key', () => {
    expect(problems({ ...minimal, rollout: { watch: 'a minute' } })).toEqual(['rollout/watch: expected a positive duration like 60s, 2m or 500ms, got "a minute"']);
    expect(problems({ ...minimal, rollout: { watch: '0s' } })).toEqual(['rollout/watch: expected a positive duration like 60s, 2m or 500ms, got "0s"']);
    expect(problems({ ...minimal, rollout: { watch: true } })).toEqual([expect.stringMatching(/^rollout\/watch: expected a duration like 60s, 2m or 500ms/)]);
    expect(problems({ ...minimal, rollout: { watch: '60s', failures: 0 } })).toEqual(['rollout/failures: expected at least 1, got 0']);
    expect(problems({ ...minimal, rollout: { watch: '60s', max_5xx: 5 } })).toEqual([expect.stringMatching(/^rollout\/max_5xx: unknown key/)]);
  });

  it('refuses an interval longer than the watch window', () => {
    expect(problems({ ...minimal, rollout: { watch: '10s', interval: '1m' } })).toEqual(['rollout/interval: expected an interval no longer than watch (10 s)']);
  });
});
