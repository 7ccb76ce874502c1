import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';

export const HealthResponseSchema = z.object({
  status: z.enum(['ok', 'degraded']),
  checks: z.record(z.string(), z.enum(['up', 'down'])),
});

export const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  // Liveness: the process answers. Readiness (/readyz, and /v1/health): every dependency answers.
  app.get('/healthz', { config: { public: true, accessLog: 'debug' } }, async () => ({ status: 'ok' }));
  for (const path of ['/readyz', '/v1/health']) app.get(
    path,
    { config: { public: true, accessLog: 'debug' }, schema: { response: { 200: HealthResponseSchema, 503: HealthResponseSchema } } },
    async (_req, reply) => {
      const report = await app.services.health.report();
      return reply.code(report.status === 'ok' ? 200 : 503).send(report);
    },
  );
};
