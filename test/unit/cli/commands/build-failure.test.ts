import { describe, expect, it } from 'vitest';
import { failureReport } from '../../../../cli/commands/build.ts';

const T = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';

describe("xamal build's report of a failed target", () => {
  it('prints each log line once: the lines before the error, then the error that ends with the log tail', () => {
    const log = Array.from({ length: 50 }, (_, i) => `log line ${i}`).join('\n') + '\n';
    const tail30 = Array.from({ length: 30 }, (_, i) => `log line ${20 + i}`).join('\n');
    const error = `compile failed (exit 1)\n--- log tail ---\n${tail30}`;
    const report = failureReport(T, error, log).split('\n');
    expect(report[0]).toBe(`--- ${T} failed:`);
    for (let i = 10; i < 50; i++) expect(report.filter((l) => l === `log line ${i}`), `line ${i}`).toHaveLength(1);
    expect(report).not.toContain('log line 9');
    expect(report.indexOf('log line 19')).toBeLessThan(report.indexOf('compile failed (exit 1)'));
    expect(report.at(-1)).toBe('log line 49');
  });

  it('prints the log tail when the error holds none of it, and the error alone when there is no log', () => {
    expect(failureReport(T, 'store unreachable', 'a\nb\n')).toBe(`--- ${T} failed:\na\nb\nstore unreachable`);
    expect(failureReport(T, 'store unreachable', '')).toBe(`--- ${T} failed:\nstore unreachable`);
  });
});
