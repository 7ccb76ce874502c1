import { createHash } from 'node:crypto';
import { sealSecrets } from '../../core/contracts/build-settings.ts';
import type { GitRemoteEnv } from '../../core/contracts/git-credentials.ts';
import { buildSetKey, formatTarget, isXamalError, parseElixirRequirement, parseTarget, ValidationError, XamalError, type Command, type ElixirRequirement, type Executor, type Issue, type Logger } from '../../core/index.ts';
import { GIT_REMOTE_ENV, gitUrlForDisplay, gitUrlProblem, unreadableRemote, type GitUrlPolicy } from '../../core/contracts/git-url.ts';
import { storedArtifact } from '../../store/artifact-index.ts';
import { buildJobId, BuildJobSchema, sourceVersion, type BuildJobInput } from '../../core/contracts/build-job.ts';
import { LISTED_STATES, newestFirst, type BuildQueues, type BuildStatus as QueuedStatus, type ListedBuild as QueuedListing } from '../../queue/index.ts';
import type { ObjectStore } from '../../store/store.ts';
import { lookupBySelector, usableImages, type CatalogImage } from '../../images/catalog.ts';
import type { LockFile } from '../../images/lock.ts';
import type { PreparableImage } from '../../images/preparable.ts';
import { buildCursor, type BuildList, type BuildListQuery, type BuildRequest, type BuildResult, type BuildSet, type BuildStatus, type ListedBuild, type SubmitResult, type SubmittedBuild, type TargetSpec } from '../schemas/builds.ts';
import { expandMatrix } from './matrix.ts';
import { checkMayBuild, checkMayCancel, type Caller } from '../owners.ts';
import type { AppRegistry } from '../schemas/apps.ts';

export interface BuildServiceDeps {
  queues: BuildQueues;
  store: ObjectStore;
  locks: () => Promise<LockFile[]>;
  /** Runs `git ls-remote` (branch/tag → commit, once, before any job exists). */
  exec: Executor;
  /** Which git URLs builds may name (api/config.ts: https and ssh unless XAMAL_GIT_ALLOW_LOCAL / _HTTP). */
  gitUrls: GitUrlPolicy;
  /** Where git's own words about a remote it could not read go (never to the client). */
  logger?: Logger;
  /** Apps and their owners (XAMAL_APPS_FILE); absent: every build token builds and cancels every app. */
  apps?: AppRegistry;
  /**
   * Builder images the catalog names that no lock holds yet (images/preparable.ts): their tuples are
   * accepted and the worker prepares the image first. Absent: only pinned images build.
   */
  preparable?: (locks: readonly LockFile[]) => PreparableImage[];
  /** The farm's credentials for private git repositories, by URL (XAMAL_GIT_CREDENTIALS_FILE): `git ls-remote` uses them. */
  gitRemoteEnv?: GitRemoteEnv;
  /** The farm's key build secrets are sealed with (XAMAL_BUILD_SECRETS_KEY); absent: a request with secrets is refused. */
  secretsKey?: Buffer;
}

/** A preparable image as the selectors see it: a builder with its predicted tuple, no digest yet. */
const onDemand = (p: PreparableImage): CatalogImage => ({
  ref: `(prepared on demand: ${p.request.suite}${p.request.toolchain ? ` with OTP ${p.request.toolchain.otp} and Elixir ${p.request.toolchain.elixir} from source` : ''})`,
  digest: '',
  arch: p.arch,
  tuple: p.tuple,
  source: 'recipe',
  flavour: 'builder',
});

type Unresolved = SubmitResult['unresolved'][number];

/** Pure: `git ls-remote` of `ref` at `url`, never waiting on a prompt for credentials (FACTS.md#git-remote). */
export const lsRemoteCommand = (url: string, ref: string, remote: Record<string, string> = {}): Command => ({
  argv: ['git', 'ls-remote', '--', url, ref],
  env: { ...GIT_REMOTE_ENV, ...remote },
  timeoutMs: 30_000,
  label: 'git ls-remote',
});

