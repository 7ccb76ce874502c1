import { artifactVariant, canRun, compareVersions, parseTargetOrThrow, XamalError, type HostFingerprint, type Target } from '../../core/index.ts';
import type { ArtifactIndex, IndexedArtifact } from '../../store/artifact-index.ts';
import type { ResolveAnswer, ResolveRequest } from '../schemas/resolve.ts';

/** Higher is better: same distro release, then the closest (highest) libc floor, then newest OTP/Elixir. */
function rank(a: IndexedArtifact, t: Target, host: HostFingerprint): [number, string, string, string] {
  const same = t.distro === host.distro && t.distroVersion === host.distroVersion ? 1 : 0;
  return [same, a.manifest.glibcNeeded ?? t.libcVersion, t.otp, t.elixir];
}

function better(x: [number, string, string, string], y: [number, string, string, string]): boolean {
  if (x[0] !== y[0]) return x[0] > y[0];
  for (const i of [1, 2, 3] as const) {
    const c = compareVersions(x[i], y[i]);
    if (c !== 0) return c > 0;
  }
  return false;
}

/** Picks the artifact that fits a host, and says for every candidate why (not). Pure over the index. */
export function resolveService(index: ArtifactIndex) {
  return {
    /** The wire answer, each reason's code typed as core names it. */
    async resolve(req: ResolveRequest) {
      const variant = { ...(req.mixEnv ? { mixEnv: req.mixEnv } : {}), ...(req.release ? { release: req.release } : {}) };
      const candidates = await index.find(req.app, req.version, { ...(req.selector ? { selector: req.selector } : {}), ...variant });
      if (candidates.length === 0) {
        const which = artifactVariant({ app: req.app, ...variant });
        const of = which.isDefault ? '' : ` (MIX_ENV=${which.mixEnv}, release ${which.release})`;
        throw new XamalError('not_found', `no artifact of ${req.app} ${req.version}${of}${req.selector ? ' matching the selector' : ''}`);
      }
      const verdicts = candidates.map((a) => {
        const target = parseTargetOrThrow(a.manifest.tuple);
        return { a, v: canRun({ target, libcNeeded: a.manifest.glibcNeeded, sonames: a.manifest.sonames }, req.host), rank: rank(a, target, req.host) };
      });
      let best: (typeof verdicts)[number] | undefined;
      for (const x of verdicts) if (x.v.ok && (!best || better(x.rank, best.rank))) best = x;
      const others = verdicts.filter((x) => x !== best).map(({ a, v }) => ({ tuple: a.manifest.tuple, runs: v.ok, reasons: v.reasons }));
      if (!best) {
        throw new XamalError('not_found', `no artifact of ${req.app} ${req.version} runs on this host:\n${others.map((o) => `${o.tuple}: ${o.reasons.map((r) => `${r.code}: ${r.message}`).join('; ')}`).join('\n')}`, {
          details: { rejected: others },
        });
      }
      const m = best.a.manifest;
      return { artifact: { tuple: m.tuple, manifestKey: best.a.key, sha256: m.tarball.sha256, ...(m.glibcNeeded ? { glibcNeeded: m.glibcNeeded } : {}) }, others } satisfies ResolveAnswer;
    },
  };
}
export type ResolveService = ReturnType<typeof resolveService>;
