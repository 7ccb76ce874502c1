import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../core/index.ts';
import { recipePlan, toolchainImagePlan } from '../../../images/recipes/debian.ts';
import {
  elixirBuildScript,
  elixirOtpProblem,
  otpBuildScript,
  OTP_CONFIGURE,
  parseOrigins,
  parsePrefer,
  parseToolchainCatalog,
  pickSource,
  readToolchainCatalog,
  sourceUrl,
  toolchainEntries,
  toolchainKeys,
  toolchainProblems,
} from '../../../images/toolchains.ts';

const catalog = readToolchainCatalog();
const X86 = { arch: 'x86_64', hostArch: 'x86_64' } as const;
/** A version with one source (a picked one, as toolchainKeys takes). */
const entry = (version: string, sha: string) => ({ version, source: { origin: 'debian', path: `pool/x/${version}.tar.xz`, sha256: sha.repeat(64), bytes: 10 } });
const catalogEntry = (version: string, sha: string) => ({ version, sources: [entry(version, sha).source] });

describe('the committed toolchain catalog', () => {
  it('pins the OTP and Elixir sources Debian carries, and upstream’s releases where their sha256 is published, each by a distinct sha256 and a relative path', () => {
    expect(catalog.otp.map((e) => e.version)).toEqual(['23.2.6', '25.2.3', '27.3.4.1', '29.1.1']);
    expect(catalog.elixir.map((e) => e.version)).toEqual(['1.10.3', '1.14.0', '1.18.3', '1.20.4']);
    const all = [...catalog.otp, ...catalog.elixir];
    expect(all.map((e) => e.sources.map((x) => x.origin).join(','))).toEqual(['github,debian', 'github,debian', 'github,debian', 'debian', 'github,debian', 'github,debian', 'github,debian', 'debian']);
    const shas = all.flatMap((e) => e.sources.map((x) => x.sha256));
    expect(new Set(shas).size).toBe(14);
    const otp27 = catalog.otp[2]!;
    expect(sourceUrl(pickSource('OTP', otp27, ['debian']).source, { debian: 'http://deb.debian.org/debian/' })).toBe('http://deb.debian.org/debian/pool/main/e/erlang/erlang_27.3.4.1+dfsg.orig.tar.xz');
    expect(sourceUrl(pickSource('OTP', otp27, ['github', 'debian']).source, { github: 'https://github.com' })).toBe('https://github.com/erlang/otp/releases/download/OTP-27.3.4.1/otp_src_27.3.4.1.tar.gz');
  });

  it('refuses a catalog with a version twice, a path leaving its origin, a bad sha256, no source or two from one origin, naming each field', () => {
    const bad = {
      otp: [catalogEntry('27.3.4.1', 'a'), catalogEntry('27.3.4.1', 'b'), { version: '26.0', sources: [] }],
      elixir: [
        { version: '1.18.3', sources: [{ origin: 'debian', path: '../../etc/passwd', sha256: 'xyz', bytes: 1 }] },
        { version: '1.14.0', sources: [entry('1.14.0', 'c').source, entry('1.14.0', 'd').source] },
      ],
    };
    const err = (() => {
      try {
        parseToolchainCatalog(bad);
      } catch (e) {
        return e as ValidationError;
      }
    })();
    expect(err).toBeInstanceOf(ValidationError);
    expect(err!.issues.map((i) => i.path).sort()).toEqual(['elixir/0/sources/0/path', 'elixir/0/sources/0/sha256', 'elixir/1/sources', 'otp/1/version', 'otp/2/sources']);
  });
});

describe('which source a farm fetches (XAMAL_TOOLCHAIN_PREFER)', () => {
  it('takes the first preferred origin the version has, upstream by default, and never silently another', () => {
    const otp27 = catalog.otp[2]!;
    expect(parsePrefer(undefined)).toEqual(['github', 'debian']);
    expect(pickSource('OTP', otp27, parsePrefer(undefined)).source.origin).toBe('github');
    expect(pickSource('OTP', otp27, parsePrefer('debian')).source.origin).toBe('debian');
    expect(pickSource('OTP', catalog.otp[3]!, parsePrefer(undefined)).source.origin).toBe('debian'); // 29.1.1: Debian's only
    expect(() => pickSource('Elixir', catalog.elixir[3]!, parsePrefer('github'))).toThrow('Elixir 1.20.4 has no source from the origins this farm uses (github); its sources: debian; set XAMAL_TOOLCHAIN_PREFER');
    expect(() => parsePrefer('debian, BAD')).toThrow(ValidationError);
  });

  it('says before anything is built that a version has no source from the farm’s origins', () => {
    expect(toolchainProblems(catalog, 'bookworm', '29.1.1', '1.20.4', { ...X86, prefer: ['github'] }).map((i) => i.message)).toEqual([
      'OTP 29.1.1 has no source from the origins this farm uses (github); its sources: debian',
      'Elixir 1.20.4 has no source from the origins this farm uses (github); its sources: debian',
    ]);
    expect(toolchainProblems(catalog, 'bookworm', '27.3.4.1', '1.18.3', { ...X86, prefer: ['github'] })).toEqual([]);
    expect(toolchainProblems(catalog, 'bookworm', '29.1.1', '1.20.4', { ...X86, prefer: ['debian'] })).toEqual([]);
  });

  it('gives Debian’s .tar.xz the script it always had and upstream’s .tar.gz its own, so the keys follow the file', () => {
    expect(otpBuildScript('xz')).toContain('tar -xJf /sources/source.tar.xz --strip-components=1');
    expect(otpBuildScript('gz')).toContain('tar -xzf /sources/source.tar.gz --strip-components=1');
    expect(elixirBuildScript('gz', '1.18.3')).toContain('tar -xzf /sources/source.tar.gz --strip-components=1');
    const debian = toolchainEntries(catalog, 'bookworm', '27.3.4.1', '1.18.3', X86, ['debian']);
    const upstream = toolchainEntries(catalog, 'bookworm', '27.3.4.1', '1.18.3', X86, ['github']);
    expect(toolchainKeys('base', debian.otp, debian.elixir).otp).not.toBe(toolchainKeys('base', upstream.otp, upstream.elixir).otp);
  });
});

