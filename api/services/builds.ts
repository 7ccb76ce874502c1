import { createHash } from 'node:crypto';
import { buildSetKey, formatTarget, isXamalError, XamalError, type Executor, type Issue } from '../../core/index.ts';
import { storedArtifact } from '../../store/artifact-index.ts';
import { buildJobId, BuildJobSchema, type BuildJobInput } from '../../core/contracts/build-job.ts';
import type { BuildQueues, BuildStatus } from '../../queue/index.ts';
import type { ObjectStore } from '../../store/store.ts';
import { lookupBySelector, usableImages } from '../../images/catalog.ts';
import type { LockFile } from '../../images/lock.ts';
import type { BuildRequest } from '../schemas/builds.ts';
import { expandMatrix } from './matrix.ts';

export interface BuildServiceDeps {
  queues: BuildQueues;
  store: ObjectStore;
  locks: () => Promise<LockFile[]>;
  /** Runs `git ls-remote` (branch/tag → commit, once, before any job exists). */
  exec: Executor;
}

export interface SubmittedBuild {
  id: string;
  tuple: string;
  status: 'done' | 'queued' | string;
  manifestKey?: string;
}

export interface SubmitResult {
  buildSet: string;
  builds: SubmittedBuild[];
  /** Targets no pinned builder image serves, with why: reported, never silently dropped. */
  unresolved: { target: unknown; reasons: string[] }[];
}

async function resolveRef(exec: Executor, url: string, ref: string): Promise<string> {
  const r = await exec.run({ argv: ['git', 'ls-remote', '--', url, ref], timeoutMs: 30_000, label: 'git ls-remote' });
  if (r.code !== 0) throw new XamalError('validation', `source/ref: could not read ${url}: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
  const lines = r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split('\t'));
  const exact = lines.filter(([, name]) => name === ref || name === `refs/heads/${ref}` || name === `refs/tags/${ref}` || name === `refs/tags/${ref}^{}`);
  const pick = exact.find(([, n]) => n?.endsWith('^{}')) ?? exact[0];
  if (!pick?.[0] || !/^[0-9a-f]{40}$/.test(pick[0])) throw new XamalError('validation', `source/ref: ${JSON.stringify(ref)} is not a branch or tag of ${url}`);
  return pick[0];
}

export function buildService(deps: BuildServiceDeps) {
  return {
    async submit(req: BuildRequest): Promise<SubmitResult> {
      const source: BuildJobInput['source'] =
        'git' in req.source
          ? { kind: 'git', url: req.source.git, commit: req.source.commit ?? (await resolveRef(deps.exec, req.source.git, req.source.ref!)) }
          : { kind: 'archive', key: req.source.archive, sha256: req.source.sha256 };
      const images = usableImages(await deps.locks());
      const tuples = new Set<string>();
      const unresolved: SubmitResult['unresolved'] = [];
      const specs = req.targets ?? [];
      if (req.matrix) {
        const expanded = expandMatrix(req.matrix);
        specs.push(...expanded.selectors.map((selector) => ({ kind: 'selector' as const, selector })));
        for (const r of expanded.refused) unresolved.push({ target: r.combination, reasons: [r.reason] });
      }
      for (const spec of specs) {
        if (spec.kind === 'tuple') {
          tuples.add(formatTarget(spec.target));
          continue;
        }
        const found = lookupBySelector(images, spec.selector);
        if (found.matches[0]?.tuple) tuples.add(found.matches[0].tuple);
        else unresolved.push({ target: spec.selector, reasons: found.rejected.map((r) => `${r.image.tuple ?? r.image.ref}: ${r.reasons.map((x: Issue) => `${x.path} ${x.message}`).join('; ')}`) });
      }
      const builds: SubmittedBuild[] = [];
      for (const tuple of tuples) {
        const input: BuildJobInput = { app: req.app, source, target: tuple, ...(req.mixEnv ? { mixEnv: req.mixEnv } : {}), ...(req.release ? { release: req.release } : {}) };
        const job = BuildJobSchema.parse(input);
        const served = images.some((i) => i.flavour === 'builder' && i.tuple === tuple);
        if (!served) {
          unresolved.push({ target: tuple, reasons: ['no pinned builder image has this tuple (see GET images with `xamal farm images list`)'] });
          continue;
        }
        let stored;
        try {
          stored = await storedArtifact(deps.store, job);
        } catch (err) {
          // Another MIX_ENV or release already built under this key: refused for this target only.
          if (!isXamalError(err) || err.code !== 'conflict') throw err;
          unresolved.push({ target: tuple, reasons: [err.message] });
          continue;
        }
        if (stored) {
          builds.push({ id: buildJobId(job), tuple, status: 'done', manifestKey: stored.key });
          continue;
        }
        const { id } = await deps.queues.enqueue(input, job.target.arch);
        const st = await deps.queues.status(id);
        builds.push({ id, tuple, status: st?.state === 'completed' ? 'done' : (st?.state ?? 'queued') });
      }
      const buildSet = `s${createHash('sha256').update(builds.map((b) => b.id).sort().join(',')).digest('hex').slice(0, 32)}`;
      const result = { buildSet, builds, unresolved };
      if (builds.length) await deps.store.put(buildSetKey(buildSet), JSON.stringify({ ...result, createdAt: new Date().toISOString() }), 'application/json');
      return result;
    },

    /** A build set as submitted, with each build's current state. */
    async buildSet(id: string): Promise<(SubmitResult & { builds: (SubmittedBuild & { state: string })[] }) | undefined> {
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
    async status(id: string): Promise<(BuildStatus & { waitingReason?: string }) | undefined> {
      const st = await deps.queues.status(id);
      if (!st) return undefined;
      if (st.state === 'waiting' || st.state === 'prioritized') {
        const depth = (await deps.queues.depth())[st.arch];
        if (depth && depth.workers === 0) return { ...st, waitingReason: `no worker serves ${st.arch} (start one with \`xamal farm worker --arch ${st.arch}\`)` };
        return { ...st, waitingReason: `${depth?.waiting ?? 0} build(s) waiting for ${depth?.workers ?? 0} ${st.arch} worker(s)` };
      }
      return st;
    },

    logs: (id: string, start?: number) => deps.queues.logs(id, start),
    cancel: (id: string) => deps.queues.cancel(id),
  };
}
export type BuildService = ReturnType<typeof buildService>;
