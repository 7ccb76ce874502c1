import { z } from 'zod';
import { DISTRO_FIELDS, DISTRO_RELEASE_RE, PLATFORM_FIELDS, TargetSchema, ValidationError, formatTarget, isFullVersion, issuesFromZod, type Issue, type Target } from '../core/index.ts';
import { normalizeArch, probeScript, probeSections, readLibcAndRelease } from '../core/index.ts';

/**
 * Runs inside the image with /bin/sh. No interpolation: the same bytes for every image. Looks in
 * Debian's and hexpm's (/usr/local) install locations.
 */
export const IMAGE_PROBE_SCRIPT = probeScript(
  ['echo @@arch; uname -m'],
  [
    'echo @@otp; for r in /usr/local/lib/erlang /usr/lib/erlang; do for f in "$r"/releases/*/OTP_VERSION; do [ -f "$f" ] && { cat "$f"; break 2; }; done; done',
    'echo @@erts; for r in /usr/local/lib/erlang /usr/lib/erlang; do for d in "$r"/erts-*; do [ -d "$d" ] && { basename "$d"; break 2; }; done; done',
    'echo @@elixir; for f in /usr/local/lib/elixir/lib/elixir/ebin/elixir.app /usr/lib/elixir/lib/elixir/ebin/elixir.app; do [ -f "$f" ] && { grep -o \'{vsn,"[^"]*"}\' "$f"; break; }; done',
    'echo @@crypto-nif; for f in /usr/local/lib/erlang/lib/crypto-*/priv/lib/crypto.so /usr/lib/erlang/lib/crypto-*/priv/lib/crypto.so; do [ -f "$f" ] && { ldd "$f" 2>/dev/null | grep -o "libcrypto\\.so[.0-9]*" | head -n 1; break; }; done',
    'echo @@libcrypto; ls /usr/lib/*-linux-gnu/ /lib/*-linux-gnu/ /usr/lib/ /lib/ 2>/dev/null | grep -E "^libcrypto\\.so\\.[0-9.]+$" | sort -u',
  ],
);

/** What probing an image (running it) found. The tuple of a builder image comes only from these. */
export const ImageFactsSchema = z
  .object({
    ...PLATFORM_FIELDS,
    os: z.literal('linux'),
    ...DISTRO_FIELDS,
    /** Full OTP version from OTP_VERSION (absent in runtime images). */
    otp: z.string().optional(),
    erts: z.string().optional(),
    elixir: z.string().optional(),
    /** Soname of libcrypto the crypto NIF links against (`libcrypto.so.3`), or the one installed. */
    libcrypto: z.string().optional(),
  })
  .strict();
export type ImageFacts = z.output<typeof ImageFactsSchema>;

/** Pure: the probe's output → facts, or every fact it could not read. */
export function parseImageProbe(text: string): ImageFacts {
  const s = probeSections(text);
  const first = (k: string) => s.get(k)?.[0];
  const issues: Issue[] = [];
  const arch = normalizeArch(first('arch') ?? '');
  if (!arch) issues.push({ path: 'arch', message: `unknown machine ${JSON.stringify(first('arch') ?? '')}` });
  const { libc, libcVersion, release: rel } = readLibcAndRelease(s, issues);
  const distro = rel.ID;
  // Debian testing/sid have no VERSION_ID; alpine's is 3.21.3 (tuples carry major.minor).
  let distroVersion: string | undefined = rel.VERSION_ID;
  if (distro === 'alpine' && distroVersion) distroVersion = distroVersion.split('.').slice(0, 2).join('.');
  if (!distroVersion || !DISTRO_RELEASE_RE.test(distroVersion)) {
    issues.push({ path: 'distroVersion', message: `no usable VERSION_ID in /etc/os-release (${JSON.stringify(rel.VERSION_ID ?? '')})` });
  }
  const otp = first('otp');
  if (otp !== undefined && !isFullVersion(otp.replace(/-(?=rc)/, '~')) && !/^\d+$/.test(otp)) issues.push({ path: 'otp', message: `unreadable OTP_VERSION ${JSON.stringify(otp)}` });
  const erts = /^erts-(.+)$/.exec(first('erts') ?? '')?.[1];
  const elixir = /\{vsn,"([^"]+)"\}/.exec(first('elixir') ?? '')?.[1];
  const libcrypto = first('crypto-nif') ?? (s.get('libcrypto') ?? []).sort().at(-1);
  if (issues.length) throw new ValidationError(issues, 'image probe failed');
  const facts = ImageFactsSchema.safeParse({
    os: 'linux',
    arch,
    libc,
    libcVersion,
    distro,
    distroVersion,
    ...(otp ? { otp: otp.replace(/-(?=rc)/, '~') } : {}),
    ...(erts ? { erts } : {}),
    ...(elixir ? { elixir: elixir.replace(/-(?=rc)/, '~') } : {}),
    ...(libcrypto ? { libcrypto } : {}),
  });
  // What the checks above let through but facts cannot hold (an os-release ID like opensuse-leap).
  if (!facts.success) throw new ValidationError(issuesFromZod(facts.error), 'image probe failed');
  return facts.data;
}

/** The target tuple of a builder image: a pure function of its probed facts. */
export function targetFromFacts(f: ImageFacts): Target {
  const missing = (['otp', 'elixir'] as const).filter((k) => !f[k]);
  if (missing.length) {
    throw new ValidationError(missing.map((k) => ({ path: k, message: 'not found in the image (is it a builder image?)' })), 'cannot derive a target tuple');
  }
  const t = { os: 'linux', arch: f.arch, libc: f.libc, libcVersion: f.libcVersion.split('.').slice(0, 2).join('.'), distro: f.distro, distroVersion: f.distroVersion, otp: f.otp!, elixir: f.elixir!, qualifiers: [] };
  // Facts can hold what a tuple cannot (an OTP_VERSION of just "26"): refuse rather than print a bad tuple.
  const r = TargetSchema.safeParse(t);
  if (!r.success) throw new ValidationError(issuesFromZod(r.error), 'cannot derive a target tuple');
  return r.data;
}

export function tupleFromFacts(f: ImageFacts): string {
  return formatTarget(targetFromFacts(f));
}