describe('a precompiled Elixir (Elixir 1.20.4 here: Debian\'s binary package, built for OTP 29)', () => {
  const deb = { origin: 'debian', path: 'pool/main/e/elixir-lang/elixir_1.20.4+dfsg-1_amd64.deb', sha256: 'f'.repeat(64), bytes: 10, precompiled: { otpMajor: 29 } };

  it('is installed from its package, checked to start on the paired OTP and to be the pinned version, with no download', () => {
    const script = elixirBuildScript('deb', '1.20.4');
    expect(script).toContain('dpkg-deb -x /sources/source.deb /tmp/elixir');
    expect(script).toContain('cp -a /tmp/elixir/usr/lib/elixir /out/usr/local/lib/elixir');
    expect(script).toContain('[ "$got" = 1.20.4 ]');
    expect(script).not.toContain('make');
    expect(catalog.elixir.find((e) => e.version === '1.20.4')!.sources[0]).toMatchObject({ precompiled: { otpMajor: 29 } });
  });

  it('pairs only with the OTP major it was compiled for, saying so before anything is built', () => {
    const withDeb = { ...catalog, elixir: [...catalog.elixir.filter((e) => e.version !== '1.20.4'), { version: '1.20.4', sources: [deb] }] };
    expect(toolchainProblems(withDeb, 'bookworm', '29.1.1', '1.20.4', X86)).toEqual([]);
    expect(toolchainProblems(withDeb, 'bookworm', '27.3.4.1', '1.20.4', X86).map((i) => i.message)).toEqual(['Elixir 1.20.4 from debian is precompiled for OTP 29, not OTP 27.3.4.1']);
  });

  it('refuses a .deb without `precompiled`, a tarball with it, and a precompiled OTP, naming the field', () => {
    const issues = (json: unknown) => {
      try {
        parseToolchainCatalog(json);
        return [];
      } catch (e) {
        return (e as ValidationError).issues.map((i) => i.path).sort();
      }
    };
    const { precompiled: _, ...bare } = deb;
    expect(issues({ otp: [], elixir: [{ version: '1.20.4', sources: [bare] }] })).toEqual(['elixir/0/sources/0/precompiled']);
    expect(issues({ otp: [], elixir: [{ version: '1.18.3', sources: [{ ...entry('1.18.3', 'c').source, precompiled: { otpMajor: 27 } }] }] })).toEqual(['elixir/0/sources/0/precompiled']);
    expect(issues({ otp: [{ version: '29.1.1', sources: [{ ...deb, path: 'x/otp.deb' }] }], elixir: [] })).toEqual(['otp/0/sources/0/precompiled']);
  });
});

describe('toolchain origins (XAMAL_TOOLCHAIN_ORIGINS)', () => {
  it('keeps the defaults, overrides and adds names, and names a bad entry by its index', () => {
    expect(parseOrigins(undefined, { debian: 'http://m/debian' })).toEqual({ debian: 'http://m/debian' });
    expect(parseOrigins('debian=http://127.0.0.1:8080/mirror, github=https://github.com', { debian: 'http://m/debian' })).toEqual({
      debian: 'http://127.0.0.1:8080/mirror',
      github: 'https://github.com',
    });
    expect(() => parseOrigins('debian=ftp://x,=http://y', {})).toThrow(ValidationError);
    try {
      parseOrigins('ok=http://a,nonsense', {});
    } catch (e) {
      expect((e as ValidationError).issues).toEqual([{ path: 'XAMAL_TOOLCHAIN_ORIGINS[1]', message: 'expected name=url like debian=http://mirror.example/debian, got "nonsense"' }]);
    }
  });

  it('says which setting to change for a source whose origin has no base URL', () => {
    expect(() => sourceUrl({ ...catalog.otp[0]!.sources[0]!, origin: 'github' }, { debian: 'http://m' })).toThrow(/no base URL for origin "github"; set XAMAL_TOOLCHAIN_ORIGINS \(known: debian\)/);
  });
});

