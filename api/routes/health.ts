import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';

export const HealthResponseSchema = z.object({
  status: z.enum(['ok', 'degraded']),
  checks: z.record(z.string(), z.enum(['up', 'down'])),
});

export const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/v1/health',
    { config: { public: true }, schema: { response: { 200: HealthResponseSchema, 503: HealthResponseSchema } } },
    async (_req, reply) => {
      const report = await app.services.health.report();
      return reply.code(report.status === 'ok' ? 200 : 503).send(report);
    },
  );
};
