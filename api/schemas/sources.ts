import { z } from 'zod';
import { SOURCE_KEY } from '../../core/index.ts';

/** A sha256 as the API writes it. */
export const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex characters');

const archiveFields = {
  archive: z.string().regex(SOURCE_KEY, 'expected sources/<sha256>.tar.gz (from POST /v1/sources)'),
  sha256: Sha256Schema,
};

/** An uploaded source archive as a build request names it. */
export const SourceArchiveSchema = z.object(archiveFields).strict();
export type SourceArchive = z.infer<typeof SourceArchiveSchema>;

/** `POST /v1/sources` (201): where the archive is stored, and its size in bytes. */
export const SourceUploadSchema = z.object({ ...archiveFields, size: z.number().int().nonnegative() });
export type SourceUpload = z.infer<typeof SourceUploadSchema>;
