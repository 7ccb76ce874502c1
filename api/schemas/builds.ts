import { z } from 'zod';
import { BuildAssetsSchema, BuildEnvSchema, BuildPackagesSchema, BuildSecretsSchema } from '../../core/contracts/build-settings.ts';
import { AppNameSchema, parseElixirRequirement, parseTarget, ReleaseNameSchema, TargetSelectorSchema, TargetTupleSchema, type Target, type TargetSelector } from '../../core/index.ts';
import { BuildResultSchema, CommitSchema, GitUrlSchema, MixEnvSchema, type BuildResult } from '../../core/contracts/build-job.ts';
import { SourceArchiveSchema } from './sources.ts';

/** A git ref name as a client may send it (resolved to a commit by the API before any job exists). */
export const GitRefSchema = z
  .string()
  .regex(/^(?!-)(?!.*\.\.)[A-Za-z0-9._\/-]{1,200}$/, 'expected a branch or tag name like main or v1.2.3');

const GitSource = z
  .object({
    /** https:// or ssh by default; file:// and http:// only where the farm allows them (api/config.ts). */
    git: GitUrlSchema,
    commit: CommitSchema.optional(),
    ref: GitRefSchema.optional(),
  })
  .strict()
  .refine((s) => (s.commit === undefined) !== (s.ref === undefined), { message: 'expected exactly one of commit or ref' });

export type TargetSpec = { kind: 'tuple'; target: Target; raw: string } | { kind: 'selector'; selector: TargetSelector };

/** A target is a tuple string or a selector object; each problem keeps its own field path. */
const TargetSpecSchema = z.unknown().transform((v, ctx): TargetSpec => {
  if (typeof v === 'string') {
    const r = parseTarget(v);
    if (r.ok) return { kind: 'tuple', target: r.value, raw: v };
    for (const i of r.issues) ctx.issues.push({ code: 'custom', message: `${i.path}: ${i.message}`, input: v });
    return z.NEVER;
  }
  const r = TargetSelectorSchema.safeParse(v);
  if (r.success) return { kind: 'selector', selector: r.data };
  for (const i of r.error.issues) ctx.issues.push({ code: 'custom', message: i.message, path: i.path as (string | number)[], input: v });
  return z.NEVER;
});

export const MAX_TARGETS = 32;

const VersionList = z.array(z.string().regex(/^\d+(?:\.\d+)*$/, 'expected a version or prefix like 27 or 1.17')).min(1).max(8);

/** `{otp: [...], elixir: [...], distro: [...], arch: [...]}`: every combination becomes a selector. */
export const MatrixSchema = z
  .object({
    otp: VersionList.optional(),
    elixir: VersionList.optional(),
    distro: z.array(z.string().regex(/^[a-z]+(?:\d{1,4}(?:\.\d{1,4})*)?$/, 'expected a distro like debian12')).min(1).max(8).optional(),
    arch: z.array(z.string().min(1).max(16)).min(1).max(4).optional(),
  })
  .strict();
export type Matrix = z.output<typeof MatrixSchema>;

export const BuildRequestSchema = z
  .object({
    app: AppNameSchema,
    source: z.union([GitSource, SourceArchiveSchema], { error: 'expected {git, commit|ref} or {archive, sha256}' }),
    targets: z.array(TargetSpecSchema).min(1, 'expected at least one target').max(MAX_TARGETS, `expected at most ${MAX_TARGETS} targets`).optional(),
    matrix: MatrixSchema.optional(),
    mixEnv: MixEnvSchema.optional(),
    release: ReleaseNameSchema.optional(),
    /** Environment for every step of the build. */
    env: BuildEnvSchema.optional(),
    /** Secrets only the deps and assets steps get (a private Hex org key, a git token): sealed in the job, cut from logs. */
    secrets: BuildSecretsSchema.optional(),
    /** Debian packages the build needs beyond the builder's (installed into a derived image). */
    packages: BuildPackagesSchema.optional(),
    /** What the project's assets step reads (`{inputs: ["assets/**", …]}`): the worker skips the step when none of it changed. */
    assets: BuildAssetsSchema.optional(),
    /** The project's `elixir:` requirement (mix.exs): a target whose Elixir does not satisfy it is refused before building. */
    elixirRequirement: z
      .string()
      .max(200)
      .refine((t) => {
        try {
          parseElixirRequirement(t);
          return true;
        } catch {
          return false;
        }
      }, 'expected an Elixir requirement like "~> 1.15" or ">= 1.14.0 and < 1.18.0"')
      .optional(),
  })
  .strict()
  .refine((r) => (r.targets === undefined) !== (r.matrix === undefined), { message: 'expected exactly one of targets or matrix', path: ['targets'] });
export type BuildRequest = z.output<typeof BuildRequestSchema>;
export type BuildRequestInput = z.input<typeof BuildRequestSchema>;

export const BuildIdParamsSchema = z.object({ id: z.string().regex(/^b[0-9a-f]{32}$/, 'expected a build id like b0123…') }).strict();
export const BuildSetParamsSchema = z.object({ id: z.string().regex(/^s[0-9a-f]{32}$/, 'expected a build set id like s0123…') }).strict();
export const LogsQuerySchema = z
  .object({
    follow: z.enum(['0', '1', 'true', 'false']).optional(),
    start: z.coerce.number().int().min(0).max(1_000_000).optional(),
  })
  .strict();

export const SubmittedBuildSchema = z.object({
  id: z.string(),
  tuple: z.string(),
  /** `done` when the artifact was already built, else the job's state (`queued`, `waiting`, …). */
  status: z.string(),
  manifestKey: z.string().optional(),
});
export type SubmittedBuild = z.infer<typeof SubmittedBuildSchema>;

