import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveService } from '../../../api/services/resolve.ts';
import { artifactIndex } from '../../../store/artifact-index.ts';
import { buildDeps } from '../../../farm/build-deps.ts';
import { runBuild, type BuildDeps } from '../../../builder/apply.ts';
import { servicesConfig } from '../../../localservices/config.ts';
import { buildImage } from '../../../builder/images/build.ts';
import { imageBuildDeps } from '../../../builder/images/context.ts';
import { compareVersions, parseProbeOutput, parseTargetOrThrow, PROBE_SCRIPT, type Arch, type HostFingerprint, type Rejection } from '../../../core/index.ts';
import type { Manifest } from '../../../core/contracts/manifest.ts';
import { PROJECT_ROOT } from '../../../localservices/config.ts';
import type { DebianSuite } from '../../../images/distros.ts';
import { pinnedRef } from '../../../images/lock.ts';
import { predictedTuple } from '../../../images/preparable.ts';
import { readToolchainCatalog } from '../../../images/toolchains.ts';
import { imagePreparer } from '../../../builder/images/prepare.ts';
import { cryptoHelloRepo, helloRepo, testArtifactStore } from '../../../testkit/example-repo.ts';
import { services, testBuilderConfig } from '../../../testkit/integration.ts';
import { prepareTestToolchains, TEST_TOOLCHAINS } from '../../../testkit/toolchains.ts';
import { testSigner } from '../../../testkit/signing.ts';

/**
 * Issue #11: for every (artifact, host) pair of 2 apps × 4 build platforms × 4 run platforms, the
 * resolver's verdict (POST /v1/resolve's service, over the real manifests, for a fingerprint probed
 * from the real runtime container) must equal what really happens when the release boots there.
 *
 * "Really happens" = the release, unpacked and bind-mounted read-only into the runtime image of the
 * host's platform (network none), boots and answers `GET /up` (crypto_hello: with a correct SHA-256
 * and 16 random bytes from the crypto NIF). The aarch64 host is the arm64 runtime image run under this
 * machine's binfmt qemu, which reports itself as aarch64 (uname, ldconfig): that is the host the
 * resolver is asked about. A foreign-arch release can only ever start here through the lab's
 * emulation (aarch64 code via binfmt on the x86_64 hosts, x86_64 code natively on the CPU beneath the
 * emulated aarch64 host) — never on a real host of that arch — so a cross-arch boot that succeeded
 * would count as `runs-emulated`, not as running. In practice it does not get that far: each
 * host lacks the other arch's dynamic loader, and the error we record is the loader's.
 */

interface Platform {
  suite: DebianSuite;
  arch: Arch;
  /** OTP and Elixir compiled from source (issue 19) instead of the suite's packages: a build platform only. */
  toolchain?: { otp: string; elixir: string };
}

const PLATFORMS: Platform[] = [
  { suite: 'bullseye', arch: 'x86_64' },
  { suite: 'bookworm', arch: 'x86_64' },
  { suite: 'trixie', arch: 'x86_64' },
  { suite: 'bookworm', arch: 'aarch64' },
];

/**
 * Where the apps are built: every host's platform, and Debian 12 x86_64 with OTP 27.3.4.1 and Elixir
 * 1.18.3 compiled from source (a combination no Debian suite ships; prepared on demand into the
 * machine's lock the first time, its toolchain cached by its inputs, as toolchain-image.int does).
 */
const FROM_SOURCE: Platform = { suite: TEST_TOOLCHAINS[0]!.suite, arch: 'x86_64', toolchain: { otp: TEST_TOOLCHAINS[0]!.otp, elixir: TEST_TOOLCHAINS[0]!.elixir } };
const BUILD_PLATFORMS: Platform[] = [...PLATFORMS, FROM_SOURCE];

const SHA256_XAMAL = createHash('sha256').update('xamal').digest('hex');

interface App {
  app: string;
  repo: (dir: string) => Promise<{ url: string; commit: string }>;
  /** Whether the JSON `/up` answered shows the app really working (crypto_hello: the NIF answered). */
  healthy: (up: Record<string, unknown>) => boolean;
}