/** The one answer for a remote git could not read (timed out included); git's own words go to the server log only. */
function unreadable(url: string, detail: string, logger: Logger | undefined): XamalError {
  logger?.warn({ url: gitUrlForDisplay(url), detail }, 'git ls-remote failed');
  return new ValidationError([{ path: 'source/git', message: unreadableRemote(url) }]);
}

async function resolveRef(exec: Executor, url: string, ref: string, logger?: Logger, remote: Record<string, string> = {}): Promise<string> {
  let r;
  try {
    r = await exec.run(lsRemoteCommand(url, ref, remote));
  } catch (err) {
    throw unreadable(url, (err as Error).message, logger);
  }
  if (r.code !== 0) throw unreadable(url, r.stderr.trim().split('\n').slice(-5).join(' '), logger);
  const lines = r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split('\t'));
  const exact = lines.filter(([, name]) => name === ref || name === `refs/heads/${ref}` || name === `refs/tags/${ref}` || name === `refs/tags/${ref}^{}`);
  const pick = exact.find(([, n]) => n?.endsWith('^{}')) ?? exact[0];
  if (!pick?.[0] || !/^[0-9a-f]{40}$/.test(pick[0])) throw new XamalError('validation', `source/ref: ${JSON.stringify(ref)} is not a branch or tag of ${gitUrlForDisplay(url)}`);
  return pick[0];
}

/** The job's source: a git commit (a branch or tag resolved now, once) or an uploaded archive. */
async function jobSource(deps: BuildServiceDeps, source: BuildRequest['source']): Promise<BuildJobInput['source']> {
  if (!('git' in source)) return { kind: 'archive', key: source.archive, sha256: source.sha256, ...(source.commit ? { commit: source.commit } : {}) };
  // The request schema checked the URL's shape; which transports this farm fetches is decided here.
  const problem = gitUrlProblem(source.git, deps.gitUrls);
  if (problem) throw new ValidationError([{ path: 'source/git', message: problem }]);
  return { kind: 'git', url: source.git, commit: source.commit ?? (await resolveRef(deps.exec, source.git, source.ref!, deps.logger, deps.gitRemoteEnv?.(source.git))) };
}

/** Why a tuple's Elixir does not satisfy the project's requirement (none when it does, or there is none). */
function requirementProblem(tuple: string, requirement: ElixirRequirement | undefined): string | undefined {
  const parsed = parseTarget(tuple);
  if (!requirement || !parsed.ok || requirement.allows(parsed.value.elixir)) return undefined;
  return `${tuple}: Elixir ${parsed.value.elixir} does not satisfy the project's requirement ${JSON.stringify(requirement.text)} (mix.exs)`;
}

/**
 * The tuples a request names, as tuples or selectors (the pinned builder images choose: the newest
 * whose Elixir satisfies the project's requirement), and the targets none serves, with why.
 */
