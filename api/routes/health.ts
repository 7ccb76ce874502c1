import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { HealthReportSchema, LivenessSchema } from '../schemas/health.ts';

export const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  // Liveness: the process answers. Readiness (/readyz, and /v1/health): every dependency answers.
  app.get('/healthz', { config: { public: true, accessLog: 'debug' }, schema: { response: { 200: LivenessSchema } } }, async () => ({ status: 'ok' as const }));
  for (const path of ['/readyz', '/v1/health']) app.get(
    path,
    { config: { public: true, accessLog: 'debug' }, schema: { response: { 200: HealthReportSchema, 503: HealthReportSchema } } },
    async (_req, reply) => {
      const report = await app.services.health.report();
      return reply.code(report.status === 'ok' ? 200 : 503).send(report);
    },
  );
};
