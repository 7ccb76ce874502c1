import type { HealthReport } from '../schemas/health.ts';

/** A named dependency check; the farm wires real ones (Redis PING, Docker _ping, the store). */
export type HealthCheck = () => Promise<boolean>;


export function healthService(checks: Record<string, HealthCheck>) {
  return {
    async report(): Promise<HealthReport> {
      const names = Object.keys(checks);
      const results = await Promise.all(names.map((n) => checks[n]!().catch(() => false)));
      const out = Object.fromEntries(names.map((n, i) => [n, results[i] ? 'up' : 'down'] as const));
      return { status: results.every(Boolean) ? 'ok' : 'degraded', checks: out };
    },
  };
}
export type HealthService = ReturnType<typeof healthService>;
