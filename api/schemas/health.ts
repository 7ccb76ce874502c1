import { z } from 'zod';

/** `GET /healthz`: the process answers. */
export const LivenessSchema = z.object({ status: z.literal('ok') });
export type Liveness = z.infer<typeof LivenessSchema>;

/** `GET /readyz` and `GET /v1/health`: every dependency check, by name. */
export const HealthReportSchema = z.object({
  status: z.enum(['ok', 'degraded']),
  checks: z.record(z.string(), z.enum(['up', 'down'])),
});
export type HealthReport = z.infer<typeof HealthReportSchema>;
