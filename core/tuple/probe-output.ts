import type { Issue } from '../errors/index.ts';
import type { Libc } from './tuple.ts';

/**
 * Shared by the host probe (core/tuple/host.ts) and the image probe (images/facts.ts): the script
 * lines that read libc and os-release, and the parsers of their `@@section` output.
 */
const LIBC_AND_OS_PROBE_LINES = [
  'echo @@glibc; getconf GNU_LIBC_VERSION 2>/dev/null || true',
  'echo @@ldd; ldd --version 2>&1 | head -n 2 || true',
  'echo @@os-release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null || true',
];

/** A probe script: `head` lines, the libc and os-release lines, `tail` lines, then `@@end`. */
export function probeScript(head: readonly string[], tail: readonly string[]): string {
  return [...head, ...LIBC_AND_OS_PROBE_LINES, ...tail, 'echo @@end'].join('\n');
}

/** `@@name` headed sections → their non-empty, trimmed lines. */
export function probeSections(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const m = /^@@([a-z-]+)$/.exec(line);
    if (m) out.set(m[1]!, (current = []));
    else if (current && line) current.push(line);
  }
  return out;
}

/** os-release `KEY=value` lines (quotes removed). */
export function parseOsRelease(lines: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of lines) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^["']|["']$/g, '');
  }
  return out;
}

/** The libc family and version from the `glibc` and `ldd` sections, if readable. */
export function readLibc(sections: Map<string, string[]>): { libc: Libc; version: string } | undefined {
  const glibc = /glibc\s+(\d+(?:\.\d+)+)/i.exec((sections.get('glibc') ?? []).join('\n'));
  if (glibc) return { libc: 'gnu', version: glibc[1]! };
  const ldd = (sections.get('ldd') ?? []).join('\n');
  if (/musl/i.test(ldd)) {
    const v = /Version\s+(\d+(?:\.\d+)+)/i.exec(ldd)?.[1];
    return v ? { libc: 'musl', version: v } : undefined;
  }
  const m = /(?:GLIBC|GNU libc)[^\n]*?(\d+\.\d+(?:\.\d+)?)/i.exec(ldd);
  return m ? { libc: 'gnu', version: m[1]! } : undefined;
}

/**
 * The libc and os-release sections, read: an issue for each that cannot be (`libcHint` ends the
 * libc one). `libcVersion` is empty when libc is unreadable.
 */
export function readLibcAndRelease(
  sections: Map<string, string[]>,
  issues: Issue[],
  libcHint = '',
): { libc: Libc | undefined; libcVersion: string; release: Record<string, string> } {
  const lc = readLibc(sections);
  if (!lc) issues.push({ path: 'libc', message: `could not read the libc family and version${libcHint}` });
  const release = parseOsRelease(sections.get('os-release') ?? []);
  if (!release.ID) issues.push({ path: 'distro', message: 'no ID in /etc/os-release' });
  return { libc: lc?.libc, libcVersion: lc?.version ?? '', release };
}
