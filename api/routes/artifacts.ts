import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppNameSchema, formatTarget, parseSelectorString, TargetTupleSchema } from '../../core/index.ts';
import { CommitSchema } from '../../core/build/job.ts';
import { ManifestSchema } from '../../core/build/manifest.ts';

const Params = z.object({ app: AppNameSchema, version: CommitSchema, tuple: TargetTupleSchema });

const ListQuery = z
  .object({
    app: AppNameSchema,
    version: z.string().regex(/^(?:[0-9a-f]{7,40}|\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?(?:\+[0-9A-Za-z.]+)?)$/, 'expected a commit SHA (or a unique prefix of ≥ 7) or a mix.exs version'),
    tuple: TargetTupleSchema.optional(),
    selector: z.string().max(300).optional(),
  })
  .strict();

export const artifactRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get('/v1/artifacts', { schema: { querystring: ListQuery } }, async (req) => {
    const { app: name, version, tuple, selector } = req.query;
    const found = await app.services.artifacts.find(name, version, {
      ...(tuple ? { tuple: formatTarget(tuple) } : {}),
      ...(selector ? { selector: parseSelectorString(selector) } : {}),
    });
    return { artifacts: found.map((a) => ({ tuple: a.manifest.tuple, version: a.manifest.version, releaseVersion: a.manifest.releaseVersion, builtAt: a.manifest.builtAt, sha256: a.manifest.tarball.sha256, manifestKey: a.key })) };
  });

  app.get('/v1/artifacts/:app/:version/:tuple', { schema: { params: Params, response: { 200: ManifestSchema } } }, async (req) => {
    const { app: name, version, tuple } = req.params;
    return app.services.artifacts.manifest({ app: name, version, target: tuple });
  });

  app.get('/v1/artifacts/:app/:version/:tuple/download', { schema: { params: Params } }, async (req, reply) => {
    const { app: name, version, tuple } = req.params;
    const { manifest, body } = await app.services.artifacts.tarball({ app: name, version, target: tuple });
    const file = manifest.tarball.key.slice(manifest.tarball.key.lastIndexOf('/') + 1);
    return reply
      .header('content-type', 'application/gzip')
      .header('content-disposition', `attachment; filename="${file}"`)
      .header('x-xamal-sha256', manifest.tarball.sha256)
      .header('digest', `sha-256=${Buffer.from(manifest.tarball.sha256, 'hex').toString('base64')}`)
      .send(body);
  });
};
