import { createHash } from 'node:crypto';
import { z } from 'zod';
import { BuildAssetsSchema, BuildEnvSchema, BuildPackagesSchema, SealedSecretsSchema } from './build-settings.ts';
import type { Arch } from '../tuple/arch.ts';
import { formatTarget, TargetTupleSchema } from '../tuple/tuple.ts';
import { AppNameSchema, ReleaseNameSchema } from '../names.ts';
import { SOURCE_KEY } from '../store-keys.ts';
import { ANY_GIT_TRANSPORT, gitUrlProblem } from './git-url.ts';

/**
 * The build job: the contract between the API (which enqueues it) and the workers (which run it).
 * Defined once here; neither side imports the other.
 */
export const CommitSchema = z.string().regex(/^[0-9a-f]{40}$/, 'expected a full 40-character lowercase commit SHA');

/** A git URL git cannot mistake for an option, without credentials, on a known transport. */
export const GitUrlSchema = z
  .string()
  .min(1)
  .max(2048)
  .superRefine((url, ctx) => {
    const problem = gitUrlProblem(url, ANY_GIT_TRANSPORT);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

export const GitSourceSchema = z
  .object({
    kind: z.literal('git'),
    /**
     * Clone URL (`file://` in tests, https/ssh in production; which transports a farm accepts is its
     * API's policy, core/contracts/git-url.ts). Never contains credentials: those come from worker config.
     */
    url: GitUrlSchema,
    commit: CommitSchema,
  })
  .strict();

export const ArchiveSourceSchema = z
  .object({
    kind: z.literal('archive'),
    /** Store key of a source archive uploaded through the API. */
    key: z.string().regex(SOURCE_KEY, 'expected sources/<sha256>.tar.gz'),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** The commit the archive was made from, when known; else the archive's sha256 identifies it. */
    commit: CommitSchema.optional(),
  })
  .strict();

export const BuildSourceSchema = z.discriminatedUnion('kind', [GitSourceSchema, ArchiveSourceSchema]);
export type BuildSource = z.output<typeof BuildSourceSchema>;

export const MixEnvSchema = z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, 'expected a MIX_ENV like prod');

export const BuildJobSchema = z
  .object({
    app: AppNameSchema,
    source: BuildSourceSchema,
    target: TargetTupleSchema,
    mixEnv: MixEnvSchema.default('prod'),
    /** Release name from mix.exs `releases:`; defaults to the app name. */
    release: ReleaseNameSchema.optional(),
    /** Environment for every step (core/contracts/build-settings.ts). */
    env: BuildEnvSchema.optional(),
    /** Secrets for the deps and assets steps, sealed with the farm's key: never in the job in clear. */
    sealedSecrets: SealedSecretsSchema.optional(),
    /** Debian packages installed into the builder for this build (a derived image). */
    packages: BuildPackagesSchema.optional(),
    /** What the assets step reads (core/contracts/build-settings.ts): declared, the step is skipped when none of it changed. */
    assets: BuildAssetsSchema.optional(),
    /**
     * The private git dependencies the app's owner entry lets its builds fetch with the farm's deploy
     * keys (XAMAL_APPS_FILE `git_dependencies`), set by the API; absent: the farm registers no apps.
     */
    gitDependencies: z.array(z.string().min(1).max(2048)).max(64).optional(),
  })
  .strict();
export type BuildJobInput = z.input<typeof BuildJobSchema>;
export type BuildJob = z.output<typeof BuildJobSchema>;

/** The version an artifact is filed under: the commit, else the archive's hash prefix. */
export function sourceVersion(source: BuildSource): string {
  return source.kind === 'git' ? source.commit : (source.commit ?? source.sha256.slice(0, 40));
}

/** Canonical JSON of every input, so equal requests get one job ID. */
export function buildJobId(job: BuildJob): string {
  const canonical = JSON.stringify({
    app: job.app,
    source: job.source.kind === 'git' ? { kind: 'git', commit: job.source.commit } : { kind: 'archive', sha256: job.source.sha256 },
    target: formatTarget(job.target),
    mixEnv: job.mixEnv,
    release: job.release ?? job.app,
    // The environment can change what is built; secrets are never part of the ID (nor is their hash).
    ...(job.env ? { env: Object.entries(job.env).sort(([a], [b]) => a.localeCompare(b)) } : {}),
    ...(job.packages?.length ? { packages: job.packages } : {}),
    ...(job.assets ? { assets: job.assets.inputs } : {}),
  });
  return `b${createHash('sha256').update(canonical).digest('hex').slice(0, 32)}`;
}

/** Per-platform queues: a worker consumes only the platforms it can build. */
export function buildQueueName(arch: Arch): string {
  return `xamal-builds-${arch}`;
}

/** `image`: the builder the target needs is prepared first (only when no lock holds it yet). */
export const BUILD_PHASES = ['queued', 'image', 'source', 'deps', 'assets', 'compile', 'release', 'scan', 'upload', 'done'] as const;
export type BuildPhase = (typeof BUILD_PHASES)[number];

/** What a worker answers for a finished job (the job's return value): the contract the API reports as `result`. */
export const BuildResultSchema = z
  .object({
    manifestKey: z.string(),
    tuple: z.string(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** The artifact was already stored: no container ran. */
    cached: z.boolean(),
  });
export type BuildResult = z.output<typeof BuildResultSchema>;
