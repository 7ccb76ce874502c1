import { hostname } from 'node:os';
import { formatTarget, XamalError } from '../core/index.ts';
import { IN_TOTO_STATEMENT_TYPE, ProvenanceStatementSchema, SLSA_PROVENANCE_TYPE, XAMAL_BUILD_TYPE, type ProvenanceStatement } from '../core/contracts/attestation.ts';
import type { SigningKey } from '../core/signing-key-file.ts';
import type { BuildPlan } from './plan.ts';

/**
 * What a worker signs with and says about itself in provenance (issue 23): the farm's key, the
 * builder id naming the farm (by its key id) and this worker, and xamal's version.
 */
export interface ArtifactSigner {
  key: SigningKey;
  /** SLSA `runDetails.builder.id` (builderId). */
  builderId: string;
  xamalVersion: string;
}

/** Pure: the builder id: the farm is named by its signing key's id, the worker by `worker` (its host name by default). */
export function builderId(keyid: string, worker: string = hostname()): string {
  return `https://xamal.dev/farm/${keyid}/worker/${encodeURIComponent(worker)}`;
}

export function artifactSigner(key: SigningKey, xamalVersion: string, worker?: string): ArtifactSigner {
  return { key, builderId: builderId(key.keyid, worker), xamalVersion };
}

/** What the build learnt that its provenance records beside the plan. */
export interface ProvenanceFacts {
  plan: BuildPlan;
  tarball: { sha256: string };
  /** The source tree's git tree hash (a git source) and mix.lock's sha256 (when the source has one). */
  source: { tree?: string; lockSha256?: string };
  /** Names of the job's secrets (their values never appear). */
  secretNames: readonly string[];
  /** Each step run, in ms (the manifest's timings). */
  timings: Readonly<Record<string, number>>;
  log: { key: string; sha256: string };
  startedOn: string;
  finishedOn: string;
  builder: Pick<ArtifactSigner, 'builderId' | 'xamalVersion'>;
}

const sorted = (xs: Iterable<string>) => [...xs].sort();

/** Pure: the build's inputs as a client chose them (SLSA externalParameters): never a secret value. */
function externalParameters(plan: BuildPlan, secretNames: readonly string[]): Record<string, unknown> {
  const { job } = plan;
  const source = job.source.kind === 'git'
    ? { kind: 'git', url: job.source.url, commit: job.source.commit }
    : { kind: 'archive', sha256: job.source.sha256, ...(job.source.commit ? { commit: job.source.commit } : {}) };
  return {
    app: job.app,
    source,
    target: formatTarget(job.target),
    mixEnv: job.mixEnv,
    release: plan.release,
    packages: job.packages ?? [],
    ...(job.assets ? { assetsInputs: job.assets.inputs } : {}),
    env: sorted(Object.keys(job.env ?? {})),
    secrets: sorted(secretNames),
  };
}

/** Pure: what the build ran on and with (SLSA resolvedDependencies): the source, the builder image, mix.lock. */
function resolvedDependencies(f: ProvenanceFacts): NonNullable<ProvenanceStatement['predicate']['buildDefinition']['resolvedDependencies']> {
  const { job, image } = f.plan;
  const commit = job.source.commit;
  const gitDigest = { ...(commit ? { gitCommit: commit } : {}), ...(f.source.tree ? { gitTree: f.source.tree } : {}) };
  const source = job.source.kind === 'git'
    ? { name: 'source', uri: `git+${job.source.url}`, digest: gitDigest }
    : { name: 'source', uri: job.source.key, digest: { sha256: job.source.sha256, ...gitDigest } };
  return [
    source,
    { name: 'builder-image', uri: image.ref, digest: { sha256: image.digest.replace(/^sha256:/, '') } },
    ...(f.source.lockSha256 ? [{ name: 'mix.lock', digest: { sha256: f.source.lockSha256 } }] : []),
  ];
}

/**
 * Pure: the in-toto Statement v1 with an SLSA v1 provenance predicate for a built artifact: subject
 * the tarball; what was asked (source, target, MIX_ENV, release, packages, env and secret names),
 * what it ran on (builder image and digest, OTP/Elixir, source commit and tree, mix.lock), who ran it
 * and when, and each step's time and the log as byproducts. Checked against its schema.
 */
export function provenanceStatement(f: ProvenanceFacts): ProvenanceStatement {
  const { plan } = f;
  const statement: ProvenanceStatement = {
    _type: IN_TOTO_STATEMENT_TYPE,
    subject: [{ name: plan.artifact.fileName, digest: { sha256: f.tarball.sha256 } }],
    predicateType: SLSA_PROVENANCE_TYPE,
    predicate: {
      buildDefinition: {
        buildType: XAMAL_BUILD_TYPE,
        externalParameters: externalParameters(plan, f.secretNames),
        internalParameters: {
          jobId: plan.jobId,
          builderImage: { ref: plan.image.ref, digest: plan.image.digest },
          toolchain: { otp: plan.job.target.otp, elixir: plan.job.target.elixir },
          cacheKeys: plan.cacheKeys,
          // The key the assets step's output was kept or restored under (its timings say whether the step ran).
          ...(plan.assetsCache ? { assetsCacheKey: plan.assetsCache.key } : {}),
        },
        resolvedDependencies: resolvedDependencies(f),
      },
      runDetails: {
        builder: { id: f.builder.builderId, version: { xamal: f.builder.xamalVersion } },
        metadata: { invocationId: plan.jobId, startedOn: f.startedOn, finishedOn: f.finishedOn },
        byproducts: [
          { name: 'log', uri: f.log.key, digest: { sha256: f.log.sha256 } },
          ...Object.entries(f.timings).map(([step, ms]) => ({ name: `step:${step}`, annotations: { durationMs: ms } })),
        ],
      },
    },
  };
  const checked = ProvenanceStatementSchema.safeParse(statement);
  if (!checked.success) {
    const where = checked.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new XamalError('internal', `provenance statement does not match its schema:\n${where.join('\n')}`);
  }
  return checked.data;
}
