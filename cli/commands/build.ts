import { join } from 'node:path';
import { farmClient, type FarmClient } from '../../deployer/farm-client.ts';
import { BUILD_JOB_VERBS, buildJobCommand } from './build-jobs.ts';
import { followBuilds, uploadCheckout } from '../../deployer/farm-builds.ts';
import type { BuildStatus } from '../../api/schemas/builds.ts';
import type { SourceArchive } from '../../api/schemas/sources.ts';
import { artifactVariant, LocalExecutor, mixElixirRequirement, parseManifestKey, parseSelectorString, parseTarget, parseToolVersions, readTextIfPresent, type TargetSelectorInput, type ToolVersions } from '../../core/index.ts';
import { BUILD_PHASES, type BuildPhase } from '../../core/contracts/build-job.ts';
import { parseFlags, usageError } from '../args.ts';
import type { FlagTable } from '../help.ts';
import { buildSecretValues, cliConfig } from '../config.ts';
import { deployerEnv } from '../../deployer/config.ts';
import { loadBuilderSettings, type BuilderSettings } from '../../deployer/config/load.ts';
import { DEFAULT_HOOKS_PATH, localPerformer, runHook } from '../../deployer/hooks.ts';
import { progressFor, type CliCommand, type Io } from '../io.ts';
import { progressBar, type Progress } from '../progress.ts';

const USAGE =
  'xamal build --farm URL --app APP (--git URL (--commit SHA | --ref REF) | --source DIR [--commit SHA | --ref REF]) [--target TUPLE|SELECTOR … | --matrix KEY=V1,V2 …] [--project DIR] [--mix-env prod] [--release NAME] [--env NAME=VALUE …] [--secret NAME …] [-H] [--json] [--timeout SECONDS]';

const DESCRIPTION = [
  'Submits one build per target, follows each to its end (a progress line per target), and prints each tuple with its download URL and sha256; exit 9 if any build failed or a target could not be resolved. The token is XAMAL_FARM_TOKEN.',
  '',
  "Without --target or --matrix, the targets come from the erlang and elixir lines of DIR/.tool-versions (DIR: --project, else --source, else the current directory). The elixir: requirement in DIR/mix.exs is sent along, and the farm refuses targets whose Elixir does not satisfy it. builder.env, builder.secrets and release.mix_env of DIR/config/deploy.yml are sent too.",
  '',
  'xamal build list, show, logs and cancel look at builds already submitted (xamal help build logs).',
].join('\n');

/** The flags `xamal build` accepts (node:util parseArgs options); CI examples are checked against them. */
export const BUILD_OPTIONS = {
  farm: { type: 'string', valueName: 'URL', description: "The farm's URL", defaultText: 'XAMAL_FARM_URL' },
  app: { type: 'string', valueName: 'APP', description: 'The app the builds are for (the farm may restrict which tokens build it)' },
  git: { type: 'string', valueName: 'URL', description: 'The repository the farm clones' },
  source: { type: 'string', valueName: 'DIR', description: 'Upload a git archive of the commit of the repository at DIR instead (private or unpushed code)' },
  commit: { type: 'string', valueName: 'SHA', description: 'The commit to build (with --source: HEAD when neither --commit nor --ref is given)' },
  ref: { type: 'string', valueName: 'REF', description: 'A branch or tag to build, resolved to a commit' },
  target: { type: 'string', multiple: true, valueName: 'TUPLE|SELECTOR', description: 'A target tuple, or a selector such as otp=27,arch=aarch64' },
  matrix: { type: 'string', multiple: true, valueName: 'KEY=V1,V2', description: 'Every combination of the values: KEY is otp, elixir, distro or arch' },
  'mix-env': { type: 'string', valueName: 'ENV', description: 'MIX_ENV of the release', defaultText: "release.mix_env of deploy.yml, else prod" },
  release: { type: 'string', valueName: 'NAME', description: 'The release of mix.exs to build', defaultText: "the project's default release" },
  json: { type: 'boolean', description: 'Print the builds and what could not be resolved as JSON (no progress lines)' },
  timeout: { type: 'string', valueName: 'SECONDS', description: 'Give up following the builds after this long', defaultText: '3600' },
  project: { type: 'string', valueName: 'DIR', description: 'Where .tool-versions, mix.exs and config/deploy.yml are read', defaultText: '--source, else the current directory' },
  env: { type: 'string', multiple: true, valueName: 'NAME=VALUE', description: 'An environment variable for the build, over builder.env' },
  secret: { type: 'string', multiple: true, valueName: 'NAME', description: 'A build secret whose value is the environment variable NAME (the deps and assets steps get it; the farm never stores it in clear)' },
  'skip-hooks': { type: 'boolean', short: 'H', description: 'Do not run the pre-build hook (hooks_path of DIR/config/deploy.yml, else .xamal/hooks), which otherwise runs first' },
} as const satisfies FlagTable;

