import { createHash } from 'node:crypto';
import { chmod, chown, copyFile, cp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { XamalError } from '../core/index.ts';
import { withFileLock } from '../localservices/fs-lock.ts';
import { BUILD_USER, sandboxed, type SandboxLimits } from './build-user.ts';
import type { ContainerResult, ContainerSpec, DockerEngine } from './docker.ts';
import { proxyEnv, type EgressProxy } from './egress.ts';
import { runStepContainer } from './step-container.ts';

/** Hex's own builds, where `mix local.hex` and `mix local.rebar` fetch from by default. */
export const HEX_BUILDS_URL = 'https://builds.hex.pm';

/** Where Hex or rebar3 comes from: a file on the worker, or `mix local.hex` / `mix local.rebar` from a builds URL. */
export type ToolSource = { kind: 'file'; path: string } | { kind: 'builds'; url: string };

/** How builds get Hex and rebar3 (builder/config.ts reads them from the farm's environment). */
export interface MixToolsSettings {
  /** XAMAL_HEX_ARCHIVE (a Hex .ez), else HEX_BUILDS_URL (default Hex's builds). */
  hex: ToolSource;
  /** XAMAL_REBAR3 (a rebar3 escript), else HEX_BUILDS_URL. */
  rebar3: ToolSource;
  /** HEX_MIRROR: the Hex repository mirror, given to the steps that fetch (and to `mix local.*`, which older Mix reads it for). */
  hexMirror?: string;
  /** HEX_OFFLINE: Hex resolves from its cache only. */
  hexOffline: boolean;
}

/** What a build mounts: the prepared directory and what it holds. */
export interface MixTools {
  dir: string;
  hex: boolean;
  rebar3: boolean;
  /** Why a tool is missing: the build's error names it when a dependency turns out to need that tool. */
  problems: string[];
}

/** Where the tools directory is mounted (read-only) in build containers. */
export const TOOLS_MOUNT = '/build/tools';
const PREP_MOUNT = '/tools';
const FACTS_FILE = 'tools.json';
/** A Hex archive's file name (`mix archive.install` names the installed archive after it). */
export const HEX_ARCHIVE_NAME = /^[A-Za-z0-9._-]+\.ez$/;

/** The settings' sources in words, for logs and errors. */
export function describeSource(what: 'hex' | 'rebar3', s: ToolSource): string {
  if (s.kind === 'file') return `${s.path} (${what === 'hex' ? 'XAMAL_HEX_ARCHIVE' : 'XAMAL_REBAR3'})`;
  return `\`mix local.${what === 'hex' ? 'hex' : 'rebar'}\` from ${s.url}`;
}

/** Pure: the environment a build container gets for the tools (none without them) and the Hex settings. */
export function mixToolsEnv(tools: MixTools | undefined, settings: MixToolsSettings | undefined): Record<string, string> {
  return {
    ...(tools?.hex ? { MIX_ARCHIVES: `${TOOLS_MOUNT}/mix/archives` } : {}),
    ...(tools?.rebar3 ? { MIX_REBAR3: `${TOOLS_MOUNT}/rebar3` } : {}),
    ...(settings?.hexMirror ? { HEX_MIRROR: settings.hexMirror } : {}),
    ...(settings?.hexOffline ? { HEX_OFFLINE: '1' } : {}),
  };
}

/** Pure: the content key of a tools directory: the image, the sources, and the sha256 of each file source. */
export function mixToolsKey(settings: MixToolsSettings, imageDigest: string, fileSha256: { hex?: string; rebar3?: string }): string {
  const src = (s: ToolSource, sha: string | undefined) => (s.kind === 'file' ? { file: sha } : { builds: s.url });
  const input = { v: 1, image: imageDigest, hex: src(settings.hex, fileSha256.hex), rebar3: src(settings.rebar3, fileSha256.rebar3), mirror: settings.hexMirror ?? null };
  return createHash('sha256').update(JSON.stringify(input)).digest('hex').slice(0, 24);
}

/**
 * The preparing container's script, fixed (inputs come by environment): Hex from the archive copied
 * in, else `mix local.hex`; rebar3 (unless copied in by the worker) by `mix local.rebar`, then put at
 * a fixed path. Each part reports its exit status on a line of its own, after its output (one stream).
 */
const PREPARE_SCRIPT = [
  'exec 2>&1',
  'if [ -n "$XAMAL_HEX_FILE" ]; then mix archive.install "$XAMAL_HEX_FILE" --force; else mix local.hex --force; fi',
  'echo "xamal-hex-exit=$?"',
  'if [ -n "$XAMAL_REBAR3_BUILDS" ]; then',
  `  mix local.rebar --force && r=$(find ${PREP_MOUNT}/mix -name rebar3 -type f | head -n 1) && [ -n "$r" ] && cp "$r" ${PREP_MOUNT}/rebar3 && chmod 0755 ${PREP_MOUNT}/rebar3`,
  '  echo "xamal-rebar3-exit=$?"',
  'fi',
].join('\n');

/** The limits the preparing container runs under (a build's, builder/plan.ts BuildLimits). */
type Limits = SandboxLimits & { stepTimeoutMs: number };
type Network = 'egress' | 'none';

export interface PrepareInput {
  settings: MixToolsSettings;
  image: { pinned: string };
  /** The directory being prepared (mounted read-write at /tools). */
  staging: string;
  network: Network;
  limits: Limits;
}

/** Pure: the container that installs the tools into `staging`, as the build user, like any build step but with only the tools' inputs. */
export function mixToolsContainer(p: PrepareInput): ContainerSpec {
  const { settings } = p;
  const builds = [settings.hex, settings.rebar3].filter((s) => s.kind === 'builds');
  const url = builds[0]?.kind === 'builds' ? builds[0].url : undefined;
  const networked = builds.length > 0 && p.network === 'egress';
  return {
    image: p.image.pinned,
    cmd: ['sh', '-c', PREPARE_SCRIPT],
    ...sandboxed(p.limits),
    env: {
      HOME: '/tmp',
      MIX_HOME: `${PREP_MOUNT}/mix`,
      HEX_HOME: '/tmp/hex',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      ...(settings.hex.kind === 'file' ? { XAMAL_HEX_FILE: `${PREP_MOUNT}/in/${basename(settings.hex.path)}` } : {}),
      ...(settings.rebar3.kind === 'builds' ? { XAMAL_REBAR3_BUILDS: '1' } : {}),
      ...(url ? { HEX_BUILDS_URL: url } : {}),
      ...(settings.hexMirror ? { HEX_MIRROR: settings.hexMirror } : {}),
      ...(networked ? proxyEnv() : {}),
    },
    workdir: '/tmp',
    networkMode: networked ? 'egress' : 'none',
    binds: [`${p.staging}:${PREP_MOUNT}`],
    tmpfs: { '/tmp': 'rw,exec,size=256m' },
    timeoutMs: Math.min(p.limits.stepTimeoutMs, 300_000),
    labels: { 'org.xamal.step': 'mix-tools' },
  };
}

/** Pure: the gist of a failed part's output: Mix's error lines (`** (Mix) …`, `Could not …`), else its last lines. */
function gist(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const errors = lines.filter((l) => /^\*\* \(|^Could not /.test(l));
  return (errors.length ? errors : lines.slice(-2)).slice(0, 2).join(' | ');
}

/** Pure: what the preparing container's run says of each tool; `rebar3Copied`: the worker copied a rebar3 file in. */
export function mixToolsOutcome(settings: MixToolsSettings, r: ContainerResult, rebar3Copied: boolean): Omit<MixTools, 'dir'> {
  const out = `${r.stdout}\n${r.stderr}`;
  // Each part's output ends at its exit line: Hex's before `xamal-hex-exit`, rebar3's after it.
  const [hexPart = '', rest = ''] = out.split(/^xamal-hex-exit=\d+$/m);
  const exit = (what: string) => out.match(new RegExp(`^xamal-${what}-exit=(\\d+)$`, 'm'))?.[1];
  const why = (what: 'hex' | 'rebar3', part: string) =>
    `${what === 'hex' ? 'Hex' : 'rebar3'} could not be installed from ${describeSource(what, settings[what])}: ${r.timedOut ? 'timed out' : gist(part.replace(/^xamal-\w+-exit=\d+$/gm, '')) || `exit code ${r.code}`}`;
  const hex = exit('hex') === '0';
  const rebar3 = settings.rebar3.kind === 'file' ? rebar3Copied : exit('rebar3') === '0';
  return { hex, rebar3, problems: [...(hex ? [] : [why('hex', hexPart)]), ...(rebar3 ? [] : [why('rebar3', rest)])] };
}

const FactsSchema = z.object({ hex: z.boolean(), rebar3: z.boolean(), problems: z.array(z.string()) });

async function sha256Of(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

export interface MixToolsDeps {
  docker: DockerEngine;
  egress?: EgressProxy;
  cacheDir: string;
  depsNetwork: Network;
  limits: Limits;
}

/** A file source that is not there is a setting to fix: refused before anything runs, naming the setting. */
async function checkedFileSha(what: 'hex' | 'rebar3', s: ToolSource): Promise<string | undefined> {
  if (s.kind !== 'file') return undefined;
  const setting = what === 'hex' ? 'XAMAL_HEX_ARCHIVE' : 'XAMAL_REBAR3';
  if (what === 'hex' && !HEX_ARCHIVE_NAME.test(basename(s.path))) throw new XamalError('validation', `${setting}: expected a Mix archive named like hex-2.1.1.ez, got ${s.path}`);
  try {
    return await sha256Of(s.path);
  } catch (err) {
    throw new XamalError('validation', `${setting}: cannot read ${s.path} on this worker (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

/** Runs the preparing container into `staging` (the worker copies file sources in first). */
async function prepareInto(deps: MixToolsDeps, settings: MixToolsSettings, image: { pinned: string }, staging: string): Promise<Omit<MixTools, 'dir'>> {
  await mkdir(join(staging, 'in'), { recursive: true });
  if (settings.hex.kind === 'file') await copyFile(settings.hex.path, join(staging, 'in', basename(settings.hex.path)));
  if (settings.rebar3.kind === 'file') {
    await copyFile(settings.rebar3.path, join(staging, 'rebar3'));
    await chmod(join(staging, 'rebar3'), 0o755);
  }
  await chmod(join(staging, 'in'), 0o755);
  const { uid, gid } = BUILD_USER;
  await chown(staging, uid, gid);
  const spec = mixToolsContainer({ settings, image, staging, network: deps.depsNetwork, limits: deps.limits });
  const result = await runStepContainer(deps.docker, deps.egress, spec, new AbortController().signal);
  await rm(join(staging, 'in'), { recursive: true, force: true });
  return mixToolsOutcome(settings, result, settings.rebar3.kind === 'file');
}

/**
 * Hex and rebar3 for a build in `image` (FACTS.md#mix-hex), prepared once per image and sources (under a file lock) in
 * `<cache>/mix-tools/<key>`, which builds mount read-only. A preparation that could not install
 * everything is not kept: the build gets it in `scratch` (its own work directory) and the next build
 * tries again, since a project may never need the missing tool.
 */
export async function ensureMixTools(deps: MixToolsDeps, settings: MixToolsSettings, image: { pinned: string; digest: string }, scratch: string, say: (line: string) => Promise<void>): Promise<MixTools> {
  const key = mixToolsKey(settings, image.digest, { hex: await checkedFileSha('hex', settings.hex), rebar3: await checkedFileSha('rebar3', settings.rebar3) });
  const final = join(deps.cacheDir, 'mix-tools', key);
  const kept = async (): Promise<MixTools | undefined> => {
    if (!existsSync(join(final, FACTS_FILE))) return undefined;
    return { dir: final, ...FactsSchema.parse(JSON.parse(await readFile(join(final, FACTS_FILE), 'utf8'))) };
  };
  const found = await kept();
  if (found) return found;
  return withFileLock(`${final}.lock`, `mix tools ${key}`, async () => {
    const again = await kept();
    if (again) return again;
    const staging = `${final}.staging-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    await say(`==> mix tools: Hex from ${describeSource('hex', settings.hex)}, rebar3 from ${describeSource('rebar3', settings.rebar3)}`);
    const outcome = await prepareInto(deps, settings, image, staging);
    await writeFile(join(staging, FACTS_FILE), JSON.stringify(outcome));
    for (const p of outcome.problems) await say(`==> mix tools: ${p}`);
    if (outcome.problems.length === 0) {
      await rename(staging, final);
      return { dir: final, ...outcome };
    }
    const own = join(scratch, 'mix-tools');
    await cp(staging, own, { recursive: true });
    await rm(staging, { recursive: true, force: true });
    return { dir: own, ...outcome };
  });
}