const APPS: App[] = [
  { app: 'hello', repo: (dir) => helloRepo(dir), healthy: (up) => up.status === 'ok' && up.app === 'hello' },
  {
    app: 'crypto_hello',
    repo: cryptoHelloRepo,
    healthy: (up) => up.status === 'ok' && up.app === 'crypto_hello' && up.sha256 === SHA256_XAMAL && up.random_bytes === 16,
  },
];

/** The dynamic loader (ELF interpreter) every dynamically linked binary of that arch names. */
const LOADER: Partial<Record<Arch, string>> = { x86_64: '/lib64/ld-linux-x86-64.so.2', aarch64: '/lib/ld-linux-aarch64.so.1' };

/**
 * Boots the release in the background and polls /up while the VM lives; prints the answer, or the
 * log and whether this host has the loader the release's binaries name.
 */
const bootScript = (release: string, loader: string) =>
  [
    `PORT=4000 RELEASE_DISTRIBUTION=none RELEASE_TMP=/tmp XAMAL_REVISION=matrix /rel/bin/${release} start > /tmp/out.log 2>&1 &`,
    'pid=$!',
    'for i in $(seq 1 900); do',
    '  if curl -fsS -o /tmp/up.json http://127.0.0.1:4000/up 2>/dev/null; then echo @@up; cat /tmp/up.json; exit 0; fi',
    '  kill -0 "$pid" 2>/dev/null || break',
    '  sleep 0.2',
    'done',
    `echo @@loader; if [ -e ${loader} ]; then echo present; else echo absent; fi`,
    'echo @@log; cat /tmp/out.log; exit 1',
  ].join('\n');

type ErrorKind = 'glibc' | 'soname' | 'arch' | 'other';

interface BootError {
  kind: ErrorKind;
  /** Short form for the table. */
  text: string;
  /** The log line it came from, verbatim. */
  line: string;
}

/** Why a boot failed: the line of its output that says so, and what kind of failure it is. */
function bootError(output: string): BootError {
  const lineOf = (m: RegExpExecArray) => {
    const start = output.lastIndexOf('\n', m.index) + 1;
    const end = output.indexOf('\n', m.index);
    return output.slice(start, end < 0 ? undefined : end).trim();
  };
  const glibc = /version .(GLIBC_[\d.]+). not found/.exec(output);
  if (glibc) return { kind: 'glibc', text: `version '${glibc[1]}' not found`, line: lineOf(glibc) };
  const so = /(lib[\w.+-]+\.so[\w.]*): cannot open shared object file/.exec(output);
  if (so) return { kind: 'soname', text: `${so[1]}: cannot open shared object file`, line: lineOf(so) };
  const exec = /exec format error/i.exec(output);
  if (exec) return { kind: 'arch', text: 'exec format error', line: lineOf(exec) };
  // qemu-user (binfmt) runs a foreign binary but must load its ELF interpreter from this host.
  const qemu = /([\w.-]*binfmt[\w.-]*|qemu[\w.-]*): Could not open '(\/[^']*ld-linux[^']*)'/.exec(output);
  if (qemu) return { kind: 'arch', text: `${qemu[1]}: Could not open '${qemu[2]}'`, line: lineOf(qemu) };
  // The kernel answers ENOENT for a binary whose interpreter is missing; the shell says "not found".
  const enoent = /([\w.-]+\/bin\/[\w.-]+): (?:not found|No such file or directory)/.exec(output);
  if (enoent && /@@loader\s+absent/.test(output)) return { kind: 'arch', text: `${enoent[1]}: not found (no ELF interpreter for its arch)`, line: lineOf(enoent) };
  const last = /@@log\s+([\s\S]*)$/.exec(output)?.[1]?.trim().split('\n').slice(-1)[0] ?? 'no output';
  return { kind: 'other', text: last.slice(0, 200), line: last };
}

/** Which resolver reason explains which real failure. */
const EXPLAINS: Record<Exclude<ErrorKind, 'other'>, Rejection['code']> = { glibc: 'libc-floor', soname: 'soname', arch: 'arch' };