/** Parses `xamal build`'s arguments; an unknown flag is a usage error naming it. */
export const parseBuildFlags = (args: string[]) => parseFlags(args, BUILD_OPTIONS, USAGE);

const MATRIX_KEYS = ['otp', 'elixir', 'distro', 'arch'] as const;

/**
 * `--matrix otp=25,27 --matrix arch=x86_64,aarch64` (or `otp=25,27;arch=x86_64`) → the request's
 * `matrix`: every combination becomes a selector on the farm.
 */
export function matrixFromFlags(flags: readonly string[]): Partial<Record<(typeof MATRIX_KEYS)[number], string[]>> {
  const out: Partial<Record<(typeof MATRIX_KEYS)[number], string[]>> = {};
  for (const part of flags.flatMap((f) => f.split(';')).map((p) => p.trim()).filter(Boolean)) {
    const [key = '', values = ''] = part.split('=', 2);
    if (!(MATRIX_KEYS as readonly string[]).includes(key)) throw usageError(`--matrix ${part}: expected KEY=V1,V2 with KEY one of ${MATRIX_KEYS.join(', ')}`, USAGE);
    const list = values.split(',').map((v) => v.trim()).filter(Boolean);
    if (!list.length) throw usageError(`--matrix ${part}: expected at least one value after ${key}=`, USAGE);
    const k = key as (typeof MATRIX_KEYS)[number];
    out[k] = [...new Set([...(out[k] ?? []), ...list])];
  }
  return out;
}

/** The project's `.tool-versions` and `mix.exs` requirement (either may be absent). */
/** The project's `.tool-versions` (read only when `withTools`: explicit targets make it irrelevant) and mix.exs's `elixir:` requirement. */
async function readProject(dir: string, withTools: boolean): Promise<{ tools: ToolVersions; requirement?: string }> {
  const tools = withTools ? await readTextIfPresent(join(dir, '.tool-versions')) : undefined;
  const mix = await readTextIfPresent(join(dir, 'mix.exs'));
  const requirement = mix === undefined ? undefined : mixElixirRequirement(mix);
  return { tools: tools === undefined ? {} : parseToolVersions(tools, join(dir, '.tool-versions')), ...(requirement ? { requirement } : {}) };
}

/** Pure: the selector `.tool-versions` names (OTP and Elixir as given), or none when it names neither. */
export function projectSelector(tools: ToolVersions): TargetSelectorInput | undefined {
  if (!tools.erlang && !tools.elixir) return undefined;
  return { ...(tools.erlang ? { otp: tools.erlang } : {}), ...(tools.elixir ? { elixir: tools.elixir } : {}) };
}

/**
 * The build settings sent with the request: `builder:` and `release.mix_env` of the project's
 * deploy.yml, then `--env`, `--secret` and `--mix-env` on top; each secret's value from the
 * environment, a missing one a usage error naming it.
 */
