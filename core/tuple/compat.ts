import type { HostFingerprint } from './host.ts';
import type { Target } from './tuple.ts';
import { compareVersions } from './version.ts';

/** What is known about a built artifact: its tuple plus what the ELF scan found (when there was one). */
export interface ArtifactFacts {
  target: Target;
  /** Highest libc symbol version any ELF file in the release needs (`2.34`); defaults to the tuple's floor. */
  libcNeeded?: string | undefined;
  /** Sonames the release's ELF files need from the host (`libcrypto.so.3`, `libtinfo.so.6`, …). */
  sonames?: readonly string[] | undefined;
}

export type RejectCode = 'os' | 'arch' | 'libc' | 'libc-floor' | 'soname' | 'distro';

export interface Rejection {
  code: RejectCode;
  message: string;
}

export interface CompatOptions {
  /** Refuse an artifact built on another distro or release, even where its libc and sonames fit. */
  requireSameDistro?: boolean;
}

export interface CompatVerdict {
  ok: boolean;
  reasons: Rejection[];
}

/** One Set per host fingerprint's library list (a resolve asks canRun once per candidate, ~500 sonames each). */
const librarySets = new WeakMap<readonly string[], ReadonlySet<string>>();
function librarySet(libraries: readonly string[]): ReadonlySet<string> {
  let set = librarySets.get(libraries);
  if (!set) librarySets.set(libraries, (set = new Set(libraries)));
  return set;
}

/**
 * Pure: can this artifact run on this host? If not, every reason. A release bundling ERTS needs the
 * same os and arch, the same libc family, a host libc at least the artifact's floor (the ELF scan's,
 * else the tuple's), and every soname it links against present on the host.
 */
export function canRun(artifact: ArtifactFacts, host: HostFingerprint, options: CompatOptions = {}): CompatVerdict {
  const t = artifact.target;
  const reasons: Rejection[] = [];
  if (t.os !== host.os) reasons.push({ code: 'os', message: `built for ${t.os}, host runs ${host.os}` });
  if (t.arch !== host.arch) reasons.push({ code: 'arch', message: `built for ${t.arch}, host is ${host.arch}` });
  if (t.libc !== host.libc) {
    reasons.push({ code: 'libc', message: `built against ${t.libc} libc, host has ${host.libc}` });
  } else {
    const floor = artifact.libcNeeded ?? t.libcVersion;
    if (compareVersions(floor, host.libcVersion) > 0) {
      const name = t.libc === 'gnu' ? 'glibc' : 'musl';
      reasons.push({ code: 'libc-floor', message: `needs ${name} >= ${floor}, host has ${host.libcVersion}` });
    }
  }
  if (host.libraries.length > 0) {
    const have = librarySet(host.libraries);
    const missing = (artifact.sonames ?? []).filter((so) => !have.has(so));
    if (missing.length) reasons.push({ code: 'soname', message: `host lacks ${missing.join(', ')}` });
  }
  if (options.requireSameDistro && (t.distro !== host.distro || t.distroVersion !== host.distroVersion)) {
    reasons.push({ code: 'distro', message: `built on ${t.distro}${t.distroVersion}, host runs ${host.distro}${host.distroVersion}` });
  }
  return { ok: reasons.length === 0, reasons };
}
