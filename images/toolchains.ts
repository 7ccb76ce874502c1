import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { compareVersions, parseOrThrow, ValidationError, XamalError, type Arch, type Issue } from '../core/index.ts';
import type { DebianSuite } from './distros.ts';

/**
 * The toolchain catalog (`images/toolchains.json`): every OTP and Elixir source the farm may
 * compile, pinned by sha256, and the rules that say which combinations can be built where —
 * checked before anything is built, so a request, the catalog and `xamal farm images list` all give
 * the same answer and the same reason.
 */

const SHA256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a sha256 in hex');
const ORIGIN = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'expected an origin name like debian');

export const ToolchainSourceSchema = z
  .object({
    /** A name the farm maps to a base URL (`XAMAL_TOOLCHAIN_ORIGINS`). */
    origin: ORIGIN,
    /** The file under the origin's base URL: relative, no `..`. */
    path: z
      .string()
      .regex(/^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9._+~\/-]+\.(?:tar\.xz|tar\.gz|deb)$/, 'expected a relative path to a .tar.xz, .tar.gz or .deb like pool/main/e/erlang/erlang_27.3.4.1+dfsg.orig.tar.xz'),
    sha256: SHA256,
    /** The size, where the pin's publisher gives one (Debian's Sources do); a larger download is cut off. */
    bytes: z.number().int().positive().optional(),
    /**
     * Elixir only: not a source but Elixir already compiled for this OTP major (as Elixir's own
     * `elixir-otp-<major>.zip` builds are; here a Debian binary package), installed as it is. A
     * `.deb` must say this; a tarball must not.
     */
    precompiled: z.object({ otpMajor: z.number().int().min(17).max(99) }).strict().optional(),
  })
  .strict()
  .refine((s) => s.path.endsWith('.deb') === (s.precompiled !== undefined), { message: 'a .deb is a precompiled Elixir (precompiled: {otpMajor}); a tarball is a source (no precompiled)', path: ['precompiled'] });
export type ToolchainSource = z.output<typeof ToolchainSourceSchema>;

const VERSION = z.string().regex(/^\d+(?:\.\d+){1,4}$/, 'expected a release version like 27.3.4.1');
const EntrySchema = z
  .object({ version: VERSION, sources: z.array(ToolchainSourceSchema).min(1, 'expected at least one source') })
  .strict()
  .refine((e) => new Set(e.sources.map((x) => x.origin)).size === e.sources.length, { message: 'expected one source per origin', path: ['sources'] });
export type ToolchainEntry = z.output<typeof EntrySchema>;

/** A version with the one source a farm fetches it from. */
export interface PickedSource {
  version: string;
  source: ToolchainSource;
}

export const ToolchainCatalogSchema = z
  .object({
    $comment: z.string().optional(),
    otp: z.array(EntrySchema),
    elixir: z.array(EntrySchema),
  })
  .strict()
  .superRefine((c, ctx) => {
    c.otp.forEach((e, i) =>
      e.sources.forEach((x, j) => {
        if (x.precompiled) ctx.addIssue({ code: 'custom', path: ['otp', i, 'sources', j, 'precompiled'], message: 'OTP is always compiled from its source here: expected a .tar.xz or .tar.gz' });
      }),
    );
    for (const kind of ['otp', 'elixir'] as const) {
      const seen = new Set<string>();
      c[kind].forEach((e, i) => {
        if (seen.has(e.version)) ctx.addIssue({ code: 'custom', path: [kind, i, 'version'], message: `${e.version} is listed twice` });
        seen.add(e.version);
      });
    }
  });
export type ToolchainCatalog = z.output<typeof ToolchainCatalogSchema>;

export const TOOLCHAINS_PATH = fileURLToPath(new URL('./toolchains.json', import.meta.url));

export function parseToolchainCatalog(json: unknown, source = 'toolchain catalog'): ToolchainCatalog {
  return parseOrThrow(ToolchainCatalogSchema, json, `${source}: invalid toolchain catalog`);
}