function requestedTuples(req: BuildRequest, images: readonly CatalogImage[], refused: readonly PreparableImage[] = [], served: ReadonlySet<string> = new Set()): { tuples: Set<string>; unresolved: Unresolved[] } {
  const tuples = new Set<string>();
  const unresolved: Unresolved[] = [];
  const requirement = req.elixirRequirement === undefined ? undefined : parseElixirRequirement(req.elixirRequirement);
  const specs: TargetSpec[] = [...(req.targets ?? [])];
  if (req.matrix) {
    const expanded = expandMatrix(req.matrix);
    specs.push(...expanded.selectors.map((selector) => ({ kind: 'selector' as const, selector })));
    for (const r of expanded.refused) unresolved.push({ target: r.combination, reasons: [r.reason] });
  }
  for (const spec of specs) {
    if (spec.kind === 'tuple') {
      const tuple = formatTarget(spec.target);
      const problem = requirementProblem(tuple, requirement);
      if (problem) unresolved.push({ target: tuple, reasons: [problem] });
      else tuples.add(tuple);
      continue;
    }
    const found = lookupBySelector(images, spec.selector);
    const fitting = found.matches.filter((m) => m.tuple && !requirementProblem(m.tuple, requirement));
    // A selector that leaves the arch open takes, among equally new builders, one whose arch a worker serves.
    const fits = fitting.find((m, _i, all) => served.has(archOf(m.tuple!)) && sameToolchain(m.tuple!, all[0]!.tuple!)) ?? fitting[0];
    if (fits?.tuple) tuples.add(fits.tuple);
    else {
      const reasons = [
        ...found.matches.flatMap((m) => (m.tuple ? [requirementProblem(m.tuple, requirement)!] : [])),
        ...found.rejected.map((r) => `${r.image.tuple ?? r.image.ref}: ${r.reasons.map((x: Issue) => `${x.path} ${x.message}`).join('; ')}`),
        // Builders the catalog names for this selector that this farm cannot prepare (e.g. from source under emulation).
        ...refused.filter((p) => lookupBySelector([onDemand(p)], spec.selector).matches.length > 0).map((p) => `${p.tuple}: cannot be prepared here: ${p.problems.map((x) => x.message).join('; ')}`),
      ];
      unresolved.push({ target: spec.selector, reasons });
    }
  }
  return { tuples, unresolved };
}

const archOf = (tuple: string) => {
  const t = parseTarget(tuple);
  return t.ok ? t.value.arch : '';
};
/** Same OTP and Elixir (the selector's ranking key): only then may the arch decide. */
const sameToolchain = (a: string, b: string) => {
  const [x, y] = [parseTarget(a), parseTarget(b)];
  return x.ok && y.ok && x.value.otp === y.value.otp && x.value.elixir === y.value.elixir;
};

/** One tuple's build: already stored (done), else enqueued; or why it cannot be built. */
async function submitTuple(deps: BuildServiceDeps, images: readonly CatalogImage[], refused: readonly PreparableImage[], input: BuildJobInput): Promise<SubmittedBuild | Unresolved> {
  const tuple = input.target;
  const job = BuildJobSchema.parse(input);
  if (!images.some((i) => i.flavour === 'builder' && i.tuple === tuple)) {
    const why = refused.find((p) => p.tuple === tuple)?.problems.map((p) => p.message).join('; ');
    return { target: tuple, reasons: [why ? `the catalog names this builder, but this farm cannot prepare it: ${why}` : 'no pinned builder image has this tuple, and the catalog names none to prepare (see `xamal farm images list`)'] };
  }
  let stored;
  try {
    stored = await storedArtifact(deps.store, job);
  } catch (err) {
    // The key holds a manifest of another MIX_ENV or release (altered by hand): refused for this target only.
    if (!isXamalError(err) || err.code !== 'conflict') throw err;
    return { target: tuple, reasons: [err.message] };
  }
  if (stored) return { id: buildJobId(job), tuple, status: 'done', manifestKey: stored.key };
  const { id } = await deps.queues.enqueue(input, job.target.arch);
  const st = await deps.queues.status(id);
  return { id, tuple, status: st?.state === 'completed' ? 'done' : (st?.state ?? 'queued') };
}

/** A job's status as the API answers it: without the job's input, with the worker's result. */
function answeredStatus({ data, result, ...st }: QueuedStatus): BuildStatus {
  return { ...st, ...subjectOf(data), ...(result ? { result: result as BuildResult } : {}) };
}

