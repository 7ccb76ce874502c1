import { z } from 'zod';
import { issuesFromZod, ValidationError } from '../../core/index.ts';
import { MatrixSchema, SubmitResultSchema } from './builds.ts';

/** Per-repository webhook settings: the shared secret and what to build on a release or tag push. */
export const GithubHookSchema = z
  .object({
    secret: z.string().min(16, 'expected a webhook secret of at least 16 characters'),
    app: z.string(),
    git: z.string(),
    matrix: MatrixSchema.optional(),
    targets: z.array(z.unknown()).optional(),
  })
  .strict();
export const GithubHooksSchema = z.object({ repos: z.record(z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'expected owner/name'), GithubHookSchema) }).strict();
export type GithubHooks = z.output<typeof GithubHooksSchema>;

export function parseGithubHooks(json: unknown): GithubHooks {
  const r = GithubHooksSchema.safeParse(json);
  if (!r.success) throw new ValidationError(issuesFromZod(r.error), 'invalid GitHub webhook settings');
  return r.data;
}

/** `POST /v1/hooks/github`: 200 to a ping; 202 with the submitted builds, or with why the event starts none. */
export const GithubPingAnswerSchema = z.object({ ok: z.literal(true) });
export const GithubEventAnswerSchema = z.union([SubmitResultSchema, z.object({ ignored: z.string() })]);
