import { builderConfig } from '../../builder/config.ts';
import { dockerEngine } from '../../builder/docker.ts';
import { buildImage } from '../../builder/images/build.ts';
import { hostArch as thisArch, imageBuildDeps } from '../../builder/images/context.ts';
import { imageRows } from '../../builder/images/list.ts';
import { pinHexpm, pinLocal, verifyLocks } from '../../builder/images/pin.ts';
import { registryReader } from '../../builder/registry.ts';
import { normalizeArch, type Arch } from '../../core/index.ts';
import { servicesUp } from '../../localservices/index.ts';
import { COMMITTED_LOCK_PATH, readCatalog } from '../../images/catalog.ts';
import { DEBIAN_SUITES, isDebianSuite } from '../../images/distros.ts';
import { readLock, splitRef } from '../../images/lock.ts';
import { pickSource, readToolchainCatalog, type ToolchainCatalog } from '../../images/toolchains.ts';
import { mirrorSources } from '../../builder/images/toolchain.ts';
import { resolve } from 'node:path';
import { FLAVOURS, type Flavour } from '../../images/recipes/debian.ts';
import { actionError, flagCommand, usageError } from '../args.ts';
import type { FlagTable } from '../help.ts';
import type { Io } from '../io.ts';

const USAGE = [
  'xamal farm images build <bullseye|bookworm|trixie|all> [--arch x86_64|aarch64] [--flavour builder|runtime|all] [--otp <version> --elixir <version>] [--force] [--no-cache] [--json]',
  '       xamal farm images list [--json]',
  '       xamal farm images pin [--hexpm] [--local]',
  '       xamal farm images verify [--json]',
  '       xamal farm images mirror-sources <dir> [--otp <version>]… [--elixir <version>]…   (default: every pinned version)',
].join('\n');

const FLAGS = {
  arch: { type: 'string', valueName: 'ARCH', description: 'build: the platform, x86_64 or aarch64 (another than this machine\'s runs under emulation)', defaultText: "this machine's" },
  flavour: { type: 'string', valueName: 'FLAVOUR', description: 'build: builder (compiles releases), runtime (runs them) or all', defaultText: 'builder' },
  otp: { type: 'string', multiple: true, valueName: 'VERSION', description: 'build: a builder with this OTP compiled from source (with --elixir); mirror-sources: this pinned OTP' },
  elixir: { type: 'string', multiple: true, valueName: 'VERSION', description: 'build: a builder with this Elixir compiled from source (with --otp); mirror-sources: this pinned Elixir' },
  force: { type: 'boolean', description: 'build: build the image again even when the lock has a current one (the rootfs cache is still used)' },
  'no-cache': { type: 'boolean', description: 'build: also ignore the cached rootfs (debootstrap again)' },
  json: { type: 'boolean', description: 'Print the result as JSON' },
  hexpm: { type: 'boolean', description: 'pin: only the hexpm tags of the catalog (the committed lock)' },
  local: { type: 'boolean', description: 'pin: only the images built here (the local lock)' },
} as const satisfies FlagTable;

async function context(io: Io) {
  const cfg = builderConfig();
  // On embedded defaults the engine and registry are ours to start (idempotent, fast when up).
  await servicesUp(cfg.services, ['dockerd', 'registry'], (l) => io.err(l));
  const say = (l: string) => io.err(l);
  const docker = dockerEngine(cfg.dockerSocket, cfg.dockerCallTimeoutMs);
  // Pins and checks of hexpm tags: resolved through XAMAL_HEXPM_REGISTRY, pulled (by digest) through the engine.
  const pinDeps = { docker, say, hexpm: registryReader(cfg.hexpmRegistry), ensureEmulation: imageBuildDeps(cfg, say).ensureEmulation };
  return { cfg, docker, hostArch: thisArch(), pinDeps };
}

function archFlag(value: string | undefined, hostArch: Arch): Arch {
  if (value === undefined) return hostArch;
  const a = normalizeArch(value);
  if (a !== 'x86_64' && a !== 'aarch64') throw usageError(`--arch: expected x86_64 or aarch64, got ${JSON.stringify(value)}`, USAGE);
  return a;
}

/** `--otp` and `--elixir` together: a builder with both compiled from source (images/toolchains.json). */
function toolchainFlags(otp: string | undefined, elixir: string | undefined, flavour: string): { otp: string; elixir: string } | undefined {
  if (otp === undefined && elixir === undefined) return undefined;
  if (otp === undefined || elixir === undefined) throw usageError(`${otp === undefined ? '--otp' : '--elixir'}: expected with ${otp === undefined ? '--elixir' : '--otp'} (OTP and Elixir are compiled together)`, USAGE);
  if (flavour !== 'builder') throw usageError('--flavour: OTP and Elixir from source make builder images only', USAGE);
  return { otp, elixir };
}

