import { describe, expect, it } from 'vitest';
import { BuildJobSchema, type BuildJobInput } from '../../../core/contracts/build-job.ts';
import { IN_TOTO_STATEMENT_TYPE, ProvenanceStatementSchema, SLSA_PROVENANCE_TYPE, XAMAL_BUILD_TYPE } from '../../../core/contracts/attestation.ts';
import { sealSecrets } from '../../../core/contracts/build-settings.ts';
import { builderId, provenanceStatement, type ProvenanceFacts } from '../../../builder/provenance.ts';
import { DEFAULT_LIMITS, planBuild, type PlanInput } from '../../../builder/plan.ts';

const COMMIT = 'c'.repeat(40);
const TREE = 'e'.repeat(40);
const X86 = 'linux-x86_64-gnu2.36-debian12-otp27.3.4-elixir1.18.3';
const DIGEST = `sha256:${'d'.repeat(64)}`;
const TARBALL = 'a'.repeat(64);
const LOCK = 'f'.repeat(64);
const SECRET_VALUE = 'hex-org-key-do-not-leak-1234';

const job = (over: Partial<BuildJobInput> = {}) => BuildJobSchema.parse({ app: 'hello', source: { kind: 'git', url: 'https://git.example/acme/hello.git', commit: COMMIT }, target: X86, ...over });

function plan(over: Partial<BuildJobInput> = {}) {
  const input: PlanInput = {
    job: job(over),
    jobId: `b${'1'.repeat(32)}`,
    image: { ref: 'xamal/builder:bookworm', pinned: `xamal/builder@${DIGEST}`, digest: DIGEST },
    source: { lockHash: 'lock', configHash: 'config', mixExs: 'mixexs', hasDeps: false, linkedDirs: [] },
    workDir: '/work/b1-1',
    cacheDir: '/cache',
    limits: DEFAULT_LIMITS,
    depsNetwork: 'egress',
    cache: { deps: false, build: false },
  };
  return planBuild(input);
}

function facts(over: Partial<ProvenanceFacts> = {}): ProvenanceFacts {
  const p = plan({ env: { FEATURE_FLAGS: 'on', NODE_ENV: 'production' }, packages: ['libvips-dev'], sealedSecrets: sealSecrets(Buffer.alloc(32, 7), { HEX_ORG_KEY: SECRET_VALUE }) });
  return {
    plan: p,
    tarball: { sha256: TARBALL },
    source: { tree: TREE, lockSha256: LOCK },
    secretNames: ['HEX_ORG_KEY'],
    timings: { source: 120, deps: 3400, compile: 9100, smoke: 800, tar: 300, scan: 40, upload: 90 },
    log: { key: p.artifact.logKey, sha256: 'b'.repeat(64) },
    startedOn: '2026-12-05T08:00:00.000Z',
    finishedOn: '2026-12-05T08:00:14.000Z',
    builder: { builderId: builderId('0123456789abcdef', 'worker-1'), xamalVersion: '0.1.0' },
    ...over,
  };
}