/** `POST /v1/builds` (200 when every target was already built, else 202). */
export const SubmitResultSchema = z.object({
  buildSet: z.string(),
  builds: z.array(SubmittedBuildSchema),
  /** Targets no pinned builder image serves, with why: reported, never silently dropped. */
  unresolved: z.array(z.object({ target: z.unknown(), reasons: z.array(z.string()) })),
});
export type SubmitResult = z.infer<typeof SubmitResultSchema>;

/** `GET /v1/build-sets/:id`: a build set as submitted, with each build's current state. */
export const BuildSetSchema = SubmitResultSchema.extend({
  builds: z.array(SubmittedBuildSchema.extend({ state: z.string(), failedReason: z.string().optional() })),
  createdAt: z.string().optional(),
});
export type BuildSet = z.infer<typeof BuildSetSchema>;

/** What a completed build job returns (the worker's result). */
export { BuildResultSchema, type BuildResult };

/**
 * What a build is of, from its job (absent from answers of farms before these fields): the app, the
 * target tuple, the version its artifact is filed under (the commit; for an archive without one, its
 * sha256's first 40 characters), the git commit when known, MIX_ENV and release when not the defaults.
 */
const buildSubject = {
  app: z.string().optional(),
  tuple: z.string().optional(),
  version: z.string().optional(),
  commit: z.string().optional(),
  mixEnv: z.string().optional(),
  release: z.string().optional(),
};

/** `GET /v1/builds/:id`. */
export const BuildStatusSchema = z.object({
  id: z.string(),
  arch: z.string(),
  /** waiting | active | completed | failed | delayed | prioritized | waiting-children | unknown */
  state: z.string(),
  phase: z.string().optional(),
  attemptsMade: z.number().int(),
  failedReason: z.string().optional(),
  result: BuildResultSchema.optional(),
  createdAt: z.number(),
  startedAt: z.number().optional(),
  finishedAt: z.number().optional(),
  /** For a waiting job: why it waits (e.g. no worker serves its platform). */
  waitingReason: z.string().optional(),
  ...buildSubject,
});
export type BuildStatus = z.infer<typeof BuildStatusSchema>;

/** `DELETE /v1/builds/:id`: a queued job is removed, a running one signalled, a finished one left. */
export const CancelResultSchema = z.object({ id: z.string(), outcome: z.enum(['removed', 'signalled', 'finished']) });
export type CancelResult = z.infer<typeof CancelResultSchema>;

/** A page of `GET /v1/builds` starts after this build: `<createdAt>-<id>` of the last build of the page before (its `nextCursor`). */
export const BuildCursorSchema = z
  .string()
  .regex(/^\d{1,15}-b[0-9a-f]{32}$/, 'expected the nextCursor of the page before, like 1764900000000-b0123…')
  .transform((c) => ({ createdAt: Number(c.slice(0, c.indexOf('-'))), id: c.slice(c.indexOf('-') + 1) }));
export type BuildCursor = z.output<typeof BuildCursorSchema>;

/** The cursor naming a build: pages after it hold the builds older than it (by creation, then id). */
export const buildCursor = (b: { createdAt: number; id: string }): string => `${b.createdAt}-${b.id}`;

export const LISTABLE_STATES = ['waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized'] as const;

/**
 * `GET /v1/builds`: the newest builds, newest first, of an app, a commit (a prefix of it), a target
 * tuple and in a state when given; at most `limit`, after `cursor` (the page before's `nextCursor`).
 * The queues keep finished jobs for a while only, and each state's list is read 500 jobs deep
 * (queue/api-queues.ts): older builds are found through their artifacts (`GET /v1/artifacts`).
 */
export const BuildListQuerySchema = z
  .object({
    app: AppNameSchema.optional(),
    commit: z.string().regex(/^[0-9a-f]{4,40}$/, 'expected a commit or a prefix of one: 4 to 40 lowercase hex characters').optional(),
    target: TargetTupleSchema.optional(),
    state: z.enum(LISTABLE_STATES, { error: 'expected waiting, active, completed, failed, delayed or prioritized' }).optional(),
    limit: z.coerce.number().int().min(1, 'expected 1 to 200').max(200, 'expected 1 to 200').default(50),
    cursor: BuildCursorSchema.optional(),
  })
  .strict();
export type BuildListQuery = z.output<typeof BuildListQuerySchema>;
export type BuildListQueryInput = z.input<typeof BuildListQuerySchema>;

export const ListedBuildSchema = z.object({
  id: z.string(),
  arch: z.string(),
  app: z.string(),
  tuple: z.string(),
  state: z.string(),
  phase: z.string().optional(),
  failedReason: z.string().optional(),
  createdAt: z.number(),
  startedAt: z.number().optional(),
  finishedAt: z.number().optional(),
  version: z.string().optional(),
  commit: z.string().optional(),
  mixEnv: z.string().optional(),
  release: z.string().optional(),
});
export type ListedBuild = z.infer<typeof ListedBuildSchema>;

export const BuildListSchema = z.object({
  builds: z.array(ListedBuildSchema),
  /** Present when older builds match too: pass it as `cursor` for the next page. */
  nextCursor: z.string().optional(),
});
export type BuildList = z.infer<typeof BuildListSchema>;

/** The last event (`end`) of `GET /v1/builds/:id/logs?follow=1`, a stream of log lines (text/event-stream). */
export const LogStreamEndSchema = z.object({ state: z.string(), failedReason: z.string().optional() });
export type LogStreamEnd = z.infer<typeof LogStreamEndSchema>;
