import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppNameSchema, formatTarget, parseSelectorString, TargetTupleSchema } from '../../core/index.ts';
import { CommitSchema } from '../../core/contracts/build-job.ts';
import { ManifestSchema, type Manifest } from '../../core/contracts/manifest.ts';
import { verifyDownload } from '../downloads.ts';

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
  app.get('/v1/artifacts', { config: { accessLog: 'debug' }, schema: { querystring: ListQuery } }, async (req) => {
    const { app: name, version, tuple, selector } = req.query;
    const found = await app.services.artifacts.find(name, version, {
      ...(tuple ? { tuple: formatTarget(tuple) } : {}),
      ...(selector ? { selector: parseSelectorString(selector) } : {}),
    });
    return { artifacts: found.map((a) => ({ tuple: a.manifest.tuple, version: a.manifest.version, releaseVersion: a.manifest.releaseVersion, builtAt: a.manifest.builtAt, sha256: a.manifest.tarball.sha256, manifestKey: a.key })) };
  });

  // The manifest as the index validated it, serialised once per manifest: fastify sends a string with
  // a JSON content type as it is (the response schema stays for the OpenAPI document).
  app.get('/v1/artifacts/:app/:version/:tuple', { config: { accessLog: 'debug' }, schema: { params: Params, response: { 200: ManifestSchema } } }, async (req, reply) => {
    const { app: name, version, tuple } = req.params;
    return reply.type('application/json; charset=utf-8').send((await app.services.artifacts.manifestJson({ app: name, version, target: tuple })) as unknown as Manifest);
  });

  /**
   * 302 to a short-lived URL: the store's presigned one (S3) or one the API signs and serves itself.
   * Servers pull from it directly; the deployer is never in the data path.
   */
  app.get('/v1/artifacts/:app/:version/:tuple/download', { schema: { params: Params } }, async (req, reply) => {
    const { app: name, version, tuple } = req.params;
    const base = app.downloads.publicUrl ?? `${req.protocol}://${req.host}`;
    const link = await app.services.artifacts.downloadLink({ app: name, version, target: tuple }, app.downloads, base);
    return reply.code(302).header('location', link.url).header('x-xamal-sha256', link.sha256).header('x-xamal-expires', link.expires).send();
  });

  app.get('/v1/downloads/:token', { config: { public: true }, schema: { params: z.object({ token: z.string().max(4096) }) } }, async (req, reply) => {
    const verdict = verifyDownload(app.downloads.secret, req.params.token, Math.floor(Date.now() / 1000));
    if (!verdict.ok) return reply.code(verdict.status).send({ statusCode: verdict.status, error: verdict.status === 410 ? 'gone' : 'forbidden', message: verdict.reason });
    const { grant } = verdict;
    const obj = await app.services.artifacts.open(grant.key);
    return reply
      .header('content-type', 'application/gzip')
      .header('content-length', obj.size)
      .header('content-disposition', `attachment; filename="${grant.filename}"`)
      .header('x-xamal-sha256', grant.sha256)
      .header('digest', `sha-256=${Buffer.from(grant.sha256, 'hex').toString('base64')}`)
      .send(obj.body);
  });
};
