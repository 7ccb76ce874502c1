import { exitCodeFor, LocalExecutor, XamalError, isXamalError, type HostFingerprint, type TargetSelector } from '../../core/index.ts';
import { buildRequestLine, hostTarget } from '../../deployer/build-request.ts';
import { CommitSchema } from '../../core/contracts/build-job.ts';
import { keyIdOf } from '../../core/signing.ts';
import { farmClient, type FarmClient } from '../../deployer/farm-client.ts';
import { followBuilds, uploadCheckout } from '../../deployer/farm-builds.ts';
import { failureReport } from './build.ts';
import type { RemoteContext } from '../../deployer/flows/context.ts';
import { currentVersion, deployFlow, previousVersion, type ArtifactSource, type DeployResult, type HostDeployRecord } from '../../deployer/flows/deploy.ts';
import { withLock } from '../../deployer/flows/lock.ts';
import { canaryDeployFlow, refuseDuringCanary } from '../../deployer/flows/canary.ts';
import { checkCanaryPercent } from '../../deployer/commands/canary.ts';
import { pruneAfterDeploy, pruneFields, prunedWords, pruneFlow } from '../../deployer/flows/prune.ts';
import { exitCodeForOutcomes, failed, summary, type HostOutcome } from '../../deployer/flows/parallel.ts';
import { hookRunner, type HookRunner } from '../../deployer/hooks.ts';
import { artifactVerifier } from '../../deployer/trust.ts';
import { primaryHost } from '../../deployer/commands/layout.ts';
import { attemptOutcome, refuseFailedVersion, watchRollout, type RolloutReport } from '../../deployer/flows/rollout.ts';
import { resumePlan, writeAttempt, type ResumePlan } from '../../deployer/flows/resume.ts';
import { parseFlags, usageError } from '../args.ts';
import type { CommandHelp, FlagTable } from '../help.ts';
import { progressFor, type CliCommand, type Io } from '../io.ts';
import { openRemote, printDryRun, REMOTE_FLAGS, REMOTE_FLAGS_USAGE, type Remote } from '../remote.ts';

const FLAGS = {
  ...REMOTE_FLAGS,
  version: { type: 'string', valueName: 'VERSION', description: 'The version to deploy (app boot: to boot again)', defaultText: "the checkout's commit; app boot: the live version" },
  'lock-wait': { type: 'string', valueName: 'SECONDS', description: 'Wait this long for a deploy lock someone else holds before giving up', defaultText: '0' },
  build: { type: 'boolean', description: "Have the farm build what a host has no artifact for (from the checkout's origin, or an upload of the commit) and wait for it" },
  'skip-hooks': { type: 'boolean', short: 'H', description: 'Run none of the hooks in hooks_path (xamal docs hooks)' },
  canary: { type: 'string', valueName: 'PERCENT', description: 'deploy: boot the new version beside the live one on the primary role only and give it PERCENT (1–99) of new sessions, each client kept on its version by a cookie; then xamal canary promote or abort' },
  force: { type: 'boolean', description: 'deploy, redeploy: deploy a version a watched rollout marked failed (rollout.watch)' },
  resume: { type: 'boolean', description: "deploy, redeploy: continue the last deploy, acting only on the hosts where its version is not live yet" },
} as const satisfies FlagTable;

const USAGE = `xamal deploy|redeploy [--version V] [--build] [--canary PERCENT] [--force] [--resume] | rollback [VERSION] | prune ${REMOTE_FLAGS_USAGE} [--lock-wait S] [-H|--skip-hooks]\n  --build: the farm builds what a host has no artifact for (the checkout's origin, or an upload of the commit), and the deploy waits for it\n  -H, --skip-hooks: run none of the hooks in hooks_path (xamal docs hooks)\n  --force: deploy a version a watched rollout marked failed\n  --resume: continue the last deploy on the hosts where its version is not live yet`;

/** deploy's flags parsed as the command parses them (the GitHub Actions example's test reads its deploy line with it). */
export const parseDeployFlags = (args: string[]) => parseFlags(args, FLAGS, USAGE);

