import { compareVersions, ValidationError, TargetSelectorSchema, type TargetSelector } from '../../core/index.ts';
import { MAX_TARGETS, type Matrix } from '../schemas/builds.ts';

/** Distros that ship OpenSSL 3, from which release on: OTP needs ≥ 24.2 there (OTP-17812). */
export const OPENSSL3_FROM: Readonly<Record<string, string>> = { debian: '12', ubuntu: '22.04', alpine: '3.17' };
export const OTP_MIN_FOR_OPENSSL3 = '24.2';

export interface ExpandedMatrix {
  selectors: TargetSelector[];
  /** Combinations refused by a rule, with why (reported, never silently dropped). */
  refused: { combination: Record<string, string>; reason: string }[];
}

/** Pure: every combination of the matrix as a selector, minus those a known rule forbids. */
export function expandMatrix(m: Matrix): ExpandedMatrix {
  const axes = (['otp', 'elixir', 'distro', 'arch'] as const).filter((k) => m[k]?.length);
  let combos: Record<string, string>[] = [{}];
  for (const k of axes) combos = combos.flatMap((c) => m[k]!.map((v) => ({ ...c, [k]: v })));
  if (combos.length > MAX_TARGETS) throw new ValidationError([{ path: 'matrix', message: `expands to ${combos.length} combinations; at most ${MAX_TARGETS}` }]);
  const out: ExpandedMatrix = { selectors: [], refused: [] };
  for (const c of combos) {
    const d = c.distro ? /^([a-z]+)(.*)$/.exec(c.distro) : undefined;
    const from = d ? OPENSSL3_FROM[d[1]!] : undefined;
    if (from && d![2] && compareVersions(d![2], from) >= 0 && c.otp && compareVersions(c.otp, OTP_MIN_FOR_OPENSSL3) < 0 && !OTP_MIN_FOR_OPENSSL3.startsWith(`${c.otp}.`)) {
      out.refused.push({ combination: c, reason: `${c.distro} ships OpenSSL 3, which needs OTP >= ${OTP_MIN_FOR_OPENSSL3}` });
      continue;
    }
    const parsed = TargetSelectorSchema.safeParse(c);
    if (!parsed.success) {
      out.refused.push({ combination: c, reason: parsed.error.issues.map((i) => `${i.path.join('/')}: ${i.message}`).join('; ') });
      continue;
    }
    out.selectors.push(parsed.data);
  }
  return out;
}
