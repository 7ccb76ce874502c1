import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ResolveAnswerSchema, ResolveRequestSchema } from '../schemas/resolve.ts';

export const resolveRoutes: FastifyPluginAsyncZod = async (app) => {
  app.post('/v1/resolve', { schema: { body: ResolveRequestSchema, response: { 200: ResolveAnswerSchema } } }, async (req) => app.services.resolve.resolve(req.body));
};