/** The committed catalog (read once: it ships with the code). */
export function readToolchainCatalog(path = TOOLCHAINS_PATH): ToolchainCatalog {
  return parseToolchainCatalog(JSON.parse(readFileSync(path, 'utf8')), path);
}

/** The origins a farm fetches from, in order, unless XAMAL_TOOLCHAIN_PREFER says otherwise: upstream first. */
export const DEFAULT_PREFER: readonly string[] = ['github', 'debian'];

/**
 * Pure: the source of `entry` a farm fetches, by the first origin in `prefer` that the entry has
 * (no fallback to another origin: the source decides the cache keys, so a farm's builds stay one
 * source's). None: an error naming the entry's origins and the setting.
 */
export function pickSource(kind: 'OTP' | 'Elixir', entry: ToolchainEntry, prefer: readonly string[]): PickedSource {
  for (const origin of prefer) {
    const source = entry.sources.find((x) => x.origin === origin);
    if (source) return { version: entry.version, source };
  }
  throw new XamalError('unsupported', `${kind} ${entry.version} has no source from the origins this farm uses (${prefer.join(', ')}); its sources: ${entry.sources.map((x) => x.origin).join(', ')}; set XAMAL_TOOLCHAIN_PREFER`);
}

/** A source's format, from its name (the schema admits only these): a compressed tarball, or a Debian package of a precompiled Elixir. */
export type SourceFormat = 'xz' | 'gz' | 'deb';

/** Pure: a source's format, from its name. */
export function sourceFormat(source: Pick<ToolchainSource, 'path'>): SourceFormat {
  return source.path.endsWith('.tar.gz') ? 'gz' : source.path.endsWith('.deb') ? 'deb' : 'xz';
}

/** Pure: where a source is fetched from, given the farm's origins (name → base URL). */
export function sourceUrl(source: ToolchainSource, origins: Readonly<Record<string, string>>): string {
  const base = Object.hasOwn(origins, source.origin) ? origins[source.origin] : undefined;
  if (base === undefined) {
    throw new ValidationError([{ path: 'origin', message: `no base URL for origin ${JSON.stringify(source.origin)}; set XAMAL_TOOLCHAIN_ORIGINS (known: ${Object.keys(origins).join(', ') || 'none'})` }], 'toolchain source');
  }
  return `${base.replace(/\/+$/, '')}/${source.path}`;
}

// ---------------------------------------------------------------------------------------------
// Compatibility, as data
// ---------------------------------------------------------------------------------------------

/**
 * Which OTP majors each Elixir minor runs on (Elixir's compatibility table); `from` raises the top
 * for later patch releases of that minor.
 */
export const ELIXIR_OTP: readonly { elixir: string; otp: [number, number]; from?: { patch: string; otpMax: number } }[] = [
  { elixir: '1.10', otp: [21, 22], from: { patch: '1.10.3', otpMax: 23 } },
  { elixir: '1.11', otp: [21, 23], from: { patch: '1.11.4', otpMax: 24 } },
  { elixir: '1.12', otp: [22, 24] },
  { elixir: '1.13', otp: [22, 24], from: { patch: '1.13.4', otpMax: 25 } },
  { elixir: '1.14', otp: [23, 25], from: { patch: '1.14.5', otpMax: 26 } },
  { elixir: '1.15', otp: [24, 26] },
  { elixir: '1.16', otp: [24, 26] },
  { elixir: '1.17', otp: [25, 27] },
  { elixir: '1.18', otp: [25, 27], from: { patch: '1.18.4', otpMax: 28 } },
  { elixir: '1.19', otp: [26, 28] },
  { elixir: '1.20', otp: [27, 29] },
];

/** The OpenSSL each suite ships: OTP's crypto needs 24.2 or later to build against OpenSSL 3. */
export const SUITE_OPENSSL: Readonly<Record<DebianSuite, { openssl: string; major: number }>> = {
  bullseye: { openssl: '1.1.1', major: 1 },
  bookworm: { openssl: '3.0', major: 3 },
  trixie: { openssl: '3.5', major: 3 },
};
export const OTP_FOR_OPENSSL3 = '24.2';