/** The request's environment, and its secrets sealed with the farm's key (refused when the farm has none). */
function buildSettings(deps: BuildServiceDeps, req: BuildRequest): Pick<BuildJobInput, 'env' | 'sealedSecrets' | 'packages' | 'assets'> {
  const secrets = req.secrets && Object.keys(req.secrets).length ? req.secrets : undefined;
  if (secrets && !deps.secretsKey) throw new XamalError('validation', 'secrets: this farm takes no build secrets: it has no XAMAL_BUILD_SECRETS_KEY (shared by its API and workers)');
  return {
    ...(req.env && Object.keys(req.env).length ? { env: req.env } : {}),
    ...(secrets ? { sealedSecrets: sealSecrets(deps.secretsKey!, secrets) } : {}),
    ...(req.packages?.length ? { packages: req.packages } : {}),
    ...(req.assets ? { assets: req.assets } : {}),
  };
}

/** What the app's owner entry lets its builds fetch with the farm's deploy keys (nothing on a farm without a registry: the worker's relay then goes by mix.lock alone). */
function gitDependenciesOf(deps: BuildServiceDeps, app: string): Pick<BuildJobInput, 'gitDependencies'> {
  if (!deps.apps) return {};
  return { gitDependencies: Object.hasOwn(deps.apps.apps, app) ? deps.apps.apps[app]!.git_dependencies : [] };
}

type BuildSubject = Pick<BuildStatus, 'app' | 'tuple' | 'version' | 'commit' | 'mixEnv' | 'release'>;

/** What a build is of, read from its job's input as enqueued (nothing when the input does not parse: a job of another version). */
function subjectOf(data: unknown): BuildSubject {
  const parsed = BuildJobSchema.safeParse(data);
  if (!parsed.success) return {};
  const job = parsed.data;
  const commit = job.source.commit;
  return { app: job.app, tuple: formatTarget(job.target), version: sourceVersion(job.source), ...(commit ? { commit } : {}), mixEnv: job.mixEnv, release: job.release ?? job.app };
}

/** Pure: whether a listed build is one the query asks for (its commit, its tuple, older than its cursor); the app is filtered by the queues. */
function listFilter(q: BuildListQuery): (b: Pick<QueuedListing, 'id' | 'createdAt' | 'data'>) => boolean {
  const tuple = q.target ? formatTarget(q.target) : undefined;
  const { cursor, commit } = q;
  return (b) => {
    if (cursor && newestFirst(cursor, b) >= 0) return false;
    if (!tuple && !commit) return true;
    const s = subjectOf(b.data);
    if (tuple && s.tuple !== tuple) return false;
    return !commit || Boolean(s.version?.startsWith(commit) || s.commit?.startsWith(commit));
  };
}

/** A listed build as the API answers it: the tuple and what it is of, never the job's input itself. */
function listedAnswer(b: QueuedListing): ListedBuild {
  const subject = subjectOf(b.data);
  return {
    ...subject,
    id: b.id,
    arch: b.arch,
    app: b.app,
    tuple: subject.tuple ?? (typeof b.target === 'string' ? b.target : ''),
    state: b.state,
    ...(b.phase ? { phase: b.phase } : {}),
    ...(b.failedReason ? { failedReason: b.failedReason } : {}),
    createdAt: b.createdAt,
    ...(b.startedAt !== undefined ? { startedAt: b.startedAt } : {}),
    ...(b.finishedAt !== undefined ? { finishedAt: b.finishedAt } : {}),
  };
}

/** `GET /v1/builds`: one page of the queues' newest builds that match, and the cursor of the next when more match. */
async function listBuilds(deps: BuildServiceDeps, q: BuildListQuery): Promise<BuildList> {
  const found = await deps.queues.list({ ...(q.app ? { app: q.app } : {}), states: q.state ? [q.state] : LISTED_STATES, limit: q.limit + 1, where: listFilter(q) });
  const page = found.slice(0, q.limit);
  const last = page.at(-1);
  return { builds: page.map(listedAnswer), ...(found.length > q.limit && last ? { nextCursor: buildCursor(last) } : {}) };
}