describe('provenanceStatement: an artifact\'s in-toto statement with SLSA v1 provenance', () => {
  it('names the tarball by file name and sha256 as its one subject, with the in-toto and SLSA types', () => {
    const s = provenanceStatement(facts());
    expect(ProvenanceStatementSchema.parse(s)).toEqual(s);
    expect(s._type).toBe(IN_TOTO_STATEMENT_TYPE);
    expect(s.predicateType).toBe(SLSA_PROVENANCE_TYPE);
    expect(s.subject).toEqual([{ name: `hello-${COMMIT}-${X86}.tar.gz`, digest: { sha256: TARBALL } }]);
    expect(s.predicate.buildDefinition.buildType).toBe(XAMAL_BUILD_TYPE);
  });

  it('records what was asked: git source, target, MIX_ENV, release, packages, and the env and secret names only', () => {
    const ext = provenanceStatement(facts()).predicate.buildDefinition.externalParameters;
    expect(ext).toEqual({
      app: 'hello',
      source: { kind: 'git', url: 'https://git.example/acme/hello.git', commit: COMMIT },
      target: X86,
      mixEnv: 'prod',
      release: 'hello',
      packages: ['libvips-dev'],
      env: ['FEATURE_FLAGS', 'NODE_ENV'],
      secrets: ['HEX_ORG_KEY'],
    });
  });

  it('never carries a secret\'s value, nor an env value, nor the sealed secrets', () => {
    const f = facts();
    const text = JSON.stringify(provenanceStatement(f));
    expect(text).not.toContain(SECRET_VALUE);
    expect(text).not.toContain('production');
    expect(text).not.toContain(f.plan.job.sealedSecrets!);
  });

  it('records what it ran on: the source commit and tree, the builder image and digest, OTP and Elixir, mix.lock\'s sha256', () => {
    const { internalParameters, resolvedDependencies } = provenanceStatement(facts()).predicate.buildDefinition;
    expect(internalParameters).toMatchObject({ builderImage: { ref: 'xamal/builder:bookworm', digest: DIGEST }, toolchain: { otp: '27.3.4', elixir: '1.18.3' } });
    expect(resolvedDependencies).toEqual([
      { name: 'source', uri: 'git+https://git.example/acme/hello.git', digest: { gitCommit: COMMIT, gitTree: TREE } },
      { name: 'builder-image', uri: 'xamal/builder:bookworm', digest: { sha256: 'd'.repeat(64) } },
      { name: 'mix.lock', digest: { sha256: LOCK } },
    ]);
  });

  it('an uploaded archive is named by its key and sha256 (and the commit it claims); a source without mix.lock lists none', () => {
    const sha = '9'.repeat(64);
    const p = plan({ source: { kind: 'archive', key: `sources/${sha}.tar.gz`, sha256: sha } });
    const s = provenanceStatement(facts({ plan: p, source: {} }));
    expect(s.predicate.buildDefinition.externalParameters.source).toEqual({ kind: 'archive', sha256: sha });
    expect(s.predicate.buildDefinition.resolvedDependencies).toEqual([
      { name: 'source', uri: `sources/${sha}.tar.gz`, digest: { sha256: sha } },
      { name: 'builder-image', uri: 'xamal/builder:bookworm', digest: { sha256: 'd'.repeat(64) } },
    ]);
    const claimed = provenanceStatement(facts({ plan: plan({ source: { kind: 'archive', key: `sources/${sha}.tar.gz`, sha256: sha, commit: COMMIT } }), source: {} }));
    expect(claimed.predicate.buildDefinition.resolvedDependencies![0]).toEqual({ name: 'source', uri: `sources/${sha}.tar.gz`, digest: { sha256: sha, gitCommit: COMMIT } });
  });

  it('says who ran it and when: builder id naming the farm\'s key and the worker, xamal\'s version, the job id, start and finish, each step\'s time and the log', () => {
    const f = facts();
    const { runDetails } = provenanceStatement(f).predicate;
    expect(runDetails.builder).toEqual({ id: 'https://xamal.dev/farm/0123456789abcdef/worker/worker-1', version: { xamal: '0.1.0' } });
    expect(runDetails.metadata).toEqual({ invocationId: f.plan.jobId, startedOn: '2026-12-05T08:00:00.000Z', finishedOn: '2026-12-05T08:00:14.000Z' });
    expect(runDetails.byproducts![0]).toEqual({ name: 'log', uri: f.plan.artifact.logKey, digest: { sha256: 'b'.repeat(64) } });
    expect(runDetails.byproducts!.slice(1).map((b) => [b.name, b.annotations?.durationMs])).toEqual([
      ['step:source', 120], ['step:deps', 3400], ['step:compile', 9100], ['step:smoke', 800], ['step:tar', 300], ['step:scan', 40], ['step:upload', 90],
    ]);
  });

  it('a worker name that is not URL-safe is encoded into the builder id; a fact that breaks the schema is refused, not signed', () => {
    expect(builderId('0123456789abcdef', 'build box/2')).toBe('https://xamal.dev/farm/0123456789abcdef/worker/build%20box%2F2');
    expect(() => provenanceStatement(facts({ tarball: { sha256: 'not-hex' } }))).toThrow(/provenance statement does not match its schema:\nsubject\.0\.digest\.sha256/);
  });
});
