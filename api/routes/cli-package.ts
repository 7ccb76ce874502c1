import { createReadStream } from 'node:fs';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { XamalError } from '../../core/index.ts';
import { CliPackageParamsSchema, CliPackageSchema } from '../schemas/cli-package.ts';

/**
 * `GET /v1/cli` and `GET /v1/cli/<file>`: the xamal package this farm serves (XAMAL_CLI_PACKAGE), so a
 * CI runner installs the CLI its farm speaks, pinned by version and sha256. Public: the CLI is no secret.
 */
export const cliPackageRoutes: FastifyPluginAsyncZod = async (app) => {
  const served = () => {
    const pkg = app.settings.cliPackage;
    if (!pkg) throw new XamalError('not_found', 'this farm serves no xamal package (its operator sets XAMAL_CLI_PACKAGE to an npm pack tarball)');
    return pkg;
  };
  app.get('/v1/cli', { config: { public: true }, schema: { response: { 200: CliPackageSchema } } }, async () => served().info);
  app.get('/v1/cli/:file', { config: { public: true }, schema: { params: CliPackageParamsSchema } }, async (req, reply) => {
    const { path, info } = served();
    if (req.params.file !== info.file) throw new XamalError('not_found', `no ${req.params.file} here: this farm serves ${info.file} (GET /v1/cli)`);
    return reply
      .header('content-type', 'application/gzip')
      .header('content-length', info.size)
      .header('etag', `"${info.sha256}"`)
      .header('x-checksum-sha256', info.sha256)
      .send(createReadStream(path));
  });
};
