import { LocalExecutor, XamalError, isXamalError, type HostFingerprint, type TargetSelector } from '../../core/index.ts';
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
import { hookRunner } from '../../deployer/hooks.ts';
import { artifactVerifier } from '../../deployer/trust.ts';
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
} as const satisfies FlagTable;

const USAGE = `xamal deploy|redeploy [--version V] [--build] [--canary PERCENT] | rollback [VERSION] | prune ${REMOTE_FLAGS_USAGE} [--lock-wait S] [-H|--skip-hooks]\n  --build: the farm builds what a host has no artifact for (the checkout's origin, or an upload of the commit), and the deploy waits for it\n  -H, --skip-hooks: run none of the hooks in hooks_path (xamal docs hooks)`;

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
    usage: `xamal deploy [--version VERSION] [--build] [--canary PERCENT] [--lock-wait SECONDS] ${REMOTE_FLAGS_USAGE}`,
    description:
      "Runs the hooks at their moments (xamal docs hooks), takes the deploy lock on the primary host, asks the farm for the artifact that runs on each kind of host (by its fingerprint), verifies each artifact before any host pulls it (its signature by farm.public_key and its provenance, as xamal verify: a failure stops the deploy with nothing changed, exit 12), and on each host: pulls the tarball by a short-lived link, checks the sha256 of the signed manifest, boots it in the idle slot, waits for it to be healthy, and moves Caddy's traffic to it. The post-deploy hook runs when every host succeeded.\n\nExit code: 0 when every host succeeded, else the kind of the failures (see xamal help).",
    examples: [
      ['xamal deploy', "Deploy the checkout's commit to every host"],
      ['xamal deploy -d staging --version v1.4.2', 'Deploy a tag to the hosts of config/deploy.staging.yml'],
      ['xamal deploy --build', 'Let the farm build the commit for hosts it has no artifact for'],
      ['xamal deploy --canary 10', "Boot the checkout's commit beside the live version and give it 10% of new sessions (xamal canary status, promote, abort)"],
      ['xamal deploy --hosts web1 --dry-run', 'Print the steps a deploy to web1 would run'],
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
      if (values.json) io.out(JSON.stringify({ command: verb, version: result.version, hosts: records }, null, 2));
      else for (const r of records) io.out(r.result === 'ok' ? [describeRecord(r as HostDeployRecord & { ms: number }), prunedWords(result.pruned.get(r.host), redact)].filter(Boolean).join('; ') : `${r.host}: FAILED ${(r as { error: string }).error}`);
      say(summary(result.outcomes));
      return exitCodeForOutcomes(result.outcomes);
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
export async function deployVerb(verb: Exclude<Verb, 'prune'>, positionals: readonly string[], values: DeployValues, remote: Remote, say: (l: string) => void, warn: (l: string) => void = say): Promise<DeployResult & { version: string; pruned: Map<string, HostOutcome<string[]>> }> {
  const { ctx } = remote;
  const { config, targets } = ctx;
  const exec = new LocalExecutor(ctx.env as NodeJS.ProcessEnv);
  const dry = remote.recording !== undefined;
  const rollback = verb === 'rollback' || verb === 'boot';
  const t0 = Date.now();
  // rollback and `app boot` boot a release the hosts already have: no farm, no release_command.
  if (positionals.length > (verb === 'rollback' ? 1 : 0)) throw usageError(`unexpected argument ${JSON.stringify(positionals.at(-1))}`, USAGE);
  if (values.build && rollback) throw usageError('--build: only deploy and redeploy build', USAGE);
  const lockWait = lockWaitOf(values);
  let version = await versionBeforeConnect(verb, positionals, values, exec);
  const hook = hookRunner(
    () => ({
      service: config.service,
      version: version ?? '',
      hosts: targets.hosts,
      roles: targets.roles,
      destination: ctx.destination,
      performer: ctx.performer,
      recordedAt: new Date(),
      ...(verb === 'boot' ? { command: 'app', subcommand: 'boot' } : { command: verb }),
    }),
    { root: process.cwd(), hooksPath: config.hooksPath, executor: exec, secrets: ctx.secrets, say, skip: dry || values['skip-hooks'] === true },
  );
  await hook('pre-connect');
  version ??= verb === 'rollback' ? await previousVersion(ctx, targets.hosts[0]!) : await currentVersion(ctx, targets.hosts[0]!);
  const v = version;
  // A dry run asks no farm: it shows the verification every pulled artifact would go through first.
  if (dry && !rollback && config.farm) remote.recording!.note(verificationStep(config.farm.publicKeys, v));
  if (!rollback) await hook('pre-build');
  const result = await withLock(ctx, { message: `${verb} ${v}`, version: v, ...(lockWait !== undefined ? { waitS: lockWait } : {}) }, async () => {
    if (verb !== 'boot') await hook('pre-deploy', { lock: true });
    await refuseDuringCanary(ctx);
    say(`${verb} ${v} to ${summaryOfTargets(targets.hosts)}`);
    const artifacts = rollback || dry ? undefined : farmArtifacts(ctx, v, exec, { say, warn, ...(values.build ? { build: { say } } : {}) });
    const deployed = await deployFlow(ctx, { version: v, rollback, hooks: (name, extra) => hook(name, { lock: true, ...extra }), ...(artifacts ? { artifacts } : {}) });
    // As Kamal, a deploy prunes old releases where it went live, still holding the lock; rollback and app boot do not.
    return { ...deployed, pruned: rollback ? new Map<string, HostOutcome<string[]>>() : await pruneAfterDeploy(ctx, deployed.outcomes) };
  });
  if (verb !== 'boot' && failed(result.outcomes).length === 0) await hook('post-deploy', { lock: false, runtime: (Date.now() - t0) / 1000 });
  return { ...result, version: v };
}

/** What a dry run records for the verification a deploy does before any host pulls. */
export function verificationStep(publicKeys: readonly string[], version: string): string {
  const keys = publicKeys.length ? `deploy.yml's farm key${publicKeys.length > 1 ? 's' : ''} ${publicKeys.map((k) => keyIdOf(k)).join(', ')}` : "the farm's own keys (GET /v1/keys; deploy.yml pins none)";
  return `verify each artifact before any host pulls it: manifest signature, provenance (signed, about the tarball, from commit ${version}) and SBOM sha256, against ${keys}`;
}

/**
 * `deploy --canary P`: hooks pre-connect, pre-build and (lock held) pre-deploy as a deploy runs them;
 * the canary on the primary role's hosts (deployer/flows/canary.ts). No post-deploy: nothing is
 * deployed until `canary promote`.
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
    return canaryDeployFlow(ctx, { version, percent: o.percent, ...(artifacts ? { artifacts } : {}) });
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
