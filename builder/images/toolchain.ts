import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { spawnStreaming, timed, XamalError } from '../../core/index.ts';
import { recipePlan, REPOSITORY, rootfsCachePath, type RecipePlan } from '../../images/recipes/debian.ts';
import { elixirBuildScript, otpBuildScript, otpSourceFormat, sourceFormat, sourceMount, sourceUrl, TOOLCHAIN_PATHS, type PickedSource, type ToolchainKeys, type ToolchainSource } from '../../images/toolchains.ts';
import type { ContainerSpec } from '../docker.ts';
import { buildRootfs, packDir, unpackInto, type ImageBuildDeps } from './rootfs.ts';

/**
 * OTP and Elixir compiled from source on a Debian base, the way hexpm/bob builds its images: the
 * sources fetched through the farm's origins and checked against their pinned sha256, OTP compiled
 * and installed in a container of the toolchain base (no network), Elixir compiled with that OTP,
 * each install packed and cached by its content key; the builder image's rootfs is the base with
 * both added. Everything is cached under `<cache>/toolchains/`, keyed by its inputs.
 */

export interface ToolchainBuild {
  suite: RecipePlan['input']['suite'];
  arch: RecipePlan['input']['arch'];
  otp: PickedSource;
  elixir: PickedSource;
  keys: ToolchainKeys;
}

const dir = (deps: ImageBuildDeps, ...parts: string[]) => join(deps.cacheDir, 'toolchains', ...parts);

/** A source pinned without its size is cut off past this (OTP's largest source is under 120 MB). */
export const MAX_UNSIZED_SOURCE_BYTES = 512 * 1024 * 1024;