export function buildService(deps: BuildServiceDeps) {
  return {
    /** Refused (403) before anything is resolved when the caller may not build the app from this source (api/owners.ts). */
    async submit(req: BuildRequest, caller: Caller): Promise<SubmitResult> {
      checkMayBuild(deps.apps, req.app, 'git' in req.source ? { git: req.source.git } : { archive: req.source.archive }, caller);
      const source = await jobSource(deps, req.source);
      const locks = await deps.locks();
      const preparable = deps.preparable?.(locks) ?? [];
      const images = [...usableImages(locks), ...preparable.filter((p) => p.problems.length === 0).map(onDemand)];
      const refused = preparable.filter((p) => p.problems.length > 0);
      const served = new Set(Object.entries(await deps.queues.depth()).flatMap(([arch, d]) => (d.workers > 0 ? [arch] : [])));
      const { tuples, unresolved } = requestedTuples(req, images, refused, served);
      const builds: SubmittedBuild[] = [];
      const settings = { ...buildSettings(deps, req), ...gitDependenciesOf(deps, req.app) };
      for (const tuple of tuples) {
        const input: BuildJobInput = { app: req.app, source, target: tuple, ...(req.mixEnv ? { mixEnv: req.mixEnv } : {}), ...(req.release ? { release: req.release } : {}), ...settings };
        const r = await submitTuple(deps, images, refused, input);
        if ('reasons' in r) unresolved.push(r);
        else builds.push(r);
      }
      const buildSet = `s${createHash('sha256').update(builds.map((b) => b.id).sort().join(',')).digest('hex').slice(0, 32)}`;
      const result = { buildSet, builds, unresolved };
      if (builds.length) await deps.store.put(buildSetKey(buildSet), JSON.stringify({ ...result, createdAt: new Date().toISOString() }), 'application/json');
      return result;
    },

    /** A build set as submitted, with each build's current state. */
    async buildSet(id: string): Promise<BuildSet | undefined> {
      const raw = await deps.store.get(buildSetKey(id));
      if (!raw) return undefined;
      const set = JSON.parse(raw.toString('utf8')) as SubmitResult;
      const builds = await Promise.all(
        set.builds.map(async (b) => {
          const st = await deps.queues.status(b.id);
          return { ...b, state: st?.state ?? (b.status === 'done' ? 'completed' : 'unknown'), ...(st?.failedReason ? { failedReason: st.failedReason } : {}) };
        }),
      );
      return { ...set, builds };
    },

    /** Status plus, for a waiting job, why it waits (e.g. no worker serves its platform). */
    async status(id: string): Promise<BuildStatus | undefined> {
      const queued = await deps.queues.status(id);
      if (!queued) return undefined;
      const st = answeredStatus(queued);
      if (st.state === 'waiting' || st.state === 'prioritized') {
        const depth = (await deps.queues.depth())[queued.arch];
        if (depth && depth.workers === 0) return { ...st, waitingReason: `no worker serves ${st.arch} (start one with \`xamal farm worker --arch ${st.arch}\`)` };
        return { ...st, waitingReason: `${depth?.waiting ?? 0} build(s) waiting for ${depth?.workers ?? 0} ${st.arch} worker(s)` };
      }
      return st;
    },

    logs: (id: string, start?: number) => deps.queues.logs(id, start),

    /** The newest builds across the platform queues (of an app, a commit, a tuple, in a state), newest first, a page at a time. */
    list: (q: BuildListQuery) => listBuilds(deps, q),
    /** Refused (403) when the caller may not cancel builds of the job's app; `unknown` when there is no such job. */
    async cancel(id: string, caller: Caller) {
      if (deps.apps) {
        const queued = await deps.queues.status(id);
        if (!queued) return 'unknown' as const;
        const parsed = BuildJobSchema.safeParse(queued.data);
        checkMayCancel(deps.apps, parsed.success ? parsed.data.app : undefined, caller);
      }
      return deps.queues.cancel(id);
    },
  };
}
export type BuildService = ReturnType<typeof buildService>;
