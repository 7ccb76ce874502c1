import { z } from 'zod';
import { ValidationError, type Issue } from '../errors/index.ts';
import { ARCHES, normalizeArch, type Arch } from './arch.ts';
import { OSES, PLATFORM_FIELDS } from './tuple.ts';
import type { Command } from '../exec/command.ts';
import { probeScript, probeSections, readLibcAndRelease } from './probe-output.ts';

/**
 * What a host can run: the facts `xamal host probe` reads off a machine (locally or over SSH).
 * `libraries` are the sonames the dynamic loader can find (`ldconfig -p`), for this arch only.
 */
export const HostFingerprintSchema = z
  .object({
    ...PLATFORM_FIELDS,
    distro: z.string().regex(/^[a-z0-9._-]+$/, 'expected an os-release ID like debian'),
    distroVersion: z.string().regex(/^[0-9.]*$/, 'expected an os-release VERSION_ID like 12 (empty when unknown)'),
    distroCodename: z.string().optional(),
    libraries: z.array(z.string().regex(/^[A-Za-z0-9._+-]+$/, 'expected a soname like libcrypto.so.3')),
    hostname: z.string().optional(),
    kernel: z.string().optional(),
  })
  .strict();
export type HostFingerprint = z.output<typeof HostFingerprintSchema>;

/**
 * The probe is one fixed POSIX sh script (no interpolation), so the same bytes run locally and over
 * SSH. Sections are marked with `@@name` lines.
 */
export const PROBE_SCRIPT = probeScript(
  ['echo @@uname; uname -s; uname -m; uname -r; uname -n'],
  [
    'echo @@ldconfig; { /sbin/ldconfig -p 2>/dev/null || ldconfig -p 2>/dev/null; } | tail -n +2 || true',
    'echo @@libs; for d in /lib /usr/lib /lib64 /usr/lib64 /usr/local/lib; do ls -1 "$d" 2>/dev/null; done || true',
  ],
);

/** ldconfig tags libraries with their ABI; keep the ones for this host's arch. */
const LDCONFIG_ARCH_TAG: Partial<Record<Arch, RegExp>> = {
  x86_64: /x86-64/,
  aarch64: /AArch64/,
  riscv64: /RISC-V|riscv/i,
};

/** Pure: the probe script's output → a fingerprint, or every field it could not read. */
export function parseProbeOutput(text: string): HostFingerprint {
  const s = probeSections(text);
  const issues: Issue[] = [];
  const [osName = '', machine = '', kernel, hostname] = (s.get('uname') ?? []).map((l) => l.trim());
  const os = osName.toLowerCase();
  if (!(OSES as readonly string[]).includes(os)) issues.push({ path: 'os', message: `unsupported kernel ${JSON.stringify(osName)}` });
  const arch = normalizeArch(machine);
  if (!arch) issues.push({ path: 'arch', message: `unknown machine ${JSON.stringify(machine)}; expected one of ${ARCHES.join(', ')}` });

  const { libc, libcVersion, release: rel } = readLibcAndRelease(s, issues, ' (getconf GNU_LIBC_VERSION, ldd --version)');
  const distro = (rel.ID ?? '').toLowerCase();
  const distroVersion = /^[0-9.]+$/.test(rel.VERSION_ID ?? '') ? rel.VERSION_ID! : '';

  const libraries = new Set<string>();
  const tag = arch ? LDCONFIG_ARCH_TAG[arch] : undefined;
  for (const line of s.get('ldconfig') ?? []) {
    const m = /^\s*(\S+)\s+\(([^)]*)\)\s+=>/.exec(line);
    if (m && (!tag || tag.test(m[2]!))) libraries.add(m[1]!);
  }
  if (libraries.size === 0) {
    for (const line of s.get('libs') ?? []) {
      const name = line.trim();
      if (/^lib[A-Za-z0-9._+-]*\.so(?:\.\d+)*$/.test(name) || /^ld-[A-Za-z0-9._+-]+\.so(?:\.\d+)*$/.test(name)) libraries.add(name);
    }
  }

  if (issues.length) throw new ValidationError(issues, 'host probe failed');
  return HostFingerprintSchema.parse({
    os,
    arch,
    libc,
    libcVersion,
    distro,
    distroVersion,
    ...(rel.VERSION_CODENAME ? { distroCodename: rel.VERSION_CODENAME } : {}),
    libraries: [...libraries].sort(),
    ...(hostname ? { hostname } : {}),
    ...(kernel ? { kernel } : {}),
  });
}

/** The probe as a command, for any executor (local or SSH). */
export function probeCommand(): Command {
  return { argv: ['sh', '-c', PROBE_SCRIPT], label: 'probe host', timeoutMs: 30_000 };
}
