import { z } from 'zod';
import { issuesFromZod, ValidationError } from '../../core/index.ts';
import { GitUrlSchema } from '../../core/contracts/build-job.ts';
import { MatrixSchema, SubmitResultSchema } from './builds.ts';

/** Per-repository webhook settings: the shared secret and what to build on a release or tag push. */
export const GithubHookSchema = z
  .object({
    secret: z.string().min(16, 'expected a webhook secret of at least 16 characters'),
    app: z.string(),
    git: GitUrlSchema,
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

/** The repository a delivery names: which secret checks its signature (anything else: not one of ours). */
export const GithubRepositoryRefSchema = z.looseObject({ repository: z.looseObject({ full_name: z.string().max(256) }) });

/** The fields of a signed `release` or `push` event xamal reads; every other field is GitHub's business. */
const text = (max: number, expected: string) => z.string({ error: expected }).max(max, expected);
export const GithubEventPayloadSchema = z.looseObject(
  {
    action: text(64, 'expected an action like published').optional(),
    ref: text(1024, 'expected a ref like refs/tags/v1.2.0').optional(),
    after: text(64, 'expected a 40-character commit SHA').optional(),
    deleted: z.boolean({ error: 'expected true or false' }).optional(),
    release: z.looseObject({ tag_name: text(1024, 'expected a tag name like v1.2.0').optional() }, { error: 'expected the release object GitHub sends' }).nullish(),
  },
  { error: 'expected the JSON object GitHub sends' },
);
export type GithubEventPayload = z.output<typeof GithubEventPayloadSchema>;

/** `X-GitHub-Delivery`: the GUID GitHub gives each delivery (a redelivery keeps it). */
const DELIVERY_ID = 'expected the delivery GUID GitHub sends with every delivery (letters, digits and -)';
export const GithubDeliveryIdSchema = z.string({ error: DELIVERY_ID }).regex(/^[A-Za-z0-9-]{1,64}$/, DELIVERY_ID);
/** `X-GitHub-Event`: `ping`, `release`, `push`, … */
const EVENT_NAME = 'expected the event name GitHub sends, like release or push';
export const GithubEventNameSchema = z.string({ error: EVENT_NAME }).regex(/^[a-z_]{1,64}$/, EVENT_NAME);

/**
 * `POST /v1/hooks/github`: 200 to a ping, and to a delivery already taken (a replay: nothing
 * submitted); 202 with the submitted builds, or with why the event starts none.
 */
export const GithubPingAnswerSchema = z.object({ ok: z.literal(true) });
export const GithubDuplicateAnswerSchema = z.object({ duplicate: z.string(), message: z.string() });
export const GithubEventAnswerSchema = z.union([SubmitResultSchema, z.object({ ignored: z.string() })]);
