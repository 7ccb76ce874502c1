import { LocalExecutor, XamalError, isXamalError, type HostFingerprint, type TargetSelector } from '../../core/index.ts';
import { buildRequestLine, hostTarget } from '../../deployer/build-request.ts';
import { CommitSchema } from '../../core/contracts/build-job.ts';
import { farmClient, type FarmClient } from '../../deployer/farm-client.ts';
import { followBuilds, uploadCheckout } from '../../deployer/farm-builds.ts';
import { failureReport } from './build.ts';
import type { RemoteContext } from '../../deployer/flows/context.ts';
import { currentVersion, deployFlow, previousVersion, pruneFlow, type ArtifactSource, type HostDeployRecord } from '../../deployer/flows/deploy.ts';
import { withLock } from '../../deployer/flows/lock.ts';
import { pruneAfterDeploy, pruneFields, prunedWords } from '../../deployer/flows/prune.ts';
import { exitCodeForOutcomes, failed, summary } from '../../deployer/flows/parallel.ts';
import { localPerformer, runHook, type HookDetails, type HookName } from '../../deployer/hooks.ts';
import { parseFlags, usageError } from '../args.ts';
import { progressFor, type CliCommand } from '../io.ts';
import { openRemote, printDryRun, REMOTE_FLAGS, REMOTE_FLAGS_USAGE } from '../remote.ts';

const FLAGS = {
  ...REMOTE_FLAGS,
  version: { type: 'string' },
  'lock-wait': { type: 'string' },
  build: { type: 'boolean' },
} as const;

const USAGE = `xamal deploy|redeploy [--version V] [--build] | rollback [VERSION] | prune ${REMOTE_FLAGS_USAGE} [--lock-wait S]\n  --build: the farm builds what a host has no artifact for (the checkout's origin, or an upload of the commit), and the deploy waits for it`;

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
 * The farm as the deploy's artifact source: resolve by the host's fingerprint, then a short-lived
 * link. When the farm has no artifact the host runs, the error ends with the `xamal build` line that
 * asks for one; with `build` (deploy --build) the farm is asked to build it and the resolve is tried
 * again once it is done.
 */
export function farmArtifacts(ctx: RemoteContext, version: string, exec: LocalExecutor, options: { build?: BuildOnMiss; client?: FarmClient } = {}): ArtifactSource | undefined {
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
    link: (tuple) => client.downloadLink(app, version, tuple, { mixEnv }),
  };
}

type Verb = 'deploy' | 'redeploy' | 'rollback' | 'prune' | 'boot';

/** One module for the four verbs; the table loads it once per verb. */
export function forVerb(verb: Verb): CliCommand {
  return { run: (args, io) => command.run([verb, ...args], io) };
}