describe('compatibility, checked before anything is built', () => {
  it('knows which OTP each Elixir runs on, patch releases that widen it included', () => {
    expect(elixirOtpProblem('1.14.0', '25.2.3')).toBeUndefined();
    expect(elixirOtpProblem('1.14.0', '26.0')).toBe('Elixir 1.14.0 runs on OTP 23–25, not OTP 26.0');
    expect(elixirOtpProblem('1.14.5', '26.0')).toBeUndefined();
    expect(elixirOtpProblem('1.18.3', '27.3.4.1')).toBeUndefined();
    expect(elixirOtpProblem('1.18.3', '29.1.1')).toBe('Elixir 1.18.3 runs on OTP 25–27, not OTP 29.1.1');
    expect(elixirOtpProblem('1.10.3', '23.2.6')).toBeUndefined();
    expect(elixirOtpProblem('1.20.4', '29.1.1')).toBeUndefined();
    expect(elixirOtpProblem('1.9.4', '22.3')).toMatch(/^Elixir 1.9.4 is not in the compatibility table/);
  });

  it('builds OTP 27 + Elixir 1.18 on bookworm and OTP 25 + Elixir 1.14 on trixie; refuses OTP 23 on OpenSSL 3, unpinned versions and a foreign arch, with every reason', () => {
    expect(toolchainProblems(catalog, 'bookworm', '27.3.4.1', '1.18.3', X86)).toEqual([]);
    expect(toolchainProblems(catalog, 'trixie', '25.2.3', '1.14.0', X86)).toEqual([]);
    expect(toolchainProblems(catalog, 'bullseye', '23.2.6', '1.10.3', X86)).toEqual([]);
    expect(toolchainProblems(catalog, 'bookworm', '23.2.6', '1.14.0', X86).map((i) => i.message)).toEqual([
      "bookworm ships OpenSSL 3.0; OTP's crypto builds against OpenSSL 3 from 24.2, not 23.2.6",
    ]);
    expect(toolchainProblems(catalog, 'bookworm', '26.2.5', '1.18.3', { arch: 'aarch64', hostArch: 'x86_64' }).map((i) => i.path)).toEqual(['otp', 'arch']);
    expect(() => toolchainEntries(catalog, 'bookworm', '27.3.4.1', '1.14.0', X86)).toThrow(/cannot be built on bookworm x86_64/);
    expect(toolchainEntries(catalog, 'bookworm', '27.3.4.1', '1.18.3', X86).otp.version).toBe('27.3.4.1');
  });
});

describe('toolchain build plan', () => {
  const base = recipePlan({ suite: 'bookworm', arch: 'x86_64', flavour: 'toolchain-base', mirror: 'http://m', hostArch: 'x86_64' });

  it('keys OTP by its source and base, Elixir by its source and OTP major, the image by both', () => {
    const k = toolchainKeys(base.cacheKey, entry('27.3.4.1', 'a'), entry('1.18.3', 'c'));
    expect(toolchainKeys(base.cacheKey, entry('27.3.4.1', 'a'), entry('1.18.3', 'c'))).toEqual(k);
    const patch = toolchainKeys(base.cacheKey, entry('27.3.4.2', 'b'), entry('1.18.3', 'c'));
    expect(patch.otp).not.toBe(k.otp);
    expect(patch.elixir).toBe(k.elixir); // one Elixir build per OTP major
    expect(patch.image).not.toBe(k.image);
    expect(toolchainKeys(base.cacheKey, entry('28.0', 'b'), entry('1.18.3', 'c')).elixir).not.toBe(k.elixir);
    const trixie = recipePlan({ suite: 'trixie', arch: 'x86_64', flavour: 'toolchain-base', mirror: 'http://m', hostArch: 'x86_64' });
    expect(toolchainKeys(trixie.cacheKey, entry('27.3.4.1', 'a'), entry('1.18.3', 'c')).otp).not.toBe(k.otp);
  });

  it('compiles from the pinned file with no download, with bob-style flags, and names the image by its versions', () => {
    for (const script of [otpBuildScript('xz'), elixirBuildScript('xz', '1.18.3'), otpBuildScript('gz'), elixirBuildScript('gz', '1.18.3'), elixirBuildScript('deb', '1.20.4')]) expect(script).not.toMatch(/\b(curl|wget|git clone|https?:)/);
    expect(otpBuildScript('gz')).toContain(`./configure ${OTP_CONFIGURE.join(' ')}`);
    expect(OTP_CONFIGURE).toEqual(expect.arrayContaining(['--with-ssl', '--without-wx', '--without-odbc', '--without-javac']));
    expect(base.packages).toEqual(expect.arrayContaining(['gcc', 'g++', 'make', 'libssl-dev', 'libncurses-dev', 'git']));
    const plan = toolchainImagePlan(base, { otp: '27.3.4.1', elixir: '1.18.3' }, 'abc123');
    expect(plan.input.flavour).toBe('builder');
    expect(plan.cacheFile).toBe('bookworm-x86_64-builder-otp27.3.4.1-elixir1.18.3-abc123.tar.zst');
    expect(plan.stagingTag).toBe('xamal/builder:staging-bookworm-x86_64-otp27.3.4.1-elixir1.18.3');
  });
});
