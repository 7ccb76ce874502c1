import { z } from 'zod';
import { ValidationError, type Issue } from '../errors/index.ts';
import { ARCHES, normalizeArch } from './arch.ts';
import { LIBCS, OSES, type Target } from './tuple.ts';
import { isVersion, versionHasPrefix } from './version.ts';

/**
 * Chooses targets by prefix: `{otp: "27", elixir: "1.17", distro: "debian12", arch: "x86_64"}`.
 * Versions match on whole components (`27` matches 27.3.4.1, not 270.1); `distro` is a name
 * (`debian`) or a name and release prefix (`debian12`, `ubuntu24`); arch accepts aliases (`arm64`).
 */
const VersionPrefix = z.string().refine((v) => isVersion(v), 'expected a version or version prefix like 27 or 1.17');

export const TargetSelectorSchema = z
  .object({
    os: z.enum(OSES).optional(),
    arch: z
      .string()
      .transform((v, ctx) => {
        const a = normalizeArch(v);
        if (a) return a;
        ctx.issues.push({ code: 'custom', message: `expected one of ${ARCHES.join(', ')} (or amd64, arm64), got ${JSON.stringify(v)}`, input: v });
        return z.NEVER;
      })
      .optional(),
    libc: z.enum(LIBCS).optional(),
    distro: z
      .string()
      .regex(/^[a-z]+(?:\d{1,4}(?:\.\d{1,4})*)?$/, 'expected a distro name, optionally with a release (debian, debian12, ubuntu24.04)')
      .optional(),
    otp: VersionPrefix.optional(),
    elixir: VersionPrefix.optional(),
    qualifiers: z.array(z.string().regex(/^[a-z0-9][a-z0-9.~]*$/, 'expected lowercase [a-z0-9.~]')).optional(),
  })
  .strict();
export type TargetSelector = z.output<typeof TargetSelectorSchema>;
export type TargetSelectorInput = z.input<typeof TargetSelectorSchema>;

export type SelectorField = keyof TargetSelector;

/** Each selector field the target does not satisfy, with why. Empty = the target matches. */
export function selectorMismatches(target: Target, sel: TargetSelector): Issue[] {
  const out: Issue[] = [];
  if (sel.os && target.os !== sel.os) out.push({ path: 'os', message: `wanted ${sel.os}, artifact is ${target.os}` });
  if (sel.arch && target.arch !== sel.arch) out.push({ path: 'arch', message: `wanted ${sel.arch}, artifact is ${target.arch}` });
  if (sel.libc && target.libc !== sel.libc) out.push({ path: 'libc', message: `wanted ${sel.libc}, artifact is ${target.libc}` });
  if (sel.distro) {
    const m = /^([a-z]+)(.*)$/.exec(sel.distro)!;
    const name = m[1]!;
    const release = m[2] ?? '';
    if (target.distro !== name || (release !== '' && !versionHasPrefix(target.distroVersion, release))) {
      out.push({ path: 'distro', message: `wanted ${sel.distro}, artifact is ${target.distro}${target.distroVersion}` });
    }
  }
  if (sel.otp && !versionHasPrefix(target.otp, sel.otp)) out.push({ path: 'otp', message: `wanted OTP ${sel.otp}, artifact has ${target.otp}` });
  if (sel.elixir && !versionHasPrefix(target.elixir, sel.elixir)) {
    out.push({ path: 'elixir', message: `wanted Elixir ${sel.elixir}, artifact has ${target.elixir}` });
  }
  for (const q of sel.qualifiers ?? []) {
    if (!target.qualifiers.includes(q)) out.push({ path: 'qualifiers', message: `wanted +${q}, artifact lacks it` });
  }
  return out;
}

export function matchesSelector(target: Target, sel: TargetSelector): boolean {
  return selectorMismatches(target, sel).length === 0;
}

/**
 * The string form used by the CLI and query strings: `otp=27,elixir=1.17,distro=debian12,arch=arm64`
 * (`qualifiers=a+b`). Every problem is reported at once.
 */
export function parseSelectorString(input: string): TargetSelector {
  const raw: Record<string, unknown> = Object.create(null);
  const issues: Issue[] = [];
  for (const part of input.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) {
      issues.push({ path: 'selector', message: `expected key=value, got ${JSON.stringify(part)}` });
      continue;
    }
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (Object.hasOwn(raw, key)) issues.push({ path: key, message: 'given twice' });
    raw[key] = key === 'qualifiers' ? value.split('+').filter(Boolean) : value;
  }
  const parsed = TargetSelectorSchema.safeParse(raw);
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      issues.push({
        path: i.path.length ? i.path.join('/') : 'selector',
        message: i.code === 'unrecognized_keys' ? `unknown key(s) ${i.keys.join(', ')}; expected os, arch, libc, distro, otp, elixir, qualifiers` : i.message,
      });
    }
  }
  if (issues.length || !parsed.success) throw new ValidationError(issues, 'invalid target selector');
  return parsed.data;
}

/** The string form parseSelectorString reads, keys in the schema's order (`arch=aarch64,distro=debian13,otp=27`). */
export function formatSelectorString(sel: TargetSelector): string {
  return (Object.keys(TargetSelectorSchema.shape) as SelectorField[]).flatMap((k) => {
    const v = sel[k];
    if (v === undefined || (Array.isArray(v) && v.length === 0)) return [];
    return [`${k}=${Array.isArray(v) ? v.join('+') : v}`];
  }).join(',');
}