const command: CliCommand = {
  async run(argv, io) {
    const [verb, ...args] = argv;
    const { positionals, values } = parseFlags(args, FLAGS, USAGE);
    let redact = (l: string) => l;
    const say = (l: string) => {
      if (!values.quiet) io.err(redact(l));
    };
    const remote = await openRemote(values, { command: verb === 'boot' ? 'app boot' : verb!, secrets: true, say });
    redact = (l) => remote.ctx.secrets.redact(l);
    const { ctx } = remote;
    const { config, secrets, targets, performer } = ctx;
    const progress = values.quiet ? undefined : progressFor(io);
    if (progress) ctx.step = (host, step) => progress.update(host, `${host}: ${step}`);
    const env = ctx.env;
    const root = process.cwd();
    const exec = new LocalExecutor(env as NodeJS.ProcessEnv);
    const dry = remote.recording !== undefined;
    const t0 = Date.now();
    try {
      if (verb === 'prune') {
        if (positionals.length) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`, USAGE);
        const out = await withLock(ctx, { message: 'prune' }, () => pruneFlow(ctx));
        for (const o of out) io.out(o.ok ? `${o.host}: removed ${o.value.length ? o.value.join(' ') : 'nothing'}` : `${o.host}: FAILED ${secrets.redact(o.error.message)}`);
        printDryRun(io, remote);
        return exitCodeForOutcomes(out);
      }
      // rollback and `app boot` boot a release the hosts already have: no farm, no release_command.
      const rollback = verb === 'rollback' || verb === 'boot';
      if (positionals.length > (verb === 'rollback' ? 1 : 0)) throw usageError(`unexpected argument ${JSON.stringify(positionals.at(-1))}`, USAGE);
      const version =
        verb === 'rollback'
          ? (positionals[0] ?? (await previousVersion(ctx, targets.hosts[0]!)))
          : verb === 'boot'
            ? (values.version ?? (await currentVersion(ctx, targets.hosts[0]!)))
            : (values.version ?? (await gitVersion(exec)));
      const details = (extra: Partial<HookDetails> = {}): HookDetails => ({
        service: config.service,
        version,
        hosts: targets.hosts,
        roles: targets.roles,
        destination: ctx.destination,
        performer,
        recordedAt: new Date(),
        ...(verb === 'boot' ? { command: 'app', subcommand: 'boot' } : { command: verb! }),
        ...extra,
      });
      const hook = (name: HookName, extra?: Partial<HookDetails>) => runHook(name, details(extra), { root, hooksPath: config.hooksPath, executor: exec, secrets, say });
      if (!dry) await hook('pre-connect');
      const lockWait = values['lock-wait'] !== undefined ? Number(values['lock-wait']) : undefined;
      if (lockWait !== undefined && !(lockWait >= 0)) throw usageError('--lock-wait: expected seconds >= 0', USAGE);
      const result = await withLock(ctx, { message: `${verb} ${version}`, version, ...(lockWait !== undefined ? { waitS: lockWait } : {}) }, async () => {
        if (!dry) await hook('pre-deploy', { lock: true });
        say(`${verb} ${version} to ${summaryOfTargets(targets.hosts)}`);
        if (values.build && (rollback || verb === 'prune')) throw usageError('--build: only deploy and redeploy build', USAGE);
        const artifacts = rollback || dry ? undefined : farmArtifacts(ctx, version, exec, values.build ? { build: { say } } : {});
        const deployed = await deployFlow(ctx, { version, rollback, ...(artifacts ? { artifacts } : {}) });
        // As Kamal, a deploy prunes old releases where it went live, still holding the lock; rollback and app boot do not.
        return { ...deployed, pruned: rollback ? new Map() : await pruneAfterDeploy(ctx, deployed.outcomes) };
      });
      progress?.end();
      const bad = failed(result.outcomes);
      if (!dry && bad.length === 0) await hook('post-deploy', { lock: false, runtime: (Date.now() - t0) / 1000 });
      printDryRun(io, remote);
      const records = result.outcomes.map((o) =>
        o.ok ? { ...o.value, result: 'ok' as const, ms: o.ms, ...pruneFields(result.pruned.get(o.host), redact) } : { host: o.host, version, result: 'failed' as const, error: secrets.redact(o.error.message), ms: o.ms },
      );
      if (values.json) io.out(JSON.stringify({ command: verb, version, hosts: records }, null, 2));
      else for (const r of records) io.out(r.result === 'ok' ? [describeRecord(r as HostDeployRecord & { ms: number }), prunedWords(result.pruned.get(r.host), redact)].filter(Boolean).join('; ') : `${r.host}: FAILED ${(r as { error: string }).error}`);
      say(summary(result.outcomes));
      return exitCodeForOutcomes(result.outcomes);
    } catch (err) {
      if (isXamalError(err)) throw new XamalError(err.code, secrets.redact(err.message), { cause: err });
      throw err;
    } finally {
      await remote.close();
    }
  },
};

function summaryOfTargets(hosts: readonly string[]): string {
  return hosts.length <= 3 ? hosts.join(', ') : `${hosts.length} hosts`;
}

function describeRecord(r: HostDeployRecord & { ms: number }): string {
  const roles = r.roles.map((x) => `${x.role}→${x.live}`).join(' ');
  return `${r.host}: ${r.version}${r.tuple ? ` (${r.tuple})` : ''} ${roles}${r.pulled ? ' pulled' : ''} in ${(r.ms / 1000).toFixed(1)} s`;
}

export default command;