/** How long `deploy --build` waits for the builds it asked for. */
const BUILD_WAIT_MS = 3_600_000;

/** The app checkout's commit: the default version, as Kamal does. */
async function gitVersion(exec: LocalExecutor): Promise<string> {
  const r = await exec.run({ argv: ['git', 'rev-parse', 'HEAD'], timeoutMs: 10_000 });
  if (r.code !== 0) throw new XamalError('usage', 'no --version given and this directory is not a git checkout (git rev-parse HEAD failed)');
  return r.stdout.trim();
}

/**
 * What a resolve depends on in a fingerprint (not the host's name or kernel): hosts alike in these
 * get the same answer, so a fleet of identical servers asks the farm once.
 */
export function resolveKey(host: HostFingerprint): string {
  const { hostname: _h, kernel: _k, libraries, ...rest } = host;
  return JSON.stringify({ ...rest, libraries: [...libraries].sort() });
}

/** The checkout's `origin` URL and the version as a full commit when git knows it (for the build line of a missing artifact). */
async function checkoutFacts(exec: LocalExecutor, version: string): Promise<{ git: string | undefined; version: string }> {
  const out = async (argv: string[]) => {
    const r = await exec.run({ argv, timeoutMs: 10_000 }).catch(() => undefined);
    return r?.code === 0 ? r.stdout.trim() || undefined : undefined;
  };
  const git = await out(['git', 'remote', 'get-url', 'origin']);
  const commit = await out(['git', 'rev-parse', '--verify', '--quiet', `${version}^{commit}`]);
  return { git, version: commit ?? version };
}

/** `deploy --build`: what the deploy says while the farm builds, and how long it waits. */
export interface BuildOnMiss {
  say: (line: string) => void;
  timeoutMs?: number;
  pollMs?: number;
}

/**
 * `deploy --build`: asks the farm for the artifact a host has none of — the checkout's origin at the
 * version, or (no origin) the commit uploaded — and follows the build to its end, saying each phase.
 */
async function buildForHost(client: FarmClient, r: { app: string; version: string; mixEnv: string; target: string | TargetSelector | undefined; host: HostFingerprint }, exec: LocalExecutor, b: BuildOnMiss): Promise<void> {
  const facts = await checkoutFacts(exec, r.version);
  const full = CommitSchema.safeParse(facts.version).success;
  let tenths = -1;
  const uploaded = (sent: number, total: number) => {
    const now = Math.floor((sent / total) * 10);
    if (now !== tenths) b.say(`upload of the checkout: ${(tenths = now) * 10}% of ${total} bytes`);
  };
  const source = facts.git ? { git: facts.git, ...(full ? { commit: facts.version } : { ref: facts.version }) } : await uploadCheckout(client, '.', facts.version, uploaded, exec);
  const submitted = await client.submit({ app: r.app, source, targets: [hostTarget(r.target, r.host)], mixEnv: r.mixEnv });
  const { builds, unresolved } = submitted.body;
  if (builds.length === 0) throw new XamalError('unsupported', `the farm cannot build ${r.app} ${r.version} for this host: ${unresolved.flatMap((u) => u.reasons).join('; ') || 'no target'}`);
  let said = '';
  const final = await followBuilds(client, builds, (build, st) => {
    const line = `build ${build.tuple}: ${st.state}${st.phase && st.state !== 'completed' ? ` (${st.phase})` : ''}`;
    if (line !== said) b.say((said = line));
  }, b.timeoutMs ?? BUILD_WAIT_MS, b.pollMs);
  for (const build of builds) {
    const st = final.get(build.id)!;
    if (st.state === 'failed') {
      const report = failureReport(build.tuple, st.failedReason, await client.logs(build.id).catch(() => ''));
      throw new XamalError('build_failed', `the farm's build of ${r.app} ${r.version} for this host failed\n${report}`);
    }
  }
}