function buildSettingsFor(fromFile: BuilderSettings | undefined, flags: { env?: string[] | undefined; secret?: string[] | undefined; 'mix-env'?: string | undefined }) {
  const env: Record<string, string> = { ...(fromFile?.env ?? {}) };
  for (const pair of flags.env ?? []) {
    const at = pair.indexOf('=');
    if (at < 1) throw usageError(`--env ${JSON.stringify(pair)}: expected NAME=VALUE`, USAGE);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const names = [...new Set([...(fromFile?.secrets ?? []), ...(flags.secret ?? [])])];
  const { values, missing } = buildSecretValues(names);
  if (missing.length) throw usageError(`secret${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (builder.secrets or --secret): no value in the environment of xamal build`, USAGE);
  const mixEnv = flags['mix-env'] ?? fromFile?.mixEnv;
  const packages = fromFile?.packages ?? [];
  const assets = fromFile?.assets;
  return { ...(Object.keys(env).length ? { env } : {}), ...(names.length ? { secrets: values } : {}), ...(packages.length ? { packages } : {}), ...(assets ? { assets } : {}), ...(mixEnv ? { mixEnv } : {}) };
}

/**
 * The pre-build hook (hooks_path of DIR/config/deploy.yml, else .xamal/hooks, from DIR), before the
 * farm is asked or a checkout uploaded; -H/--skip-hooks: none. XAMAL_VERSION: the commit (--source:
 * the revision resolved in DIR), else the ref; XAMAL_COMMAND build; no hosts (a build has none).
 */
async function runPreBuild(dir: string, fromFile: BuilderSettings | undefined, values: ReturnType<typeof parseBuildFlags>['values'], io: Io): Promise<void> {
  if (values['skip-hooks']) return;
  const env = deployerEnv();
  const exec = new LocalExecutor(env as NodeJS.ProcessEnv);
  const rev = values.commit ?? values.ref ?? 'HEAD';
  const found = values.source ? await exec.run({ argv: ['git', '-C', values.source, 'rev-parse', '--verify', '--quiet', `${rev}^{commit}`], timeoutMs: 30_000 }) : undefined;
  const version = found?.code === 0 && found.stdout.trim() ? found.stdout.trim() : rev;
  const details = { service: fromFile?.service ?? values.app!, version, hosts: [], roles: [], performer: await localPerformer(exec, env), recordedAt: new Date(), command: 'build' };
  await runHook('pre-build', details, { root: dir, hooksPath: fromFile?.hooksPath ?? DEFAULT_HOOKS_PATH, executor: exec, say: (l) => io.err(l) });
}

/** `--source DIR`: the commit packed and uploaded (deployer/farm-builds.ts), with a progress line. */
async function uploadedSource(client: FarmClient, dir: string, rev: string, progress: Progress | undefined): Promise<SourceArchive> {
  const source = await uploadCheckout(client, dir, rev, (sent, total, commit) => {
    const tenths = Math.floor((sent / total) * 10);
    progress?.update('upload', `${progressBar(tenths, 10)} upload ${commit.slice(0, 12)}: ${tenths * 10}% of ${total} bytes`);
  });
  progress?.end();
  return source;
}

/** The CI client: submit, follow every target to the end, print tuples and download URLs. */
const command: CliCommand = {
  help: {
    usage: USAGE,
    description: DESCRIPTION,
    flags: BUILD_OPTIONS,
    examples: [
      ['xamal build --app shop --git https://github.com/acme/shop --commit 4f9c2e1d… --target otp=27,arch=x86_64', 'One build for OTP 27 on x86_64, followed to its end'],
      ['xamal build --app shop --source . --matrix otp=26,27 --matrix arch=x86_64,aarch64', 'The checkout uploaded and built for four targets'],
      ['xamal build --app shop --source . --json > builds.json', "The targets of .tool-versions; the result as JSON for CI's next step"],
    ],
  },
  async run(args, io) {
    const verb = BUILD_JOB_VERBS.find((v) => v === args[0]);
    if (verb) return buildJobCommand(verb, args.slice(1), io);
    const { values } = parseBuildFlags(args);
    const cfg = cliConfig();
    const farm = values.farm ?? cfg.farmUrl;
    const missing = [
      !farm && '--farm (or XAMAL_FARM_URL)',
      !cfg.farmToken && 'XAMAL_FARM_TOKEN',
      !values.app && '--app',
      !values.git && !values.source && '--git or --source',
      !values.source && !values.commit && !values.ref && '--commit or --ref',
    ].filter(Boolean);
    if (values.git && values.source) throw usageError('give --git or --source, not both', USAGE);
    const projectDir = values.project ?? values.source ?? process.cwd();
    const project = await readProject(projectDir, !values.target?.length && !values.matrix?.length);
    const fromProject = projectSelector(project.tools);
    if (!values.target?.length && !values.matrix?.length && !fromProject) missing.push('--target or --matrix (or a .tool-versions with erlang and elixir lines)');
    if (missing.length) throw usageError(`missing ${missing.join(', ')}`, USAGE);
    if (values.target?.length && values.matrix?.length) throw usageError('give --target or --matrix, not both', USAGE);
    // A target is a tuple, or a selector written key=value,… (otp=27,arch=arm64).
    let targets: (string | TargetSelectorInput)[] | undefined = values.target?.map((t) => (parseTarget(t).ok || !t.includes('=') ? t : parseSelectorString(t)));
    if (!targets && !values.matrix?.length && fromProject) {
      targets = [fromProject];
      io.err(`targets from .tool-versions: ${Object.entries(fromProject).map(([k, v]) => `${k}=${v}`).join(', ')}`);
    }
    const matrix = values.matrix?.length ? matrixFromFlags(values.matrix) : undefined;
    const fromFile = await loadBuilderSettings(projectDir, deployerEnv());
    const settings = buildSettingsFor(fromFile, values);
    const timeoutMs = values.timeout ? Number(values.timeout) * 1000 : 3_600_000;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw usageError(`--timeout: expected seconds, got ${JSON.stringify(values.timeout)}`, USAGE);
    await runPreBuild(projectDir, fromFile, values, io);

    const client = farmClient(farm!, cfg.farmToken!);
    const source = values.source
      ? await uploadedSource(client, values.source, values.commit ?? values.ref ?? 'HEAD', values.json ? undefined : progressFor(io))
      : { git: values.git!, ...(values.commit ? { commit: values.commit } : { ref: values.ref! }) };
    const submitted = await client.submit({
      app: values.app!,
      source,
      ...(targets ? { targets } : { matrix }),
      ...settings,
      ...(values.release ? { release: values.release } : {}),
      ...(project.requirement ? { elixirRequirement: project.requirement } : {}),
    });
    for (const u of submitted.body.unresolved) io.err(`unresolved ${JSON.stringify(u.target)}: ${u.reasons.join('; ')}`);
    const progress = values.json ? undefined : progressFor(io);
    const final = await followBuilds(client, submitted.body.builds, (b, st) => progress?.update(b.id, buildStatusLine(b.tuple, st)), timeoutMs);
    progress?.end();
    const base = farm!.replace(/\/+$/, '');
    const rows = submitted.body.builds.map((b) => {
      const st = final.get(b.id)!;
      const k = st.result?.manifestKey ? parseManifestKey(st.result.manifestKey) : undefined;
      const download = st.state === 'completed' && k ? artifactDownloadUrl(base, k) : undefined;
      return { id: b.id, tuple: b.tuple, state: st.state, sha256: st.result?.sha256, download, error: st.failedReason };
    });
    for (const r of rows.filter((x) => x.state === 'failed')) io.err(failureReport(r.tuple, r.error, await client.logs(r.id)));
    if (values.json) io.out(JSON.stringify({ builds: rows, unresolved: submitted.body.unresolved }, null, 2));
    else for (const r of rows) io.out(r.state === 'completed' ? `${r.tuple}  ${r.download}  sha256:${r.sha256}` : `${r.tuple}  FAILED`);
    return rows.every((r) => r.state === 'completed') && submitted.body.unresolved.length === 0 ? 0 : 9;
  },
};
export default command;

/** One target's status line: a bar over the build phases, the state, and why it waits. */
export function buildStatusLine(tuple: string, st: Pick<BuildStatus, 'state' | 'phase' | 'waitingReason'>): string {
  const steps = BUILD_PHASES.length - 1;
  const at = st.state === 'completed' ? steps : Math.max(0, BUILD_PHASES.indexOf((st.phase ?? 'queued') as BuildPhase));
  return `${progressBar(at, steps)} ${tuple}: ${st.state}${st.phase && st.state !== 'completed' ? ` (${st.phase})` : ''}${st.waitingReason ? ` — ${st.waitingReason}` : ''}`;
}

/** The download route of an artifact, with `?mixEnv=&release=` for any but the default build. */
export function artifactDownloadUrl(base: string, k: { app: string; version: string; tuple: string; mixEnv: string; release: string }): string {
  const v = artifactVariant(k);
  return `${base}/v1/artifacts/${k.app}/${k.version}/${k.tuple}/download${v.isDefault ? '' : `?${new URLSearchParams({ mixEnv: v.mixEnv, release: v.release })}`}`;
}

/** Lines of the stored log a failure shows. */
const FAILURE_LOG_LINES = 40;

/**
 * A failed target's report: the log's last lines, then the error. The worker's error already ends
 * with the log's tail, so the log lines it holds are printed once (as part of the error).
 */
export function failureReport(tuple: string, error: string | undefined, log: string): string {
  const inError = new Set((error ?? '').split('\n'));
  const tail = log.trimEnd() ? log.trimEnd().split('\n').slice(-FAILURE_LOG_LINES) : [];
  return [`--- ${tuple} failed:`, ...tail.filter((l) => !inError.has(l)), ...(error ? [error.trimEnd()] : [])].join('\n');
}
