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
    expect(validateDeployConfig(minimal).rollout).toEqual({ watchS: undefined, intervalS: 2, failures: 2, max5xxPercent: undefined, minRequests: 20 });
  });

  it('takes durations as 60s, 2m, 500ms or a number of seconds', () => {
    expect(validateDeployConfig({ ...minimal, rollout: { watch: '60s', interval: '500ms' } }).rollout).toEqual({ watchS: 60, intervalS: 0.5, failures: 2, max5xxPercent: undefined, minRequests: 20 });
    expect(validateDeployConfig({ ...minimal, rollout: { watch: '2m', interval: 5, failures: 4 } }).rollout).toEqual({ watchS: 120, intervalS: 5, failures: 4, max5xxPercent: undefined, minRequests: 20 });
    expect(validateDeployConfig({ ...minimal, rollout: { watch: 1.5, interval: 0.5 } }).rollout.watchS).toBe(1.5);
  });

  it('names the field and what was expected for a bad duration, a bad failure count or an unknown key', () => {
    expect(problems({ ...minimal, rollout: { watch: 'a minute' } })).toEqual(['rollout/watch: expected a positive duration like 60s, 2m or 500ms, got "a minute"']);
    expect(problems({ ...minimal, rollout: { watch: '0s' } })).toEqual(['rollout/watch: expected a positive duration like 60s, 2m or 500ms, got "0s"']);
    expect(problems({ ...minimal, rollout: { watch: true } })).toEqual([expect.stringMatching(/^rollout\/watch: expected a duration like 60s, 2m or 500ms/)]);
    expect(problems({ ...minimal, rollout: { watch: '60s', failures: 0 } })).toEqual(['rollout/failures: expected at least 1, got 0']);
    expect(problems({ ...minimal, rollout: { watch: '60s', max_5xx: 5 } })).toEqual([expect.stringMatching(/^rollout\/max_5xx: unknown key/)]);
  });

  it('takes max_5xx_percent (with a watch and caddy.hosts) and min_requests, naming the field and what is missing otherwise', () => {
    const hosts = { caddy: { hosts: ['app.example.com'] } };
    expect(validateDeployConfig({ ...minimal, ...hosts, rollout: { watch: '60s', max_5xx_percent: 2.5, min_requests: 100 } }).rollout).toMatchObject({ max5xxPercent: 2.5, minRequests: 100 });
    expect(problems({ ...minimal, ...hosts, rollout: { max_5xx_percent: 5 } })).toEqual(['rollout/max_5xx_percent: is checked during the watch: set rollout.watch too']);
    expect(problems({ ...minimal, rollout: { watch: '60s', max_5xx_percent: 5 } })).toEqual(["rollout/max_5xx_percent: counts the answers in Caddy's access log of the app's host names: set caddy.hosts too"]);
    expect(problems({ ...minimal, ...hosts, rollout: { watch: '60s', max_5xx_percent: 101 } })).toEqual([expect.stringMatching(/^rollout\/max_5xx_percent: expected a percentage <= 100/)]);
    expect(problems({ ...minimal, ...hosts, rollout: { watch: '60s', max_5xx_percent: '5%' } })).toEqual(['rollout/max_5xx_percent: expected number, got string']);
    expect(problems({ ...minimal, ...hosts, rollout: { watch: '60s', min_requests: 0 } })).toEqual(['rollout/min_requests: expected at least 1, got 0']);
  });

  it('refuses an interval longer than the watch window', () => {
    expect(problems({ ...minimal, rollout: { watch: '10s', interval: '1m' } })).toEqual(['rollout/interval: expected an interval no longer than watch (10 s)']);
  });
});
