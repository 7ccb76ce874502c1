import { z } from 'zod';
import { SOURCE_KEY } from '../../core/index.ts';
import { CommitSchema } from '../../core/contracts/build-job.ts';

/** A sha256 as the API writes it. */
export const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex characters');

const archiveFields = {
  archive: z.string().regex(SOURCE_KEY, 'expected sources/<sha256>.tar.gz (from POST /v1/sources)'),
  sha256: Sha256Schema,
};

/**
 * An uploaded source archive as a build request names it; `commit` when it is `git archive` of one
 * (its header records it, and the worker checks that before anything runs): the artifact is then
 * filed under that commit, as a build from git is.
 */
export const SourceArchiveSchema = z.object({ ...archiveFields, commit: CommitSchema.optional() }).strict();
export type SourceArchive = z.infer<typeof SourceArchiveSchema>;

/** `POST /v1/sources` (201): where the archive is stored, and its size in bytes. */
export const SourceUploadSchema = z.object({ ...archiveFields, size: z.number().int().nonnegative() });
export type SourceUpload = z.infer<typeof SourceUploadSchema>;
