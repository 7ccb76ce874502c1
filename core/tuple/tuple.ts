import { z } from 'zod';
import { ValidationError, type Issue } from '../errors/index.ts';
import { ARCHES, ArchSchema, isArch, normalizeArch, type Arch } from './arch.ts';
import { isFullVersion, NUMERIC_VERSION_RE } from './version.ts';

/**
 * A target tuple names exactly what a release was built for:
 * `<os>-<arch>-<libc><floor>-<distro><release>-otp<otp>-elixir<elixir>[+<qualifier>…]`,
 * e.g. `linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0`.
 * Fields are lowercase `[a-z0-9._~]` (`_` only as in x86_64); `-` separates fields and `+` qualifiers, so a tuple is always
 * safe as a path segment, an object key or a shell word.
 */
export const OSES = ['linux', 'darwin', 'windows'] as const;
export type Os = (typeof OSES)[number];
export const LIBCS = ['gnu', 'musl'] as const;
export type Libc = (typeof LIBCS)[number];

/** Distros whose libc family is known; others are accepted with either family. */
export const DISTRO_LIBC: Readonly<Record<string, Libc>> = {
  debian: 'gnu',
  ubuntu: 'gnu',
  rhel: 'gnu',
  rocky: 'gnu',
  almalinux: 'gnu',
  centos: 'gnu',
  fedora: 'gnu',
  amzn: 'gnu',
  opensuse: 'gnu',
  alpine: 'musl',
};

export const TUPLE_EXAMPLE = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
export const TUPLE_GRAMMAR = '<os>-<arch>-<libc><floor>-<distro><release>-otp<otp>-elixir<elixir>[+<qualifier>…]';
export const TUPLE_MAX_LENGTH = 160;

const DISTRO_RE = /^([a-z]+)(.*)$/;
/** A distro's release number as tuples carry it: 12, 24.04, 3.21. */
export const DISTRO_RELEASE_RE = /^\d{1,4}(?:\.\d{1,4})*$/;
const QUALIFIER_RE = /^[a-z0-9][a-z0-9.~]*$/;
const DISTRO_NAME_RE = /^[a-z]+$/;

/** The platform fields a target tuple and a host fingerprint share. */
export const PLATFORM_FIELDS = {
  os: z.enum(OSES),
  arch: ArchSchema,
  libc: z.enum(LIBCS),
  libcVersion: z.string().regex(NUMERIC_VERSION_RE, 'expected a version like 2.36'),
};

/** The distro fields a target tuple and a builder image's facts share. */
export const DISTRO_FIELDS = {
  distro: z.string().regex(DISTRO_NAME_RE, 'expected a lowercase distro name like debian'),
  distroVersion: z.string().regex(DISTRO_RELEASE_RE, 'expected a release number like 12 or 24.04'),
};

export const TargetSchema = z
  .object({
    ...PLATFORM_FIELDS,
    ...DISTRO_FIELDS,
    otp: z.string().refine(isFullVersion, 'expected a full OTP version like 27.3.4 (pre-releases as 27.0~rc1)'),
    elixir: z.string().refine(isFullVersion, 'expected a full Elixir version like 1.18.3 (pre-releases as 1.19.0~rc.0)'),
    qualifiers: z.array(z.string().regex(QUALIFIER_RE, 'expected lowercase [a-z0-9.~]')).default([]),
  })
  .strict();
export type Target = z.output<typeof TargetSchema>;

export type ParseResult<T> = { ok: true; value: T } | { ok: false; issues: Issue[] };

function quote(s: string): string {
  return JSON.stringify(s);
}

