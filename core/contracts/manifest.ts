import { z } from 'zod';
import { AppNameSchema, ReleaseNameSchema, VersionNameSchema } from '../names.ts';
import { parseTarget, TUPLE_MAX_LENGTH } from '../tuple/tuple.ts';
import { NUMERIC_VERSION_RE, RELEASE_VERSION_RE } from '../tuple/version.ts';
import { AttachedFileSchema, ManifestAttestationsSchema } from './attestation.ts';
import { CommitSchema, MixEnvSchema } from './build-job.ts';

/**
 * `manifest.json`, written last next to an artifact: its presence means the tarball and checksum are
 * complete and verified.
 */
export const ManifestSchema = z
  .object({
    schema: z.literal(1),
    app: z.string(),
    release: z.string(),
    /** Release version from mix.exs. */
    releaseVersion: z.string(),
    /** The version it is filed under (commit SHA). */
    version: z.string(),
    commit: z.string().optional(),
    tuple: z.string(),
    mixEnv: z.string(),
    tarball: z.object({ key: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), size: z.number().int().nonnegative() }).strict(),
    image: z.object({ ref: z.string(), digest: z.string() }).strict(),
    cacheKeys: z.object({ deps: z.string(), build: z.string() }).strict(),
    /** Highest glibc symbol version any ELF file needs (absent for musl). */
    glibcNeeded: z.string().optional(),
    sonames: z.array(z.string()),
    timings: z.record(z.string(), z.number()),
    logKey: z.string(),
    builtAt: z.string().datetime(),
    jobId: z.string(),
    /** The provenance envelope and SBOM next to it, pinned by sha256 (absent on artifacts built before they existed). */
    attestations: ManifestAttestationsSchema.optional(),
  })
  .strict();
export type Manifest = z.output<typeof ManifestSchema>;

const storeKey = (pattern: RegExp, what: string) => z.string().max(1024).regex(pattern, `expected ${what}`);

/**
 * The manifest a worker publishes: every string the build produced or carried is checked against
 * what it can be (a release version from start_erl.data, sonames from the ELF scan, keys, digests),
 * so a hostile build cannot smuggle text into the store or a deploy. Readers keep ManifestSchema.
 */
export const PublishedManifestSchema = ManifestSchema.extend({
  app: AppNameSchema,
  release: ReleaseNameSchema,
  releaseVersion: z.string().max(64).regex(RELEASE_VERSION_RE, 'expected a SemVer release version like 1.2.3'),
  version: VersionNameSchema,
  commit: CommitSchema.optional(),
  tuple: z.string().max(TUPLE_MAX_LENGTH).refine((t) => parseTarget(t).ok, 'expected a target tuple'),
  mixEnv: MixEnvSchema,
  tarball: z.object({ key: storeKey(/^artifacts\/[A-Za-z0-9._~+-]+(?:\/[A-Za-z0-9._~+-]+)*\.tar\.gz$/, 'an artifact tarball key'), sha256: z.string().regex(/^[0-9a-f]{64}$/), size: z.number().int().nonnegative() }).strict(),
  image: z.object({ ref: z.string().max(255).regex(/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/, 'expected an image reference'), digest: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'expected sha256:<64 hex>') }).strict(),
  cacheKeys: z.object({ deps: z.string().regex(/^deps-[0-9a-f]{32}$/), build: z.string().regex(/^build-[0-9a-f]{32}$/) }).strict(),
  glibcNeeded: z.string().max(32).regex(NUMERIC_VERSION_RE, 'expected a glibc version like 2.34').optional(),
  sonames: z.array(z.string().regex(/^[A-Za-z0-9._+-]{1,255}$/, 'expected a soname like libc.so.6')).max(10_000),
  timings: z.record(z.string().regex(/^[A-Za-z0-9 ()._-]{1,64}$/, 'expected a step name'), z.number().nonnegative().finite()),
  logKey: storeKey(/^logs\/b[0-9a-f]{32}\.log$/, 'logs/<job id>.log'),
  jobId: z.string().regex(/^b[0-9a-f]{32}$/, 'expected a build job id'),
  attestations: z
    .object({
      provenance: AttachedFileSchema.extend({ key: storeKey(/^artifacts\/[A-Za-z0-9._~+-]+(?:\/[A-Za-z0-9._~+-]+)*\/provenance\.dsse\.json$/, 'a provenance key') }).optional(),
      sbom: AttachedFileSchema.extend({ key: storeKey(/^artifacts\/[A-Za-z0-9._~+-]+(?:\/[A-Za-z0-9._~+-]+)*\/sbom\.cdx\.json$/, 'an SBOM key') }).optional(),
    })
    .strict()
    .optional(),
}).strict();