/**
 * The farm as the deploy's artifact source: resolve by the host's fingerprint, each artifact
 * verified against deploy.yml's keys (deployer/trust.ts), then a short-lived link. When the farm has no artifact the host runs, the error ends with the `xamal build` line that
 * asks for one; with `build` (deploy --build) the farm is asked to build it and the resolve is tried
 * again once it is done.
 */
export function farmArtifacts(ctx: RemoteContext, version: string, exec: LocalExecutor, options: { build?: BuildOnMiss; client?: FarmClient; say?: (line: string) => void; warn?: (line: string) => void } = {}): ArtifactSource | undefined {
  const f = ctx.config.farm;
  if (!f) return undefined;
  const token = ctx.secrets.get(f.tokenSecret)?.reveal() ?? ctx.env[f.tokenSecret];
  if (!token) throw new XamalError('usage', `farm: no token: set ${f.tokenSecret} in .xamal/secrets or the environment`);
  const client = options.client ?? farmClient(f.url, token);
  const app = ctx.config.release.name;
  // The release deploy.yml names is the farm's app; its MIX_ENV picks which build of a commit.
  const mixEnv = ctx.config.release.mixEnv;
  const selector = typeof f.target === 'object' ? (f.target as TargetSelector) : undefined;
  const answers = new Map<string, Promise<{ tuple: string; sha256: string }>>();
  return {
    resolve(_host: string, host: HostFingerprint) {
      // Hosts alike ask once (and, with --build, get one build).
      const key = typeof f.target === 'string' ? f.target : resolveKey(host);
      let answer = answers.get(key);
      if (!answer) {
        const ask = async () => {
          if (typeof f.target === 'string') return { tuple: f.target, sha256: (await client.downloadLink(app, version, f.target, { mixEnv })).sha256 };
          const a = await client.resolve({ app, version, host, mixEnv, ...(selector ? { selector } : {}) });
          return { tuple: a.artifact.tuple, sha256: a.artifact.sha256 };
        };
        const build = options.build;
        answer = ask().catch(async (err: unknown) => {
          if (!isXamalError(err) || err.code !== 'not_found') throw err;
          if (build) {
            build.say(`${_host}: the farm has no artifact of ${app} ${version} for this host; building it`);
            await buildForHost(client, { app, version, mixEnv, target: f.target, host }, exec, build);
            return ask();
          }
          const line = buildRequestLine({ farmUrl: f.url, app, ...(await checkoutFacts(exec, version)), target: f.target, host, mixEnv });
          throw new XamalError('not_found', `${err.message}\nto build one for this host: ${line}`, { cause: err });
        });
        // A failed answer is not kept: the next host asks again.
        answer.catch(() => answers.delete(key));
        answers.set(key, answer);
      }
      return answer;
    },
    verify: artifactVerifier(client, f.publicKeys, { app, version, mixEnv }, options.say ?? ctx.say ?? (() => {}), options.warn ?? options.say ?? ctx.say),
    link: (tuple) => client.downloadLink(app, version, tuple, { mixEnv }),
  };
}

type Verb = 'deploy' | 'redeploy' | 'rollback' | 'prune' | 'boot';