/** Building from source under qemu takes hours: only on a worker of that arch. */
export interface BuildPlace {
  arch: Arch;
  hostArch: Arch;
  /** The origins the farm fetches sources from (XAMAL_TOOLCHAIN_PREFER): a version with none of them cannot be built there. */
  prefer?: readonly string[];
}

const major = (v: string) => Number(v.split('.')[0]);

/** Pure: why Elixir `elixir` cannot run on OTP `otp` (none when it can). */
export function elixirOtpProblem(elixir: string, otp: string): string | undefined {
  const minor = elixir.split('.').slice(0, 2).join('.');
  const rule = ELIXIR_OTP.find((r) => r.elixir === minor);
  if (!rule) return `Elixir ${elixir} is not in the compatibility table (known: ${ELIXIR_OTP[0]!.elixir}–${ELIXIR_OTP.at(-1)!.elixir})`;
  const top = rule.from && compareVersions(elixir, rule.from.patch) >= 0 ? rule.from.otpMax : rule.otp[1];
  const m = major(otp);
  if (m < rule.otp[0] || m > top) return `Elixir ${elixir} runs on OTP ${rule.otp[0]}–${top}, not OTP ${otp}`;
  return undefined;
}

/** Pure: every reason OTP `otp` + Elixir `elixir` cannot be built on `suite` at `place` from `catalog` (empty: it can). */
export function toolchainProblems(catalog: ToolchainCatalog, suite: DebianSuite, otp: string, elixir: string, place: BuildPlace): Issue[] {
  const issues: Issue[] = [];
  const fetchable = (kind: 'OTP' | 'Elixir', path: 'otp' | 'elixir', entries: readonly ToolchainEntry[], version: string) => {
    const entry = entries.find((e) => e.version === version);
    if (!entry) return void issues.push({ path, message: `${kind} ${version} has no pinned source (pinned: ${entries.map((e) => e.version).join(', ')})` });
    if (place.prefer && !entry.sources.some((x) => place.prefer!.includes(x.origin))) {
      issues.push({ path, message: `${kind} ${version} has no source from the origins this farm uses (${place.prefer.join(', ')}); its sources: ${entry.sources.map((x) => x.origin).join(', ')}` });
    }
  };
  fetchable('OTP', 'otp', catalog.otp, otp);
  fetchable('Elixir', 'elixir', catalog.elixir, elixir);
  for (const x of catalog.elixir.find((e) => e.version === elixir)?.sources ?? []) {
    if (x.precompiled && x.precompiled.otpMajor !== major(otp) && (!place.prefer || place.prefer.includes(x.origin))) {
      issues.push({ path: 'elixir', message: `Elixir ${elixir} from ${x.origin} is precompiled for OTP ${x.precompiled.otpMajor}, not OTP ${otp}` });
    }
  }
  const pair = elixirOtpProblem(elixir, otp);
  if (pair) issues.push({ path: 'elixir', message: pair });
  const ssl = SUITE_OPENSSL[suite];
  if (ssl.major >= 3 && compareVersions(otp, OTP_FOR_OPENSSL3) < 0) {
    issues.push({ path: 'otp', message: `${suite} ships OpenSSL ${ssl.openssl}; OTP's crypto builds against OpenSSL 3 from ${OTP_FOR_OPENSSL3}, not ${otp}` });
  }
  if (place.arch !== place.hostArch) {
    issues.push({ path: 'arch', message: `compiling OTP for ${place.arch} under emulation on a ${place.hostArch} worker takes hours: it needs a native ${place.arch} worker (Debian-packaged ${place.arch} images still build under emulation)` });
  }
  return issues;
}

// ---------------------------------------------------------------------------------------------
// The build, as data
// ---------------------------------------------------------------------------------------------

/** Bump when the toolchain build changes in a way that must invalidate cached OTP, Elixir and images. */
export const TOOLCHAIN_RECIPE_VERSION = 1;

/**
 * configure flags, as hexpm/bob builds OTP: crypto and ssl against the distro's OpenSSL (`--with-ssl`),
 * the JIT where configure supports it (its default), and without wx, ODBC, Java or the GUI tools.
 */