export default flagCommand({
  usage: USAGE,
  description: [
    'build: a builder or runtime image from a Debian suite (debootstrap, then OTP and Elixir), probed, pushed to the local registry and pinned by digest in the local lock',
    'list: every image the catalog names, with its pin and whether this machine can use it',
    'pin: resolve tags to digests and write the locks; verify: check each pin against its registry (exit 5 on a mismatch)',
    'mirror-sources: copy the pinned OTP and Elixir sources into a directory, for farms without internet access',
  ].join('\n'),
  flags: FLAGS,
  examples: [
    ['xamal farm images build bookworm', "The bookworm builder for this machine's platform"],
    ['xamal farm images build all --flavour all --arch aarch64', 'Every suite, builder and runtime, for aarch64'],
    ['xamal farm images build bookworm --otp 27.3.4.1 --elixir 1.18.3', 'A builder with that OTP and Elixir compiled from source'],
    ['xamal farm images list --json', 'The images and their state, as JSON'],
  ],
}, async ({ positionals, values }, io) => {
  const [action, ...rest] = positionals;
  switch (action) {
    case 'build': {
      const [suiteArg] = rest;
      if (!suiteArg || rest.length > 1) throw usageError('expected one suite (or all)', USAGE);
      if (suiteArg !== 'all' && !isDebianSuite(suiteArg)) throw usageError(`suite: expected one of ${DEBIAN_SUITES.join(', ')}, all; got ${JSON.stringify(suiteArg)}`, USAGE);
      const flavourArg = values.flavour ?? 'builder';
      if (flavourArg !== 'all' && !(FLAVOURS as readonly string[]).includes(flavourArg)) throw usageError(`--flavour: expected builder, runtime or all; got ${JSON.stringify(flavourArg)}`, USAGE);
      const { cfg, docker, hostArch } = await context(io);
      const arch = archFlag(values.arch, hostArch);
      const suites = suiteArg === 'all' ? [...DEBIAN_SUITES] : [suiteArg as (typeof DEBIAN_SUITES)[number]];
      const flavours: Flavour[] = flavourArg === 'all' ? [...FLAVOURS] : [flavourArg as Flavour];
      if ((values.otp?.length ?? 0) > 1 || (values.elixir?.length ?? 0) > 1) throw usageError('build: one --otp and one --elixir', USAGE);
      const toolchain = toolchainFlags(values.otp?.[0], values.elixir?.[0], flavourArg);
      const deps = { ...imageBuildDeps(cfg, (l) => io.err(l)), docker };
      const results = [];
      for (const suite of suites) for (const flavour of flavours) results.push(await buildImage(deps, { suite, arch, flavour, force: values.force, noCache: values['no-cache'], ...(toolchain ? { toolchain } : {}) }));
      if (values.json) io.out(JSON.stringify(results.map((r) => ({ ...r.entry, rootfs: r.rootfs, image: r.image, timings: r.timings })), null, 2));
      else for (const r of results) io.out(`${r.entry.tuple ?? r.entry.ref}  ${splitRef(r.entry.ref).repository}@${r.entry.digest}  (rootfs ${r.rootfs}, image ${r.image})`);
      return 0;
    }
    case 'list': {
      const cfg = builderConfig();
      const rows = imageRows(await readCatalog(), await readLock(COMMITTED_LOCK_PATH), await readLock(cfg.localLockPath), readToolchainCatalog(), thisArch(), cfg.toolchainPrefer);
      if (values.json) io.out(JSON.stringify(rows, null, 2));
      else for (const r of rows) io.out(`${r.status.padEnd(12)} ${r.flavour.padEnd(8)} ${r.platform.padEnd(15)} ${r.tuple ?? '-'}  ${r.digest ? `${splitRef(r.ref).repository}@${r.digest}` : r.ref}  [${r.origin}]${r.why ? `: ${r.why}` : ''}`);
      return 0;
    }
    case 'pin': {
      const { cfg, pinDeps } = await context(io);
      const both = !values.hexpm && !values.local;
      if (values.local || both) {
        const entries = await pinLocal(pinDeps, cfg.localLockPath);
        io.out(`local: ${entries.length} image(s) pinned in ${cfg.localLockPath}`);
      }
      if (values.hexpm || both) {
        const entries = await pinHexpm(pinDeps, await readCatalog(), COMMITTED_LOCK_PATH);
        io.out(`hexpm: ${entries.length} image(s) pinned in ${COMMITTED_LOCK_PATH}`);
      }
      return 0;
    }
    case 'verify': {
      const { cfg, pinDeps } = await context(io);
      const rows = await verifyLocks(pinDeps, [await readLock(COMMITTED_LOCK_PATH), await readLock(cfg.localLockPath)]);
      if (values.json) io.out(JSON.stringify(rows, null, 2));
      else for (const r of rows) io.out(`${r.ok ? 'ok      ' : 'MISMATCH'} ${r.ref}  locked ${r.locked}  registry ${r.actual ?? `(${r.error})`}`);
      return rows.every((r) => r.ok) ? 0 : 5;
    }
    case 'mirror-sources': {
      const [dirArg] = rest;
      if (!dirArg || rest.length > 1) throw usageError('mirror-sources: expected one directory', USAGE);
      const cfg = builderConfig();
      const catalog = readToolchainCatalog();
      const pick = (kind: 'OTP' | 'Elixir', entries: ToolchainCatalog['otp'], wanted: string[] | undefined) =>
        (wanted?.length ? wanted : entries.map((e) => e.version)).map((v) => {
          const e = entries.find((x) => x.version === v);
          if (!e) throw usageError(`--${kind.toLowerCase()}: ${v} is not pinned (pinned: ${entries.map((x) => x.version).join(', ')})`, USAGE);
          return pickSource(kind, e, cfg.toolchainPrefer);
        });
      const picks = [...pick('OTP', catalog.otp, values.otp), ...pick('Elixir', catalog.elixir, values.elixir)];
      const dir = resolve(dirArg);
      const written = await mirrorSources(imageBuildDeps(cfg, (l) => io.err(l)), dir, picks);
      io.out(`${picks.length} source(s) in ${dir} (${written.length} written); serve it and set XAMAL_TOOLCHAIN_ORIGINS=${[...new Set(picks.map((p) => p.source.origin))].map((o) => `${o}=<url>/${o}`).join(',')}`);
      return 0;
    }
    default:
      throw actionError(action, USAGE);
  }
});
