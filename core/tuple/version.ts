/** Dot-separated numbers (2.36, 27.3.4): libc and glibc symbol versions. Unanchored, for composing. */
export const NUMERIC_VERSION = String.raw`\d+(?:\.\d+)*`;
export const NUMERIC_VERSION_RE = new RegExp(`^${NUMERIC_VERSION}$`);

/** A mix.exs release version (SemVer: 1.2.3, 1.2.3-rc.1+build.5). Unanchored, for composing. */
export const RELEASE_VERSION = String.raw`\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?(?:\+[0-9A-Za-z.]+)?`;
export const RELEASE_VERSION_RE = new RegExp(`^${RELEASE_VERSION}$`);

/** The version query for an app's newest build of each tuple (artifact routes, `xamal deploy --version latest`). */
export const LATEST_VERSION = 'latest';

/**
 * Versions as they appear in tuples: dot-separated numeric components, optionally followed by a
 * pre-release after `~` (27.0~rc1), which sorts before the release, as in Debian.
 */
export const VERSION_RE = new RegExp(String.raw`^${NUMERIC_VERSION}(?:~[a-z0-9]+(?:\.[a-z0-9]+)*)?$`);

export function isVersion(value: string): boolean {
  return VERSION_RE.test(value);
}

/** A full version as tuples carry it: at least major.minor (27.0, 1.18.3, 27.0~rc1). */
export const FULL_VERSION_RE = /^\d+(?:\.\d+)+(?:~[a-z0-9]+(?:\.[a-z0-9]+)*)?$/;

export function isFullVersion(value: string): boolean {
  return FULL_VERSION_RE.test(value);
}

function splitPre(v: string): [string, string | undefined] {
  const i = v.indexOf('~');
  return i < 0 ? [v, undefined] : [v.slice(0, i), v.slice(i + 1)];
}

/** Digit strings by value, without Number's precision limit (`10` > `9`, `007` = `7`). */
function compareDigits(x: string, y: string): number {
  const a = x.replace(/^0+(?=\d)/, '');
  const b = y.replace(/^0+(?=\d)/, '');
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a === b ? 0 : a < b ? -1 : 1;
}

/** Element by element with `cmp`; a list that runs out first is lower. */
function compareLists(a: readonly string[], b: readonly string[], cmp: (x: string, y: string) => number): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const c = cmp(x, y);
    if (c !== 0) return c;
  }
  return 0;
}

/** One component, as runs of digits (by value) and other characters (by code unit): rc2 < rc10. */
function compareComponent(x: string, y: string): number {
  return compareLists(x.match(/\d+|\D+/g) ?? [], y.match(/\d+|\D+/g) ?? [], (a, b) =>
    /^\d/.test(a) && /^\d/.test(b) ? compareDigits(a, b) : a === b ? 0 : a < b ? -1 : 1,
  );
}

function compareParts(a: string[], b: string[]): number {
  return compareLists(a, b, compareComponent);
}

/** Total order: numeric per component, missing components count as lower (2.3 < 2.3.1), `~pre` below release. */
export function compareVersions(a: string, b: string): number {
  const [ma, pa] = splitPre(a);
  const [mb, pb] = splitPre(b);
  const main = compareParts(ma.split('.'), mb.split('.'));
  if (main !== 0) return main;
  if (pa === undefined && pb === undefined) return 0;
  if (pa === undefined) return 1;
  if (pb === undefined) return -1;
  return compareParts(pa.split('.'), pb.split('.'));
}

/** `27` matches 27, 27.3.4.1 and 27.0~rc1 but not 270.1; `27.0~rc` matches nothing but itself. */
export function versionHasPrefix(version: string, prefix: string): boolean {
  return version === prefix || version.startsWith(`${prefix}.`) || version.startsWith(`${prefix}~`);
}

/** Turns an upstream version (`27.0-rc1`, `1.18.0-rc.0`) into tuple form (`27.0~rc1`, `1.18.0~rc.0`). */
export function tupleVersion(upstream: string): string {
  return upstream.trim().toLowerCase().replace(/-(?=[a-z])/, '~');
}
