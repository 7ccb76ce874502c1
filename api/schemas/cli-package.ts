import { z } from 'zod';

/** An npm pack tarball of the xamal CLI: `xamal-<version>.tgz`. */
export const CLI_PACKAGE_FILE = /^xamal-(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\.tgz$/;

/** `GET /v1/cli`: the xamal package this farm serves, for CI runners to install pinned by sha256. */
export const CliPackageSchema = z.object({
  name: z.literal('xamal'),
  version: z.string(),
  file: z.string().regex(CLI_PACKAGE_FILE),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  /** Path of the tarball on this API: `/v1/cli/<file>`. */
  url: z.string(),
});
export type CliPackage = z.infer<typeof CliPackageSchema>;

export const CliPackageParamsSchema = z.object({ file: z.string().max(200) });