/** A source file in the cache, downloaded once: streamed to a temporary file while hashed, kept only if its sha256 and size match the pin. */
export async function fetchSource(deps: ImageBuildDeps, source: ToolchainSource): Promise<string> {
  const file = dir(deps, 'sources', `${source.sha256}-${basename(source.path)}`);
  if (existsSync(file)) return file;
  const url = sourceUrl(source, deps.toolchainOrigins);
  await mkdir(dir(deps, 'sources'), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  let out: WriteStream | undefined;
  try {
    const res = await fetch(url, { redirect: 'follow' });
    // A 4xx will not change by retrying (the origin lacks the file): final, naming the setting to change.
    if (res.status >= 400 && res.status < 500) throw new XamalError('unsupported', `toolchain source ${url}: HTTP ${res.status}; point XAMAL_TOOLCHAIN_ORIGINS (${source.origin}) at a mirror that has it`);
    if (!res.ok || !res.body) throw new XamalError('external', `toolchain source ${url}: HTTP ${res.status}`);
    const hash = createHash('sha256');
    let bytes = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        if (bytes > (source.bytes ?? MAX_UNSIZED_SOURCE_BYTES)) return cb(new XamalError('external', `toolchain source ${url}: larger than ${source.bytes !== undefined ? `its pinned ${source.bytes}` : `${MAX_UNSIZED_SOURCE_BYTES}`} bytes`));
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    out = createWriteStream(tmp);
    await pipeline(Readable.fromWeb(res.body as never), count, out);
    const got = hash.digest('hex');
    if (got !== source.sha256 || (source.bytes !== undefined && bytes !== source.bytes)) {
      throw new XamalError('external', `toolchain source ${url}: sha256 ${got} (${bytes} bytes), pinned ${source.sha256}${source.bytes !== undefined ? ` (${source.bytes} bytes)` : ''}; refused`);
    }
    await rename(tmp, file);
    return file;
  } catch (err) {
    // A pipeline that failed early may still be opening the file: removed only once the stream has closed.
    if (out && !out.closed) await once(out, 'close').catch(() => undefined);
    await rm(tmp, { force: true });
    if (err instanceof XamalError) throw err;
    throw new XamalError('external', `toolchain source ${url}: ${(err as Error).message}`);
  }
}

/**
 * Copies each picked source (fetched and checked first, through the cache) to `<dir>/<origin>/<path>`:
 * a tree any static file server can serve as those origins for an offline farm
 * (`XAMAL_TOOLCHAIN_ORIGINS=debian=http://mirror/debian`). A file already there with the pinned
 * sha256 is kept; resolves with the files written.
 */
export async function mirrorSources(deps: ImageBuildDeps, dir: string, picks: readonly PickedSource[]): Promise<string[]> {
  const written: string[] = [];
  for (const { source } of picks) {
    const dest = join(dir, source.origin, source.path);
    if (existsSync(dest) && (await sha256File(dest)) === source.sha256) continue;
    const file = await fetchSource(deps, source);
    await mkdir(dirname(dest), { recursive: true });
    const tmp = `${dest}.${process.pid}.tmp`;
    try {
      await copyFile(file, tmp);
      await rename(tmp, dest);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    written.push(dest);
  }
  return written;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** The toolchain base as a local image (imported from its cached rootfs once), for the compile containers. */
async function baseImage(deps: ImageBuildDeps, base: RecipePlan, timings: Record<string, number>): Promise<string> {
  const rootfs = rootfsCachePath(deps.cacheDir, base);
  if (!existsSync(rootfs)) await buildRootfs(deps, base, rootfs, timings);
  const repo = REPOSITORY['toolchain-base'];
  const tag = `${base.input.suite}-${base.input.arch}-${base.cacheKey}`;
  const ref = `${repo}:${tag}`;
  if (await deps.docker.inspectImage(ref)) return ref;
  const unzstd = spawnStreaming(base.decompress(rootfs));
  await timed(timings, 'import-base', async () => void (await Promise.all([deps.docker.importTarball(unzstd.stdout, repo, tag, base.changes), unzstd.done])));
  return ref;
}

/** Runs one compile in the base (root, no network, its own /out), then packs /out into the cache file. */
async function compileAndPack(deps: ImageBuildDeps, base: RecipePlan, image: string, what: string, spec: { script: string; source: string; mount: string; binds?: string[] }, cacheFile: string): Promise<void> {
  await mkdir(dir(deps, 'work'), { recursive: true });
  const work = await mkdtemp(join(dir(deps, 'work'), `${what.replace(/[^A-Za-z0-9.-]/g, '-')}-`));
  try {
    const out = join(work, 'out');
    await mkdir(out);
    const run: ContainerSpec = {
      image,
      cmd: ['/bin/sh', '-c', spec.script],
      networkMode: 'none',
      binds: [`${spec.source}:${spec.mount}:ro`, `${out}:${TOOLCHAIN_PATHS.out}`, ...(spec.binds ?? [])],
      env: { LANG: 'C.UTF-8' },
      timeoutMs: 4 * 3_600_000,
      labels: { 'org.xamal.toolchain': what },
    };
    const r = await deps.docker.run(run);
    if (r.code !== 0) {
      const tail = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-30).join('\n');
      throw new XamalError('external', `${what}: ${r.timedOut ? 'timed out' : `exited ${r.code}`}\n${tail}`);
    }
    await packDir(base, out, cacheFile);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** OTP's install, from the cache or compiled now. */
async function otpInstall(deps: ImageBuildDeps, t: ToolchainBuild, base: RecipePlan, timings: Record<string, number>): Promise<string> {
  const file = dir(deps, `otp-${t.otp.version}-${t.suite}-${t.arch}-${t.keys.otp}.tar.zst`);
  if (existsSync(file)) return file;
  const source = await timed(timings, 'fetch-otp', () => fetchSource(deps, t.otp.source));
  const image = await baseImage(deps, base, timings);
  deps.say(`toolchain ${t.suite}/${t.arch}: compiling OTP ${t.otp.version} (configure, make -j, install; tens of minutes)`);
  await timed(timings, 'otp', () => compileAndPack(deps, base, image, `otp-${t.otp.version}`, { script: otpBuildScript(otpSourceFormat(t.otp.source)), source, mount: sourceMount(otpSourceFormat(t.otp.source)) }, file));
  return file;
}

/** Elixir's install (one per Elixir version and OTP major), from the cache or compiled now with this OTP. */
async function elixirInstall(deps: ImageBuildDeps, t: ToolchainBuild, base: RecipePlan, otpFile: string, timings: Record<string, number>): Promise<string> {
  const file = dir(deps, `elixir-${t.elixir.version}-otp${t.otp.version.split('.')[0]}-${t.keys.elixir}.tar.zst`);
  if (existsSync(file)) return file;
  const source = await timed(timings, 'fetch-elixir', () => fetchSource(deps, t.elixir.source));
  const image = await baseImage(deps, base, timings);
  const otpDir = await mkdtemp(join(dir(deps, 'work'), 'otp-'));
  try {
    await unpackInto(deps.exec, otpFile, otpDir);
    deps.say(`toolchain ${t.suite}/${t.arch}: ${t.elixir.source.precompiled ? `installing Elixir ${t.elixir.version} precompiled for OTP ${t.elixir.source.precompiled.otpMajor}, checked on` : `compiling Elixir ${t.elixir.version} with`} OTP ${t.otp.version}`);
    const otpBind = `${join(otpDir, TOOLCHAIN_PATHS.otp)}:${TOOLCHAIN_PATHS.otp}:ro`;
    await timed(timings, 'elixir', () => compileAndPack(deps, base, image, `elixir-${t.elixir.version}`, { script: elixirBuildScript(sourceFormat(t.elixir.source), t.elixir.version), source, mount: sourceMount(sourceFormat(t.elixir.source)), binds: [otpBind] }, file));
  } finally {
    await rm(otpDir, { recursive: true, force: true });
  }
  return file;
}

/** The plan of the toolchain base rootfs for a build. */
export function toolchainBase(deps: ImageBuildDeps, t: Pick<ToolchainBuild, 'suite' | 'arch'>): RecipePlan {
  return recipePlan({ suite: t.suite, arch: t.arch, flavour: 'toolchain-base', mirror: deps.mirror, hostArch: deps.hostArch });
}

/** The builder image's rootfs: the toolchain base with OTP and Elixir installed, packed into `cacheFile`. */
export async function buildToolchainRootfs(deps: ImageBuildDeps, t: ToolchainBuild, plan: RecipePlan, cacheFile: string, timings: Record<string, number>): Promise<void> {
  const base = toolchainBase(deps, t);
  const otpFile = await otpInstall(deps, t, base, timings);
  const elixirFile = await elixirInstall(deps, t, base, otpFile, timings);
  await mkdir(dir(deps, 'work'), { recursive: true });
  const work = await mkdtemp(join(dir(deps, 'work'), 'image-'));
  try {
    await timed(timings, 'compose', async () => {
      for (const f of [rootfsCachePath(deps.cacheDir, base), otpFile, elixirFile]) await unpackInto(deps.exec, f, work);
      await packDir(plan, work, cacheFile);
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