interface Host {
  platform: Platform;
  label: string;
  image: string;
  fingerprint: HostFingerprint;
}

interface Artifact {
  app: App;
  platform: Platform;
  commit: string;
  manifest: Manifest;
  dir: string;
}

interface Verdict {
  runs: boolean;
  picked: boolean;
  reasons: Rejection[];
}

interface Reality {
  outcome: 'runs' | 'fails' | 'runs-emulated';
  error?: BootError;
  up?: Record<string, unknown>;
  ms: number;
}

interface Cell {
  artifact: Artifact;
  host: Host;
  verdict: Verdict;
  reality: Reality;
}

const agrees = (c: Cell) => c.verdict.runs === (c.reality.outcome === 'runs');

/** Runs at most `n` of the functions given to it at once, in the order given. */
function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (active < n) active++;
    else await new Promise<void>((r) => waiting.push(r)); // the finishing run hands its slot over
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

const platformLabel = (f: { distro: string; distroVersion: string; arch: string }) => `${f.distro}${f.distroVersion} ${f.arch}`;

function describeVerdict(v: Verdict): string {
  if (v.runs) return v.picked ? 'runs (picked)' : 'runs';
  return `refused (${v.reasons.map((r) => `${r.code}: ${r.message}`).join('; ')})`;
}

function describeReality(r: Reality): string {
  if (r.outcome === 'runs') return 'boots, /up ok';
  if (r.outcome === 'runs-emulated') return 'boots, but only through this machine\'s binfmt emulation';
  return `fails: \`${r.error!.text}\``;
}

/** One table cell: the verdict, and what really happened when the two differ from "it runs". */
function describeCell(c: Cell): string {
  const mark = agrees(c) ? '' : '**MISMATCH** resolver: ';
  if (c.verdict.runs && c.reality.outcome === 'runs') return c.verdict.picked ? '**runs** (picked)' : 'runs';
  return `${mark}${describeVerdict(c.verdict)} — ${describeReality(c.reality)}`;
}

function markdown(hosts: Host[], artifacts: Artifact[], cells: Cell[]): string {
  const lines = [`| artifact ↓ · host → | ${hosts.map((h) => h.label).join(' | ')} |`, `|---|${hosts.map(() => '---|').join('')}`];
  for (const a of artifacts) {
    const m = a.manifest;
    const crypto = m.sonames.filter((s) => s.startsWith('libcrypto'));
    const fromSource = a.platform.toolchain ? ` with OTP ${a.platform.toolchain.otp} + Elixir ${a.platform.toolchain.elixir} from source` : '';
    const what = `\`${a.app.app}\` built on ${platformLabel(parseTargetOrThrow(m.tuple))}${fromSource} (needs glibc ${m.glibcNeeded ?? '?'}${crypto.length ? `, ${crypto.join(', ')}` : ''})`;
    lines.push(`| ${what} | ${hosts.map((h) => describeCell(cells.find((x) => x.artifact === a && x.host === h)!)).join(' | ')} |`);
  }
  return lines.join('\n');
}