/** What each verb's --help says beyond the table's summary. */
const VERB_HELP: Record<Verb, Omit<CommandHelp, 'flags'>> = {
  deploy: {
    usage: `xamal deploy [--version VERSION] [--build] [--canary PERCENT] [--force] [--resume] [--lock-wait SECONDS] ${REMOTE_FLAGS_USAGE}`,
    description:
      "Runs the hooks at their moments (xamal docs hooks), takes the deploy lock on the primary host, asks the farm for the artifact that runs on each kind of host (by its fingerprint), verifies each artifact before any host pulls it (its signature by farm.public_key and its provenance, as xamal verify: a failure stops the deploy with nothing changed, exit 12), and on each host: pulls the tarball by a short-lived link, checks the sha256 of the signed manifest, boots it in the idle slot, waits for it to be healthy, and moves Caddy's traffic to it. The post-deploy hook runs when every host succeeded.\n\nWith rollout.watch in deploy.yml, the new version is then watched through Caddy on every host for that window (its health path, and with rollout.max_5xx_percent its share of 5xx answers, counted from the app's Caddy access log); when it fails, the previous version is switched back by itself and the new one is marked failed on the hosts (a later deploy of it needs --force), exit 13. --resume continues the last deploy (its version, recorded on the hosts) on the hosts where it is not live yet, leaving the others alone.\n\nExit code: 0 when every host succeeded, 12 when an artifact failed verification, 13 when a watched rollout was rolled back, else the kind of the failures (see xamal help).",
    examples: [
      ['xamal deploy', "Deploy the checkout's commit to every host"],
      ['xamal deploy -d staging --version v1.4.2', 'Deploy a tag to the hosts of config/deploy.staging.yml'],
      ['xamal deploy --build', 'Let the farm build the commit for hosts it has no artifact for'],
      ['xamal deploy --canary 10', "Boot the checkout's commit beside the live version and give it 10% of new sessions (xamal canary status, promote, abort)"],
      ['xamal deploy --hosts web1 --dry-run', 'Print the steps a deploy to web1 would run'],
      ['xamal deploy --resume', 'Continue the last deploy on the hosts it did not finish'],
      ['xamal deploy --version v1.4.2 --force', 'Deploy v1.4.2 although a watched rollout marked it failed'],
    ],
  },
  redeploy: {
    usage: `xamal redeploy [--version VERSION] [--build] [--lock-wait SECONDS] ${REMOTE_FLAGS_USAGE}`,
    examples: [['xamal redeploy --version v1.4.2', 'Deploy v1.4.2 again, the same zero-downtime way']],
  },
  rollback: {
    usage: `xamal rollback [VERSION] [--lock-wait SECONDS] ${REMOTE_FLAGS_USAGE}`,
    description: 'VERSION must be a release the hosts still keep (xamal app releases); no farm is asked and no release_command runs.',
    examples: [
      ['xamal rollback', 'Back to the release before the live one'],
      ['xamal rollback v1.4.1 -r web', 'Back to v1.4.1 on the hosts of the web role'],
    ],
  },
  prune: {
    usage: `xamal prune [--lock-wait SECONDS] ${REMOTE_FLAGS_USAGE}`,
    examples: [['xamal prune --dry-run', 'Print what would be removed']],
  },
  boot: {
    usage: `xamal app boot [--version VERSION] [--lock-wait SECONDS] ${REMOTE_FLAGS_USAGE}`,
    examples: [['xamal app boot', 'Boot the live release again, blue/green']],
  },
};

/** The deploy verbs' flags (for `app boot`'s help too). */
export const DEPLOY_VERB_FLAGS: FlagTable = FLAGS;

/** One module for the four verbs; the table loads it once per verb. */
export function forVerb(verb: Verb): CliCommand {
  return { help: { ...VERB_HELP[verb], flags: FLAGS }, run: (args, io) => command.run([verb, ...args], io) };
}

export type DeployValues = ReturnType<typeof parseFlags<typeof FLAGS>>['values'];

/**
 * The version a verb deploys when it can be known without a host: rollback's argument, --version,
 * else the checkout's commit for deploy/redeploy. Undefined when the hosts say it (rollback with no
 * VERSION: the idle slot's release; app boot with no --version: current).
 */
async function versionBeforeConnect(verb: Verb, positionals: readonly string[], values: DeployValues, exec: LocalExecutor): Promise<string | undefined> {
  if (verb === 'rollback') return positionals[0];
  if (verb === 'boot') return values.version;
  return values.version ?? (await gitVersion(exec));
}

/** `--lock-wait S` as seconds, checked. */
function lockWaitOf(values: DeployValues): number | undefined {
  if (values['lock-wait'] === undefined) return undefined;
  const s = Number(values['lock-wait']);
  if (!(s >= 0)) throw usageError('--lock-wait: expected seconds >= 0', USAGE);
  return s;
}