export const OTP_CONFIGURE = ['--prefix=/usr/local', '--with-ssl', '--without-javac', '--without-wx', '--without-odbc', '--without-debugger', '--without-observer', '--without-et'] as const;

/** Where the install lands inside the compile containers, and OTP's prefix there. */
export const TOOLCHAIN_PATHS = { out: '/out', otp: '/usr/local/lib/erlang' } as const;

/** Pure: an OTP source's compression (the catalog admits only tarballs for OTP). */
export function otpSourceFormat(source: Pick<ToolchainSource, 'path'>): 'xz' | 'gz' {
  const format = sourceFormat(source);
  if (format === 'deb') throw new XamalError('validation', `OTP source ${source.path}: expected a .tar.xz or .tar.gz`);
  return format;
}

/** Where a source of this format is mounted in a compile container (`/sources/source.tar.xz`, `/sources/source.deb`). */
export const sourceMount = (format: SourceFormat) => (format === 'deb' ? '/sources/source.deb' : `/sources/source.tar.${format}`);
const untar = (format: 'xz' | 'gz') => `tar -x${format === 'xz' ? 'J' : 'z'}f ${sourceMount(format)} --strip-components=1`;

/**
 * Runs in the toolchain base as root with no network (the source was fetched and checked by the
 * worker): unpack, configure, compile, install into /out, then drop what a release never needs
 * (man pages, object files, C sources, examples) and strip the binaries, as hexpm's images do.
 */
export const otpBuildScript = (format: 'xz' | 'gz') => [
  'set -eu',
  'mkdir -p /tmp/otp && cd /tmp/otp',
  untar(format),
  '[ -x ./configure ] || ./otp_build autoconf',
  // Debian's +dfsg repack drops common_test's minified jQuery (non-free by DFSG) while `make install`
  // copies it; only common_test's HTML logs use it (FACTS.md#toolchain-sources).
  'for f in lib/common_test/priv/jquery-latest.js lib/common_test/priv/jquery.tablesorter.min.js; do [ -e "$f" ] || : > "$f"; done',
  `./configure ${OTP_CONFIGURE.join(' ')}`,
  'make -j"$(nproc)"',
  `make DESTDIR=${TOOLCHAIN_PATHS.out} install`,
  `find ${TOOLCHAIN_PATHS.out}/usr/local/lib/erlang -depth -type d \\( -name man -o -name obj -o -name c_src -o -name emacs -o -name info -o -name examples \\) -exec rm -rf {} +`,
  `find ${TOOLCHAIN_PATHS.out}/usr/local/lib/erlang -type f \\( -perm -u+x -o -name "*.so" \\) -exec strip --strip-unneeded {} + 2>/dev/null || true`,
].join('\n');

/**
 * Runs in the toolchain base with the OTP install mounted at its prefix: compile Elixir and install
 * it into /out; or, for a precompiled Elixir in a Debian package, unpack it (`dpkg-deb -x`, no
 * maintainer script runs) into the layout `make install` gives (/usr/local/lib/elixir, bin links)
 * and check that it starts on this OTP and is the version pinned.
 */
export const elixirBuildScript = (format: SourceFormat, version: string) => {
  const env = `export PATH=${TOOLCHAIN_PATHS.otp}/bin:$PATH LANG=C.UTF-8 LC_ALL=C.UTF-8`;
  if (format !== 'deb') return ['set -eu', env, 'mkdir -p /tmp/elixir && cd /tmp/elixir', untar(format), 'make compile', `make PREFIX=/usr/local DESTDIR=${TOOLCHAIN_PATHS.out} install`].join('\n');
  const out = `${TOOLCHAIN_PATHS.out}/usr/local`;
  return [
    'set -eu',
    env,
    `dpkg-deb -x ${sourceMount(format)} /tmp/elixir`,
    'test -x /tmp/elixir/usr/lib/elixir/bin/elixir',
    `mkdir -p ${out}/lib ${out}/bin`,
    `cp -a /tmp/elixir/usr/lib/elixir ${out}/lib/elixir`,
    `for b in elixir elixirc iex mix; do ln -s ../lib/elixir/bin/$b ${out}/bin/$b; done`,
    `got="$(${out}/lib/elixir/bin/elixir -e 'IO.write(System.version())')"`,
    `[ "$got" = ${version} ] || { echo "the installed Elixir says $got, expected ${version}" >&2; exit 1; }`,
  ].join('\n');
};

