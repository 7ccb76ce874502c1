import { z } from 'zod';
import { AppNameSchema, HostFingerprintSchema, ReleaseNameSchema, TargetSelectorSchema } from '../../core/index.ts';
import { MixEnvSchema } from '../../core/contracts/build-job.ts';
import { ArtifactVersionSchema } from './artifacts.ts';

/** `POST /v1/resolve`: the artifact of a version that fits a host (its fingerprint), optionally within a selector. */
export const ResolveRequestSchema = z
  .object({
    app: AppNameSchema,
    version: ArtifactVersionSchema,
    host: HostFingerprintSchema,
    selector: TargetSelectorSchema.optional(),
    /** MIX_ENV and release of the wanted build (default prod and the app's name). */
    mixEnv: MixEnvSchema.optional(),
    release: ReleaseNameSchema.optional(),
  })
  .strict();
export type ResolveRequest = z.infer<typeof ResolveRequestSchema>;
export type ResolveRequestInput = z.input<typeof ResolveRequestSchema>;

export const ResolveAnswerSchema = z.object({
  artifact: z.object({ tuple: z.string(), manifestKey: z.string(), sha256: z.string(), glibcNeeded: z.string().optional() }),
  /** Every other candidate and why it was not chosen (or `runs` when it would run but ranks lower). */
  others: z.array(z.object({ tuple: z.string(), runs: z.boolean(), reasons: z.array(z.object({ code: z.string(), message: z.string() })) })),
});
export type ResolveAnswer = z.infer<typeof ResolveAnswerSchema>;
