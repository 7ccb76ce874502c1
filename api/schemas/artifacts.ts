import { z } from 'zod';
import { AppNameSchema, LATEST_VERSION, RELEASE_VERSION, ReleaseNameSchema, TargetTupleSchema } from '../../core/index.ts';
import { MixEnvSchema } from '../../core/contracts/build-job.ts';
import { Sha256Schema } from './sources.ts';

/** A version as lookups take it: a commit SHA, a unique prefix of one, a mix.exs version, or `latest` (the app's newest build per tuple). */
export const ArtifactVersionSchema = z
  .string()
  .regex(
    new RegExp(`^(?:[0-9a-f]{7,40}|${RELEASE_VERSION}|${LATEST_VERSION})$`),
    `expected a commit SHA (or a unique prefix of ≥ 7), a mix.exs version or ${LATEST_VERSION}`,
  );

export const ArtifactParamsSchema = z.object({ app: AppNameSchema, version: ArtifactVersionSchema, tuple: TargetTupleSchema });

/** Which build of a commit and tuple: MIX_ENV (default prod) and release (default the app's name). */
const variantFields = { mixEnv: MixEnvSchema.optional(), release: ReleaseNameSchema.optional() };

/** `?mixEnv=&release=` on an artifact's routes. */
export const ArtifactVariantQuerySchema = z.object(variantFields).strict();

export const ArtifactListQuerySchema = z
  .object({
    app: AppNameSchema,
    version: ArtifactVersionSchema,
    tuple: TargetTupleSchema.optional(),
    selector: z.string().max(300).optional(),
    ...variantFields,
  })
  .strict();

/** `GET /v1/artifacts`: the artifacts of a version, one line each. */
export const ArtifactListSchema = z.object({
  artifacts: z.array(
    z.object({ tuple: z.string(), version: z.string(), mixEnv: z.string(), release: z.string(), releaseVersion: z.string(), builtAt: z.string(), sha256: z.string(), manifestKey: z.string() }),
  ),
});
export type ArtifactList = z.infer<typeof ArtifactListSchema>;

export const DownloadTokenParamsSchema = z.object({ token: z.string().max(4096) });

/** A short-lived URL a server downloads a tarball from, the tarball's sha256, and when the URL expires (ISO time). */
export const DownloadLinkSchema = z.object({
  url: z.string().min(1, 'expected a URL'),
  sha256: Sha256Schema,
  expires: z.string(),
});
export type DownloadLink = z.infer<typeof DownloadLinkSchema>;

/** `GET /v1/artifacts/:app/:version/:tuple/download` answers 302 and carries the link in these headers. */
export const DOWNLOAD_LINK_HEADERS = { url: 'location', sha256: 'x-xamal-sha256', expires: 'x-xamal-expires' } as const satisfies Record<keyof DownloadLink, string>;

/**
 * `GET /v1/artifacts/:app/:version/:tuple/attestations`: the stored files as their exact text, so a
 * client checks the bytes that were signed (core/contracts/attestation.ts). `null` when the file is not
 * there (an artifact built before signing, or a store that lost it: the client decides what that means).
 */
export const ArtifactAttestationsSchema = z
  .object({
    /** The store key of manifest.json (its folder names the other files). */
    manifestKey: z.string(),
    manifest: z.string(),
    signature: z.string().nullable(),
    provenance: z.string().nullable(),
    sbom: z.string().nullable(),
  })
  .strict();
export type ArtifactAttestations = z.infer<typeof ArtifactAttestationsSchema>;