describe('target compatibility: the resolver’s verdict equals what really happens', () => {
  let tmp: string;
  let deps: BuildDeps;
  const hosts: Host[] = [];
  const artifacts: Artifact[] = [];
  const cells: Cell[] = [];
  const timings: Record<string, number> = {};
  const cfg = () => testBuilderConfig();

  beforeAll(async () => {
    const t0 = Date.now();
    tmp = await mkdtemp(join(tmpdir(), 'xamal-matrix-'));
    // The from-source builder: the suite's preparation (waited for), not a second OTP compile.
    await prepareTestToolchains((l) => process.stderr.write(`[toolchains] ${l}\n`));
    const c = cfg();
    // Kept across runs: fixed commits make a warm run find its artifacts built (testkit/example-repo.ts).
    const store = testArtifactStore('target-matrix');
    deps = buildDeps({
      dockerSocket: services().dockerSocket,
      store,
      lockPaths: [c.localLockPath],
      // Shared across runs, as a farm's cache is (keyed by image digest and lockfile).
      cacheDir: join(servicesConfig().cacheDir, 'test-builds'),
      workRoot: join(tmp, 'work'),
      signer: testSigner(),
      prepareImage: imagePreparer(imageBuildDeps(c, () => {}), async () => ({ images: [{ source: 'toolchain', ...FROM_SOURCE.toolchain!, suite: FROM_SOURCE.suite, arches: [FROM_SOURCE.arch] }] }), readToolchainCatalog()),
    });
    const images = imageBuildDeps(c, (l) => process.stderr.write(`[images] ${l}\n`));

    // Hosts: each runtime image, fingerprinted by running the real probe script inside it.
    for (const p of PLATFORMS) {
      const runtime = await buildImage(images, { suite: p.suite, arch: p.arch, flavour: 'runtime' });
      const image = pinnedRef(runtime.entry, p.arch);
      const probe = await deps.docker.run({ image, cmd: ['sh', '-c', PROBE_SCRIPT], networkMode: 'none', timeoutMs: 60_000 });
      if (probe.code !== 0) throw new Error(`probe of ${image} exited ${probe.code}: ${probe.stderr}`);
      const fingerprint = parseProbeOutput(probe.stdout);
      hosts.push({ platform: p, label: platformLabel(fingerprint), image, fingerprint });
    }
    timings.probe = Date.now() - t0;

    // Reality: boot an artifact on one host, at most two boots at once.
    const boots = limiter(2);
    const boot = (a: Artifact, h: Host) =>
      boots(async (): Promise<Reality> => {
        const c0 = Date.now();
        const res = await deps.docker.run({
          image: h.image,
          cmd: ['sh', '-c', bootScript(a.manifest.release, LOADER[parseTargetOrThrow(a.manifest.tuple).arch]!)],
          networkMode: 'none',
          binds: [`${a.dir}:/rel:ro`],
          timeoutMs: 300_000,
        });
        const ms = Date.now() - c0;
        const upText = res.code === 0 ? res.stdout.slice(res.stdout.indexOf('@@up') + 4).trim() : undefined;
        const up = upText ? (JSON.parse(upText) as Record<string, unknown>) : undefined;
        if (up && a.app.healthy(up)) {
          const foreign = parseTargetOrThrow(a.manifest.tuple).arch !== h.fingerprint.arch;
          return { outcome: foreign ? 'runs-emulated' : 'runs', up, ms };
        }
        const error: BootError = up
          ? { kind: 'other', text: `/up answered ${upText}`, line: upText! }
          : res.timedOut
            ? { kind: 'other', text: 'timed out', line: '' }
            : bootError(`${res.stdout}\n${res.stderr}`);
        return { outcome: 'fails', error, ms };
      });

    // Artifacts: each app built once per platform, native builds and emulated ones in two lanes;
    // an artifact's boots start as soon as it is built.
    const sources = await Promise.all(APPS.map(async (a) => ({ app: a, ...(await a.repo(join(tmp, `repo-${a.app}`))) })));
    const builderTuple = new Map<Platform, string>();
    for (const p of PLATFORMS) builderTuple.set(p, (await buildImage(images, { suite: p.suite, arch: p.arch, flavour: 'builder' })).entry.tuple!);
    builderTuple.set(FROM_SOURCE, predictedTuple(FROM_SOURCE.suite, FROM_SOURCE.arch, FROM_SOURCE.toolchain!.otp, FROM_SOURCE.toolchain!.elixir));
    const realities = new Map<string, Promise<Reality>>();
    const cellKey = (a: Artifact, h: Host) => `${a.app.app} ${a.manifest.tuple} ${h.label}`;
    const build = async (p: Platform, s: (typeof sources)[number]) => {
      const b0 = Date.now();
      const out = await runBuild(
        deps,
        { app: s.app.app, source: { kind: 'git', url: s.url, commit: s.commit }, target: parseTargetOrThrow(builderTuple.get(p)!), mixEnv: 'prod' },
        { phase: () => {}, log: () => {} },
      );
      const name = `${s.app.app}-${p.suite}-${p.arch}${p.toolchain ? `-otp${p.toolchain.otp}` : ''}`;
      timings[`build ${name}`] = Date.now() - b0;
      const dir = join(tmp, 'rel', name);
      await mkdir(dir, { recursive: true });
      await writeFile(`${dir}.tar.gz`, (await store.get(out.manifest.tarball.key))!);
      execFileSync('tar', ['-xzf', `${dir}.tar.gz`, '-C', dir]);
      const artifact: Artifact = { app: s.app, platform: p, commit: s.commit, manifest: out.manifest, dir };
      artifacts.push(artifact);
      for (const h of hosts) {
        const reality = boot(artifact, h);
        reality.catch(() => {}); // awaited below; a failed build must not leave it unhandled
        realities.set(cellKey(artifact, h), reality);
      }
    };
    const lane = async (ps: Platform[]) => {
      for (const p of ps) for (const s of sources) await build(p, s);
    };
    const b0 = Date.now();
    await Promise.all([lane(BUILD_PLATFORMS.filter((p) => p.arch === deps.hostArch)), lane(BUILD_PLATFORMS.filter((p) => p.arch !== deps.hostArch))]);
    timings.builds = Date.now() - b0;
    artifacts.sort((x, y) => APPS.indexOf(x.app) - APPS.indexOf(y.app) || BUILD_PLATFORMS.indexOf(x.platform) - BUILD_PLATFORMS.indexOf(y.platform));

    // Verdicts: the resolve service over the stored manifests, once per (app, host).
    const resolver = resolveService(artifactIndex(store));
    const verdicts = new Map<string, Verdict>();
    for (const s of sources) {
      for (const h of hosts) {
        const answer = await resolver.resolve({ app: s.app.app, version: s.commit, host: h.fingerprint });
        verdicts.set(`${s.app.app} ${answer.artifact.tuple} ${h.label}`, { runs: true, picked: true, reasons: [] });
        for (const o of answer.others) verdicts.set(`${s.app.app} ${o.tuple} ${h.label}`, { runs: o.runs, picked: false, reasons: o.reasons });
      }
    }

    for (const a of artifacts) {
      for (const h of hosts) {
        const verdict = verdicts.get(cellKey(a, h));
        if (!verdict) throw new Error(`the resolver said nothing about ${a.manifest.tuple} on ${h.label}`);
        cells.push({ artifact: a, host: h, verdict, reality: await realities.get(cellKey(a, h))! });
      }
    }
    timings.total = Date.now() - t0;

    const table = markdown(hosts, artifacts, cells);
    const report = [
      table,
      '',
      'hosts (probed): ' + hosts.map((h) => `${h.label}: glibc ${h.fingerprint.libcVersion}, ${h.fingerprint.libraries.filter((l) => l.startsWith('libcrypto')).join(' ') || 'no libcrypto'}`).join('; '),
      '',
      'cells (boot ms, real error line verbatim):',
      ...cells.map((c) => `- ${c.artifact.app.app} ${c.artifact.manifest.tuple} on ${c.host.label}: ${c.reality.outcome} in ${c.reality.ms} ms${c.reality.error ? `: ${c.reality.error.line}` : ''}`),
      '',
      'timings (ms): ' + JSON.stringify(timings),
    ].join('\n');
    console.log(`\n${report}\n`);
    await mkdir(join(PROJECT_ROOT, '.state', 'reports'), { recursive: true });
    await writeFile(join(PROJECT_ROOT, '.state', 'reports', 'target-matrix.md'), `${report}\n`);
  }, 3_000_000);

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('fingerprints each runtime container by probing it: its arch, Debian release and libcrypto', () => {
    const seen = hosts.map((h) => ({
      arch: h.fingerprint.arch,
      distro: `${h.fingerprint.distro}${h.fingerprint.distroVersion}`,
      libcrypto: h.fingerprint.libraries.filter((l) => /^libcrypto\.so\./.test(l)),
    }));
    expect(seen).toEqual([
      { arch: 'x86_64', distro: 'debian11', libcrypto: ['libcrypto.so.1.1'] },
      { arch: 'x86_64', distro: 'debian12', libcrypto: ['libcrypto.so.3'] },
      { arch: 'x86_64', distro: 'debian13', libcrypto: ['libcrypto.so.3'] },
      { arch: 'aarch64', distro: 'debian12', libcrypto: ['libcrypto.so.3'] },
    ]);
  });

  it('builds both apps for the four platforms and OTP 27 from source on Debian 12, with the glibc floors FACTS.md measured, and only crypto_hello needs the host libcrypto', () => {
    expect(artifacts).toHaveLength(APPS.length * BUILD_PLATFORMS.length);
    expect(artifacts.filter((a) => a.platform === FROM_SOURCE).map((a) => a.manifest.tuple)).toEqual(APPS.map(() => 'linux-x86_64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3'));
    // The highest GLIBC symbol each suite's ERTS needs (this replaced build-targets.int.test.ts).
    const FLOOR: Record<DebianSuite, string> = { bullseye: '2.29', bookworm: '2.34', trixie: '2.38' };
    for (const a of artifacts) expect(a.manifest.glibcNeeded, `${a.app.app} ${a.manifest.tuple}`).toBe(FLOOR[a.platform.suite]);
    for (const a of artifacts) {
      const crypto = a.manifest.sonames.filter((s) => s.startsWith('libcrypto'));
      expect(crypto, `${a.app.app} ${a.manifest.tuple}`).toEqual(a.app.app === 'crypto_hello' ? [a.platform.suite === 'bullseye' ? 'libcrypto.so.1.1' : 'libcrypto.so.3'] : []);
    }
  });

  it('the resolver’s verdict equals the real outcome in every (artifact, host) cell', () => {
    expect(cells).toHaveLength(APPS.length * BUILD_PLATFORMS.length * PLATFORMS.length);
    const mismatches = cells
      .filter((c) => !agrees(c))
      .map((c) => `${c.artifact.app.app} ${c.artifact.manifest.tuple} on ${c.host.label}: resolver ${describeVerdict(c.verdict)}; real: ${describeReality(c.reality)}`);
    expect(mismatches).toEqual([]);
  });

  it('every real failure is one the resolver named: no loader for the arch → arch, a missing GLIBC symbol → libc-floor, a missing library → soname', () => {
    const unexplained = cells
      .filter((c) => c.reality.outcome !== 'runs' && !c.verdict.runs)
      .filter((c) => {
        const e = c.reality.error;
        const kind = e?.kind ?? 'other';
        if (!e || kind === 'other') return true;
        const reason = c.verdict.reasons.find((r) => r.code === EXPLAINS[kind]);
        if (!reason) return true;
        if (kind === 'soname') return !reason.message.includes(e.text.split(':')[0]!);
        if (kind === 'glibc') {
          // The symbol the loader missed lies above the host's glibc and at most at the artifact's floor.
          const missed = /GLIBC_([\d.]+)/.exec(e.text)![1]!;
          const floor = c.artifact.manifest.glibcNeeded!;
          return !(compareVersions(missed, c.host.fingerprint.libcVersion) > 0 && compareVersions(missed, floor) <= 0);
        }
        return false;
      })
      .map((c) => `${c.artifact.app.app} ${c.artifact.manifest.tuple} on ${c.host.label}: real ${describeReality(c.reality)}; resolver ${describeVerdict(c.verdict)}`);
    expect(unexplained).toEqual([]);
  });

  it('the artifact the resolver picks for each host is one built on that host’s own Debian release and arch, and it boots there', () => {
    for (const app of APPS) {
      for (const h of hosts) {
        const picked = cells.filter((c) => c.artifact.app === app && c.host === h && c.verdict.picked);
        expect(picked.map((c) => [c.artifact.platform.suite, c.artifact.platform.arch]), `${app.app} on ${h.label}`).toEqual([[h.platform.suite, h.platform.arch]]);
        expect(picked[0]!.reality.outcome).toBe('runs');
      }
    }
  });
});