const key = (parts: unknown) => createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);

export interface ToolchainKeys {
  /** OTP: its source, the base it compiles on (suite, arch, packages), the flags and the script. */
  otp: string;
  /** Elixir: its source and the OTP major it is compiled with (one build per major, as hexpm does). */
  elixir: string;
  /** The builder image's rootfs: the base, OTP and Elixir. */
  image: string;
}

/** Pure: the content keys of a toolchain build, from its inputs (the sources picked, and the scripts for their formats). */
export function toolchainKeys(baseKey: string, otp: PickedSource, elixir: PickedSource): ToolchainKeys {
  const otpKey = key({ v: TOOLCHAIN_RECIPE_VERSION, base: baseKey, sha256: otp.source.sha256, flags: OTP_CONFIGURE, script: otpBuildScript(otpSourceFormat(otp.source)) });
  const elixirKey = key({ v: TOOLCHAIN_RECIPE_VERSION, sha256: elixir.source.sha256, otpMajor: major(otp.version), script: elixirBuildScript(sourceFormat(elixir.source), elixir.version) });
  return { otp: otpKey, elixir: elixirKey, image: key({ base: baseKey, otp: otpKey, elixir: elixirKey }) };
}

/**
 * Pure: the sources a combination is built from (by the farm's preferred origins), or every reason it
 * cannot be built (as a ValidationError).
 */
export function toolchainEntries(catalog: ToolchainCatalog, suite: DebianSuite, otp: string, elixir: string, place: BuildPlace, prefer: readonly string[] = DEFAULT_PREFER): { otp: PickedSource; elixir: PickedSource } {
  const problems = toolchainProblems(catalog, suite, otp, elixir, place);
  if (problems.length) throw new ValidationError(problems, `OTP ${otp} with Elixir ${elixir} cannot be built on ${suite} ${place.arch}`);
  return { otp: pickSource('OTP', catalog.otp.find((e) => e.version === otp)!, prefer), elixir: pickSource('Elixir', catalog.elixir.find((e) => e.version === elixir)!, prefer) };
}

/** Pure: `XAMAL_TOOLCHAIN_PREFER` (`origin,origin`), the order origins are used in. */
export function parsePrefer(text: string | undefined): string[] {
  if (text === undefined || text.trim() === '') return [...DEFAULT_PREFER];
  const names = text.split(',').map((p) => p.trim());
  const bad = names.filter((n) => !ORIGIN.safeParse(n).success);
  if (bad.length) throw new ValidationError([{ path: 'XAMAL_TOOLCHAIN_PREFER', message: `expected origin names like github,debian, got ${bad.map((b) => JSON.stringify(b)).join(', ')}` }], 'invalid toolchain origins');
  return [...new Set(names)];
}

/**
 * Pure: `XAMAL_TOOLCHAIN_ORIGINS` (`name=url,name=url`) over the defaults (`debian` is the farm's
 * Debian mirror), naming the entry that is wrong.
 */
export function parseOrigins(text: string | undefined, defaults: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = { ...defaults };
  const issues: Issue[] = [];
  for (const [i, part] of (text ?? '').split(',').map((p) => p.trim()).filter(Boolean).entries()) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq);
    const url = part.slice(eq + 1);
    if (eq < 0 || !ORIGIN.safeParse(name).success) issues.push({ path: `XAMAL_TOOLCHAIN_ORIGINS[${i}]`, message: `expected name=url like debian=http://mirror.example/debian, got ${JSON.stringify(part)}` });
    else if (!/^https?:\/\/[^\s/]+/.test(url)) issues.push({ path: `XAMAL_TOOLCHAIN_ORIGINS[${i}]`, message: `expected an http(s) URL for ${name}, got ${JSON.stringify(url)}` });
    else out[name] = url;
  }
  if (issues.length) throw new ValidationError(issues, 'invalid toolchain origins');
  return out;
}