const command: Pick<CliCommand, 'run'> = {
  async run(argv, io) {
    const [verb, ...args] = argv as [Verb, ...string[]];
    const { positionals, values } = parseFlags(args, FLAGS, USAGE);
    if (values.canary !== undefined && verb !== 'deploy' && verb !== 'redeploy') throw usageError('--canary: only deploy and redeploy start a canary', USAGE);
    // Checked before any host is contacted.
    const percent = values.canary === undefined ? undefined : checkCanaryPercent(values.canary);
    let redact = (l: string) => l;
    const say = (l: string) => {
      if (!values.quiet) io.err(redact(l));
    };
    const remote = await openRemote(values, { command: verb === 'boot' ? 'app boot' : verb, secrets: true, say });
    redact = (l) => remote.ctx.secrets.redact(l);
    const { ctx } = remote;
    const progress = values.quiet ? undefined : progressFor(io);
    if (progress) ctx.step = (host, step) => progress.update(host, `${host}: ${step}`);
    try {
      if (verb === 'prune') {
        if (positionals.length) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`, USAGE);
        if (values.build) throw usageError('--build: only deploy and redeploy build', USAGE);
        const out = await withLock(ctx, { message: 'prune' }, () => pruneFlow(ctx));
        for (const o of out) io.out(o.ok ? `${o.host}: removed ${o.value.length ? o.value.join(' ') : 'nothing'}` : `${o.host}: FAILED ${ctx.secrets.redact(o.error.message)}`);
        printDryRun(io, remote);
        return exitCodeForOutcomes(out);
      }
      if (percent !== undefined) return await canaryVerb(verb, positionals, values, remote, io, { percent, say, warn: (l) => io.err(redact(l)), done: () => progress?.end() });
      // Warnings (an unpinned farm key, an unsigned artifact) are said even with --quiet.
      const result = await deployVerb(verb, positionals, values, remote, say, (l) => io.err(redact(l)));
      progress?.end();
      printDryRun(io, remote);
      const records = result.outcomes.map((o) =>
        o.ok ? { ...o.value, result: 'ok' as const, ms: o.ms, ...pruneFields(result.pruned.get(o.host), redact) } : { host: o.host, version: result.version, result: 'failed' as const, error: ctx.secrets.redact(o.error.message), ms: o.ms },
      );
      if (values.json) io.out(JSON.stringify({ command: verb, version: result.version, hosts: records, ...rolloutJson(result, redact) }, null, 2));
      else for (const r of records) io.out(r.result === 'ok' ? [describeRecord(r as HostDeployRecord & { ms: number }), prunedWords(result.pruned.get(r.host), redact)].filter(Boolean).join('; ') : `${r.host}: FAILED ${(r as { error: string }).error}`);
      if (!values.json) for (const l of rolloutLines(result, redact)) io.out(l);
      say(summary(result.outcomes));
      return result.rollout?.failed ? exitCodeFor('rolled_back') : exitCodeForOutcomes(result.outcomes);
    } catch (err) {
      if (isXamalError(err)) throw new XamalError(err.code, ctx.secrets.redact(err.message), { cause: err });
      throw err;
    } finally {
      await remote.close();
    }
  },
};

/**
 * deploy, redeploy, rollback and app boot, with their hooks at Kamal's moments: pre-connect before
 * the first connection; pre-build before the farm is asked (deploy, redeploy); with the lock held,
 * pre-deploy (not app boot), then per boot group pre-app-boot, post-app-boot, pre-caddy-switch,
 * post-caddy-switch (the flow); post-deploy once every host succeeded (not app boot). -H or
 * --dry-run: no hook runs.
 */
export async function deployVerb(verb: Exclude<Verb, 'prune'>, positionals: readonly string[], values: DeployValues, remote: Remote, say: (l: string) => void, warn: (l: string) => void = say): Promise<VerbResult> {
  const { ctx } = remote;
  const { config, targets } = ctx;
  const exec = new LocalExecutor(ctx.env as NodeJS.ProcessEnv);
  const dry = remote.recording !== undefined;
  const rollback = verb === 'rollback' || verb === 'boot';
  const t0 = Date.now();
  // rollback and `app boot` boot a release the hosts already have: no farm, no release_command.
  if (positionals.length > (verb === 'rollback' ? 1 : 0)) throw usageError(`unexpected argument ${JSON.stringify(positionals.at(-1))}`, USAGE);
  if (values.build && rollback) throw usageError('--build: only deploy and redeploy build', USAGE);
  if (rollback && (values.force || values.resume)) throw usageError(`--${values.force ? 'force' : 'resume'}: only with deploy and redeploy`, USAGE);
  const lockWait = lockWaitOf(values);
  // --resume: the version is the last attempt's, read from the hosts after pre-connect.
  let version = values.resume ? values.version : await versionBeforeConnect(verb, positionals, values, exec);
  // The hosts the deploy acts on: all selected, or (--resume) those where the attempt's version is not live.
  let acting = ctx;
  const hook = hookRunner(
    () => ({
      service: config.service,
      version: version ?? '',
      hosts: acting.targets.hosts,
      roles: targets.roles,
      destination: ctx.destination,
      performer: ctx.performer,
      recordedAt: new Date(),
      ...(verb === 'boot' ? { command: 'app', subcommand: 'boot' } : { command: verb }),
    }),
    { root: process.cwd(), hooksPath: config.hooksPath, executor: exec, secrets: ctx.secrets, say, skip: dry || values['skip-hooks'] === true },
  );
  await hook('pre-connect');
  const resume = values.resume ? await resumePlan(ctx, primaryHost(config), version) : undefined;
  if (resume) {
    version = resume.attempt.version;
    acting = { ...ctx, targets: { ...targets, hosts: resume.act } };
    for (const h of [...resume.act, ...resume.done]) say(`${h}: ${resume.act.includes(h) ? 'resume' : 'leave alone'} (${resume.why[h]})`);
    if (!resume.act.length) return { outcomes: [], pruned: new Map(), version, resume };
  }
  version ??= verb === 'rollback' ? await previousVersion(ctx, targets.hosts[0]!) : await currentVersion(ctx, targets.hosts[0]!);
  const v = version;
  // A dry run asks no farm: it shows the verification every pulled artifact would go through first.
  if (dry && !rollback && config.farm) remote.recording!.note(verificationStep(config.farm.publicKeys, v));
  if (!rollback) await hook('pre-build');
  const result = await withLock(ctx, { message: `${verb} ${v}${resume ? ' (resume)' : ''}`, version: v, ...(lockWait !== undefined ? { waitS: lockWait } : {}) }, () =>
    deployLocked(acting, { verb, version: v, rollback, dry, values, exec, say, warn, resume, hook: (name, extra) => hook(name, { lock: true, ...extra }) }),
  );
  if (verb !== 'boot' && failed(result.outcomes).length === 0 && !result.rollout?.failed) await hook('post-deploy', { lock: false, runtime: (Date.now() - t0) / 1000 });
  return { ...result, version: v, ...(resume ? { resume } : {}) };
}

export type VerbResult = DeployResult & { version: string; pruned: Map<string, HostOutcome<string[]>>; rollout?: RolloutReport | undefined; resume?: ResumePlan };

interface LockedRun {
  verb: Exclude<Verb, 'prune'>;
  version: string;
  rollback: boolean;
  dry: boolean;
  values: DeployValues;
  exec: LocalExecutor;
  say: (l: string) => void;
  warn: (l: string) => void;
  resume: ResumePlan | undefined;
  hook: HookRunner;
}

/**
 * The part of a deploy that holds the lock: pre-deploy; a version a watched rollout marked failed
 * refused without --force; the attempt recorded on the hosts (what --resume continues); the deploy;
 * the watch (and its rollback); the prune; the attempt's outcome recorded.
 */
async function deployLocked(ctx: RemoteContext, r: LockedRun): Promise<Omit<VerbResult, 'version'>> {
  const { verb, version: v, rollback } = r;
  const primary = primaryHost(ctx.config);
  if (verb !== 'boot') await r.hook('pre-deploy');
  await refuseDuringCanary(ctx);
  if (!rollback) await refuseFailedVersion(ctx, v, primary, r.values.force === true);
  const attempt = verb === 'boot' ? undefined : (r.resume?.attempt ?? { version: v, time: ctx.clock.now().toISOString(), performer: ctx.performer, command: verb, hosts: [...ctx.targets.hosts], roles: [...ctx.targets.roles] });
  if (attempt && !r.resume) await writeAttempt(ctx, primary, attempt, attempt.hosts);
  r.say(`${verb} ${v} to ${summaryOfTargets(ctx.targets.hosts)}`);
  const artifacts = rollback || r.dry ? undefined : farmArtifacts(ctx, v, r.exec, { say: r.say, warn: r.warn, ...(r.values.build ? { build: { say: r.say } } : {}) });
  const deployed = await deployFlow(ctx, { version: v, rollback, hooks: r.hook, ...(artifacts ? { artifacts } : {}) });
  // A dry run watches nothing: its answers are assumed, not seen.
  const rollout = rollback || r.dry ? undefined : await watchRollout(ctx, v, deployed.outcomes);
  // As Kamal, a deploy prunes old releases where it went live, still holding the lock; rollback and app boot do not.
  const pruned = rollback ? new Map<string, HostOutcome<string[]>>() : await pruneAfterDeploy(ctx, deployed.outcomes);
  if (attempt) await writeAttempt(ctx, primary, { ...attempt, updated: ctx.clock.now().toISOString(), outcome: attemptOutcome(ctx, deployed.outcomes, rollout, r.resume) }, ctx.targets.hosts);
  return { ...deployed, pruned, rollout };
}

/** The deploy record's (`--json`) rollout and resume parts: the watch, the rollback and its hosts, the failed mark; the hosts a resume acted on. */
function rolloutJson(r: VerbResult, redact: (t: string) => string): Record<string, unknown> {
  const ro = r.rollout;
  const rollback = ro?.rollback && {
    to: ro.rollback.to,
    none: ro.rollback.none,
    hosts: ro.rollback.outcomes.map((o) => (o.ok ? { host: o.host, result: 'ok', version: o.value.version, roles: o.value.roles, ms: o.ms } : { host: o.host, result: 'failed', error: redact(o.error.message), ms: o.ms })),
  };
  return {
    ...(ro ? { rollout: { watch: ro.watch, ...(rollback ? { rollback } : {}), ...(ro.failed ? { failed: ro.failed } : {}) } } : {}),
    ...(r.resume ? { resume: { of: r.resume.attempt, acted: r.resume.act, untouched: r.resume.done, why: r.resume.why } } : {}),
  };
}

/** What the watch found and what the rollback did, for people; and which hosts a resume acted on. */
function rolloutLines(r: VerbResult, redact: (t: string) => string): string[] {
  const out: string[] = [];
  if (r.resume) out.push(`resume of ${r.resume.attempt.version}: acted on ${r.resume.act.join(', ') || 'no host'}; left alone ${r.resume.done.join(', ') || 'no host'}`);
  const ro = r.rollout;
  if (!ro) return out;
  const w = ro.watch;
  if (w.result === 'passed') return [...out, `watch: passed (${w.checks} checks on ${w.hosts.length} host${w.hosts.length === 1 ? '' : 's'} in ${w.elapsedS} s)`];
  out.push(`watch: FAILED after ${w.elapsedS} s: ${redact(w.reason ?? '')}`);
  for (const o of ro.rollback?.outcomes ?? []) out.push(o.ok ? `${o.host}: rolled back to ${o.value.version}` : `${o.host}: rollback FAILED ${redact(o.error.message)}`);
  for (const h of ro.rollback?.none ?? []) out.push(`${h}: nothing to roll back to; it keeps ${r.version}`);
  if (ro.failed) out.push(`${r.version} is marked failed on the hosts: a deploy of it needs --force`);
  return out;
}

/** What a dry run records for the verification a deploy does before any host pulls. */
export function verificationStep(publicKeys: readonly string[], version: string): string {
  const keys = publicKeys.length ? `deploy.yml's farm key${publicKeys.length > 1 ? 's' : ''} ${publicKeys.map((k) => keyIdOf(k)).join(', ')}` : "the farm's own keys (GET /v1/keys; deploy.yml pins none)";
  return `verify each artifact before any host pulls it: manifest signature, provenance (signed, about the tarball, from commit ${version}) and SBOM sha256, against ${keys}`;
}

/**
 * `deploy --canary P`: hooks pre-connect, pre-build and (lock held) pre-deploy as a deploy runs them;
 * the canary on the primary role's hosts with pre-app-boot and post-app-boot around its boot
 * (deployer/flows/canary.ts). No post-deploy: nothing is deployed until `canary promote`.
 */
async function canaryVerb(verb: Verb, positionals: readonly string[], values: DeployValues, remote: Remote, io: Io, o: { percent: number; say: (l: string) => void; warn: (l: string) => void; done: () => void }): Promise<number> {
  const { ctx } = remote;
  if (positionals.length) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`, USAGE);
  const exec = new LocalExecutor(ctx.env as NodeJS.ProcessEnv);
  const dry = remote.recording !== undefined;
  const lockWait = lockWaitOf(values);
  const version = values.version ?? (await gitVersion(exec));
  const hook = hookRunner(
    () => ({ service: ctx.config.service, version, hosts: ctx.targets.hosts, roles: ctx.targets.roles, destination: ctx.destination, performer: ctx.performer, recordedAt: new Date(), command: verb }),
    { root: process.cwd(), hooksPath: ctx.config.hooksPath, executor: exec, secrets: ctx.secrets, say: o.say, skip: dry || values['skip-hooks'] === true },
  );
  await hook('pre-connect');
  await hook('pre-build');
  const outcomes = await withLock(ctx, { message: `${verb} --canary ${o.percent} ${version}`, version, ...(lockWait !== undefined ? { waitS: lockWait } : {}) }, async () => {
    await hook('pre-deploy', { lock: true });
    o.say(`canary ${version} at ${o.percent}% of new sessions on the ${ctx.config.primaryRole} hosts`);
    const artifacts = dry ? undefined : farmArtifacts(ctx, version, exec, { say: o.say, warn: o.warn, ...(values.build ? { build: { say: o.say } } : {}) });
    return canaryDeployFlow(ctx, { version, percent: o.percent, hooks: hook, ...(artifacts ? { artifacts } : {}) });
  });
  o.done();
  printDryRun(io, remote);
  const redact = (t: string) => ctx.secrets.redact(t);
  if (values.json) {
    io.out(JSON.stringify({ command: verb, version, canary: o.percent, hosts: outcomes.map((x) => (x.ok ? { host: x.host, result: 'ok', ms: x.ms, ...x.value.canary, tuple: x.value.tuple, pulled: x.value.pulled } : { host: x.host, result: 'failed', error: redact(x.error.message), ms: x.ms })) }, null, 2));
  } else {
    for (const x of outcomes) io.out(x.ok ? `${x.host}: canary ${version} in ${x.value.canary.slot} beside ${x.value.canary.live.version} (${x.value.canary.live.slot}): ${o.percent}% of new sessions` : `${x.host}: FAILED ${redact(x.error.message)}`);
    if (outcomes.some((x) => x.ok)) o.say('then: xamal canary status | promote | abort');
  }
  o.say(summary(outcomes));
  return exitCodeForOutcomes(outcomes);
}

function summaryOfTargets(hosts: readonly string[]): string {
  return hosts.length <= 3 ? hosts.join(', ') : `${hosts.length} hosts`;
}

function describeRecord(r: HostDeployRecord & { ms: number }): string {
  const roles = r.roles.map((x) => `${x.role}→${x.live}`).join(' ');
  return `${r.host}: ${r.version}${r.tuple ? ` (${r.tuple})` : ''} ${roles}${r.pulled ? ' pulled' : ''} in ${(r.ms / 1000).toFixed(1)} s`;
}

export default command;
