import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { formatTarget, parseSelectorString } from '../../core/index.ts';
import { ManifestSchema, type Manifest } from '../../core/contracts/manifest.ts';
import { verifyDownload } from '../downloads.ts';
import { refuse } from '../errors.ts';
import { ArtifactAttestationsSchema, ArtifactListQuerySchema, ArtifactListSchema, ArtifactParamsSchema, ArtifactVariantQuerySchema, DOWNLOAD_LINK_HEADERS, DownloadLinkSchema, DownloadTokenParamsSchema, type DownloadLink } from '../schemas/artifacts.ts';

export const artifactRoutes: FastifyPluginAsyncZod = async (app) => {
  const { artifacts } = app.services;
  const { downloads } = app.settings;
  app.get('/v1/artifacts', { config: { accessLog: 'debug' }, schema: { querystring: ArtifactListQuerySchema, response: { 200: ArtifactListSchema } } }, async (req) => {
    const { app: name, version, tuple, selector, mixEnv, release } = req.query;
    const found = await artifacts.find(name, version, {
      ...(tuple ? { tuple: formatTarget(tuple) } : {}),
      ...(selector ? { selector: parseSelectorString(selector) } : {}),
      ...(mixEnv ? { mixEnv } : {}),
      ...(release ? { release } : {}),
    });
    return { artifacts: found.map((a) => ({ tuple: a.manifest.tuple, version: a.manifest.version, mixEnv: a.manifest.mixEnv, release: a.manifest.release, releaseVersion: a.manifest.releaseVersion, builtAt: a.manifest.builtAt, sha256: a.manifest.tarball.sha256, manifestKey: a.key })) };
  });

  // The manifest as the index validated it, serialised once per manifest: fastify sends a string with
  // a JSON content type as it is (the response schema stays for the OpenAPI document).
  app.get('/v1/artifacts/:app/:version/:tuple', { config: { accessLog: 'debug' }, schema: { params: ArtifactParamsSchema, querystring: ArtifactVariantQuerySchema, response: { 200: ManifestSchema } } }, async (req, reply) => {
    const { app: name, version, tuple } = req.params;
    return reply.type('application/json; charset=utf-8').send((await artifacts.manifestJson({ app: name, version, target: tuple, ...req.query })) as unknown as Manifest);
  });

  // What was signed, as its exact text: the manifest, its signature, the provenance and the SBOM (issue 23).
  app.get('/v1/artifacts/:app/:version/:tuple/attestations', { config: { accessLog: 'debug' }, schema: { params: ArtifactParamsSchema, querystring: ArtifactVariantQuerySchema, response: { 200: ArtifactAttestationsSchema } } }, async (req) => {
    const { app: name, version, tuple } = req.params;
    return artifacts.attestations({ app: name, version, target: tuple, ...req.query });
  });

  // The stored documents themselves: the provenance's DSSE envelope and the CycloneDX SBOM.
  for (const [which, type] of [['provenance', 'application/json'], ['sbom', 'application/vnd.cyclonedx+json']] as const) {
    app.get(`/v1/artifacts/:app/:version/:tuple/${which}`, { schema: { params: ArtifactParamsSchema, querystring: ArtifactVariantQuerySchema } }, async (req, reply) => {
      const { app: name, version, tuple } = req.params;
      return reply.type(`${type}; charset=utf-8`).send(await artifacts.attachment({ app: name, version, target: tuple, ...req.query }, which));
    });
  }

  /**
   * 302 to a short-lived URL: the store's presigned one (S3) or one the API signs and serves itself.
   * Servers pull from it directly; the deployer is never in the data path.
   */
  app.get('/v1/artifacts/:app/:version/:tuple/download', { schema: { params: ArtifactParamsSchema, querystring: ArtifactVariantQuerySchema } }, async (req, reply) => {
    const { app: name, version, tuple } = req.params;
    const link = await artifacts.downloadLink({ app: name, version, target: tuple, ...req.query }, downloads, downloads.publicUrl ?? `${req.protocol}://${req.host}`);
    for (const [field, header] of Object.entries(DOWNLOAD_LINK_HEADERS)) reply.header(header, link[field as keyof DownloadLink]);
    return reply.code(302).send();
  });

  /** The same short-lived link as JSON, for clients that cannot read a redirect's headers (a browser's fetch: the builds page). */
  app.get('/v1/artifacts/:app/:version/:tuple/link', { schema: { params: ArtifactParamsSchema, querystring: ArtifactVariantQuerySchema, response: { 200: DownloadLinkSchema } } }, async (req) => {
    const { app: name, version, tuple } = req.params;
    return artifacts.downloadLink({ app: name, version, target: tuple, ...req.query }, downloads, downloads.publicUrl ?? `${req.protocol}://${req.host}`);
  });

  app.get('/v1/downloads/:token', { config: { public: true }, schema: { params: DownloadTokenParamsSchema } }, async (req, reply) => {
    const verdict = verifyDownload(downloads.secret, req.params.token, Math.floor(Date.now() / 1000));
    if (!verdict.ok) return refuse(reply, verdict.status, verdict.status === 410 ? 'gone' : 'forbidden', verdict.reason);
    const { grant } = verdict;
    const obj = await artifacts.open(grant.key);
    return reply
      .header('content-type', 'application/gzip')
      .header('content-length', obj.size)
      .header('content-disposition', `attachment; filename="${grant.filename}"`)
      .header('x-xamal-sha256', grant.sha256)
      .header('digest', `sha-256=${Buffer.from(grant.sha256, 'hex').toString('base64')}`)
      .send(obj.body);
  });
};