/** Parses a tuple, reporting every bad field at once (`arch: expected one of …, got "arm65"`). */
export function parseTarget(input: unknown): ParseResult<Target> {
  const fail = (path: string, message: string): ParseResult<Target> => ({ ok: false, issues: [{ path, message }] });
  if (typeof input !== 'string' || input.length === 0) {
    return fail('tuple', `expected a target tuple like ${TUPLE_EXAMPLE}, got ${input === '' ? 'an empty string' : typeof input}`);
  }
  if (input.length > TUPLE_MAX_LENGTH) return fail('tuple', `expected at most ${TUPLE_MAX_LENGTH} characters, got ${input.length}`);
  const bad = /[^a-z0-9._~+-]/.exec(input);
  if (bad) {
    const ch = bad[0];
    const hint = /[A-Z]/.test(ch) ? ' (tuples are lowercase)' : ' (fields are lowercase [a-z0-9._~], separated by "-")';
    return fail('tuple', `unexpected character ${quote(ch)} at position ${bad.index + 1}${hint}`);
  }
  const [main = '', ...quals] = input.split('+');
  const fields = main.split('-');
  if (fields.length !== 6) {
    const pre = fields.length > 6 && fields.some((f) => /^(?:rc|alpha|beta|pre|dev)/.test(f));
    const hint = pre ? ' (pre-releases use "~", as in otp27.0~rc1, because "-" separates fields)' : '';
    return fail('tuple', `expected 6 fields ${TUPLE_GRAMMAR}, got ${fields.length} in ${quote(input)}${hint}`);
  }
  const [os = '', arch = '', libcField = '', distroField = '', otpField = '', elixirField = ''] = fields;
  const issues: Issue[] = [];
  const add = (path: string, message: string) => issues.push({ path, message });

  if (!(OSES as readonly string[]).includes(os)) add('os', `expected one of ${OSES.join(', ')}, got ${quote(os)}`);

  if (!isArch(arch)) {
    const alias = normalizeArch(arch);
    add('arch', `expected one of ${ARCHES.join(', ')}, got ${quote(arch)}${alias ? ` (write ${quote(alias)})` : ''}`);
  }

  const libcMatch = /^(gnu|musl)(.*)$/.exec(libcField);
  let libc: Libc | undefined;
  let libcVersion = '';
  if (!libcMatch) {
    add('libc', `expected gnu or musl followed by the libc floor (gnu2.36, musl1.2), got ${quote(libcField)}`);
  } else {
    libc = libcMatch[1] as Libc;
    libcVersion = libcMatch[2] ?? '';
    if (!NUMERIC_VERSION_RE.test(libcVersion)) {
      add('libc', `expected a numeric libc floor after ${quote(libc)} (${libc}${libc === 'gnu' ? '2.36' : '1.2'}), got ${quote(libcField)}`);
    }
  }

  const distroMatch = DISTRO_RE.exec(distroField);
  const distro = distroMatch?.[1] ?? '';
  const distroVersion = distroMatch?.[2] ?? '';
  if (!distroMatch || !DISTRO_RELEASE_RE.test(distroVersion)) {
    add('distro', `expected a distro name and release number (debian12, ubuntu24.04, alpine3.21), never a codename or date, got ${quote(distroField)}`);
  } else {
    // own keys only: a distro named "constructor" is unknown, not Object.prototype's
    const knownLibc = Object.hasOwn(DISTRO_LIBC, distro) ? DISTRO_LIBC[distro] : undefined;
    if (libc && knownLibc && knownLibc !== libc) add('libc', `expected ${knownLibc} for ${distro}, got ${quote(libc)}`);
  }

  const otp = otpField.startsWith('otp') ? otpField.slice(3) : '';
  if (!isFullVersion(otp)) add('otp', `expected "otp" and the full OTP version (otp27.3.4, otp27.0~rc1), got ${quote(otpField)}`);
  const elixir = elixirField.startsWith('elixir') ? elixirField.slice(6) : '';
  if (!isFullVersion(elixir)) {
    add('elixir', `expected "elixir" and the full Elixir version (elixir1.18.3, elixir1.19.0~rc.0), got ${quote(elixirField)}`);
  }

  quals.forEach((q, i) => {
    if (!QUALIFIER_RE.test(q)) add(`qualifiers/${i}`, `expected a lowercase qualifier [a-z0-9.~] after "+", got ${quote(q)}`);
  });
  const sorted = [...new Set(quals)].sort();
  if (sorted.join('+') !== quals.join('+')) {
    add('qualifiers', `expected sorted, unique qualifiers (+${sorted.join('+')}), got +${quals.join('+')}`);
  }

  if (issues.length > 0) return { ok: false, issues };
  return {
    ok: true,
    value: { os: os as Os, arch: arch as Arch, libc: libc!, libcVersion, distro, distroVersion, otp, elixir, qualifiers: quals },
  };
}

/** Parses or throws a ValidationError listing every bad field. */
export function parseTargetOrThrow(input: unknown, heading?: string): Target {
  const r = parseTarget(input);
  if (!r.ok) throw new ValidationError(r.issues, heading);
  return r.value;
}

/** The canonical tuple string; `parseTarget(formatTarget(t))` gives `t` back. */
export function formatTarget(t: Target): string {
  const quals = [...new Set(t.qualifiers)].sort();
  const base = `${t.os}-${t.arch}-${t.libc}${t.libcVersion}-${t.distro}${t.distroVersion}-otp${t.otp}-elixir${t.elixir}`;
  return quals.length ? `${base}+${quals.join('+')}` : base;
}

/** A tuple string in an API body or config: parsed, with each field's problem as its own message. */
export const TargetTupleSchema = z.string().transform((value, ctx): Target => {
  const r = parseTarget(value);
  if (r.ok) return r.value;
  for (const issue of r.issues) ctx.issues.push({ code: 'custom', message: `${issue.path}: ${issue.message}`, input: value });
  return z.NEVER;
});
