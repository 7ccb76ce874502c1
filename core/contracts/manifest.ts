import { z } from 'zod';

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
  })
  .strict();
export type Manifest = z.output<typeof ManifestSchema>;
