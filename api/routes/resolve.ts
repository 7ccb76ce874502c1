import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppNameSchema, HostFingerprintSchema, TargetSelectorSchema } from '../../core/index.ts';

const ResolveBody = z
  .object({
    app: AppNameSchema,
    version: z.string().regex(/^(?:[0-9a-f]{7,40}|\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?(?:\+[0-9A-Za-z.]+)?)$/, 'expected a commit SHA (or a unique prefix of ≥ 7) or a mix.exs version'),
    host: HostFingerprintSchema,
    selector: TargetSelectorSchema.optional(),
  })
  .strict();

export const resolveRoutes: FastifyPluginAsyncZod = async (app) => {
  app.post('/v1/resolve', { schema: { body: ResolveBody } }, async (req) => app.services.resolve.resolve(req.body));
};
