import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { farmConfig } from '../../api/config.ts';
import { loadCliPackage } from '../../api/cli-package.ts';
import { parseGithubHooks } from '../../api/routes/github.ts';
import { parseAppRegistry } from '../../api/schemas/apps.ts';
import { builderConfig } from '../../builder/config.ts';
import { buildImage } from '../../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../../builder/images/context.ts';
import type { BuildResult } from '../../builder/worker.ts';
import { createLogger, LocalExecutor, parseProbeOutput, probeCommand, sourceKey, XamalError, type Executor } from '../../core/index.ts';
import { sourceVersion } from '../../core/contracts/build-job.ts';
import { deployYmlKeyLines, keptSigningKey, SIGNING_KEY_SETTING, type SigningKey } from '../../core/signing-key-file.ts';
import { artifactSigner } from '../../builder/provenance.ts';
import { XAMAL_VERSION } from '../version.ts';
import { configuredBuildDeps, ensureEgressTools, farmLockPaths } from '../../farm/build-deps.ts';
import { buildSecretsKey, shutdownConfig } from '../../farm/config.ts';
import { startFarm, type Farm } from '../../farm/farm.ts';
import { buildQueue, buildQueueEvents, enqueueBuild, type QueueSettings } from '../../queue/index.ts';
import { checkReady } from '../../localservices/ready.ts';
import { PROJECT_ROOT, serviceSpec, servicesDown, servicesUp, type ServiceName, type ServicesConfig } from '../../localservices/index.ts';
import { storeConfig } from '../../store/config.ts';
import { openStore } from '../../store/open.ts';
import type { ObjectStore } from '../../store/store.ts';
import { CODENAMES, isDebianSuite, type DebianSuite } from '../../images/distros.ts';
import { readCatalog } from '../../images/catalog.ts';
import { preparableOn } from '../../images/preparable.ts';
import { readToolchainCatalog } from '../../images/toolchains.ts';
import { flagCommand } from '../args.ts';
import type { Io } from '../io.ts';

const USAGE = 'xamal farm up [--host 127.0.0.1] [--port 7420] [--no-example]';
/** What the farm needs on embedded defaults; artifacts stay on local disk unless S3 is configured. */
const EMBEDDED: ServiceName[] = ['redis', 'dockerd', 'registry'];

/**
 * The key artifacts are signed with: XAMAL_SIGNING_KEY_FILE, else the one kept in the state directory
 * (made on the first start, 0600), so a farm on embedded defaults signs too.
 */
async function signingKey(configured: SigningKey | undefined, c: ServicesConfig): Promise<{ key: SigningKey; source: string; created: boolean }> {
  if (configured) return { key: configured, source: SIGNING_KEY_SETTING, created: false };
  const path = join(c.stateDir, 'farm', 'signing-key.pem');
  const { key, created } = await keptSigningKey(path, `the farm's signing key (${SIGNING_KEY_SETTING} unset)`);
  return { key, source: path, created };
}

/** The admin token: from the environment, else the one stored in the state directory, else a new one. */
async function adminToken(envToken: string | undefined, c: ServicesConfig): Promise<{ token: string; source: string; created: boolean }> {
  if (envToken) return { token: envToken, source: 'XAMAL_FARM_TOKEN', created: false };
  const path = join(c.stateDir, 'farm', 'token');
  const stored = (await readFile(path, 'utf8').catch(() => '')).trim();
  if (stored) return { token: stored, source: path, created: false };
  await mkdir(join(c.stateDir, 'farm'), { recursive: true, mode: 0o700 });
  const token = randomBytes(24).toString('base64url');
  await writeFile(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return { token, source: path, created: true };
}

function port(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new XamalError('usage', `--port: expected an integer 0-65535, got ${JSON.stringify(value)}\nusage: ${USAGE}`);
  return n;
}

/** The Debian suite matching this machine (its own distro when it is one we build), else bookworm. */
async function localSuite(exec: Executor): Promise<DebianSuite> {
  const r = await exec.run(probeCommand());
  const fp = r.code === 0 ? parseProbeOutput(r.stdout) : undefined;
  const codename = fp?.distroCodename ?? '';
  return fp?.distro === 'debian' && isDebianSuite(codename) && CODENAMES[codename] ? codename : 'bookworm';
}

/** Uploads examples/hello as a source archive and builds it for this machine; resolves with the download path. */
async function buildExample(io: Io, exec: Executor, store: ObjectStore, settings: QueueSettings, tuple: string): Promise<{ path: string; result: BuildResult }> {
  const file = join(tmpdir(), `xamal-hello-${process.pid}.tar.gz`);
  try {
    const tar = await exec.run({
      argv: ['tar', '--exclude=./_build', '--exclude=./deps', '--numeric-owner', '-czf', file, '-C', join(PROJECT_ROOT, 'examples/hello'), '.'],
      label: 'pack examples/hello',
    });
    if (tar.code !== 0) throw new XamalError('external', `could not pack examples/hello: ${tar.stderr}`);
    const bytes = await readFile(file);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const key = sourceKey(sha256);
    await store.put(key, bytes, 'application/gzip');
    const arch = hostArch();
    const queue = buildQueue(settings, arch);
    const events = buildQueueEvents(settings, arch);
    try {
      const { id, job } = await enqueueBuild(queue, { app: 'hello', source: { kind: 'archive', key, sha256 }, target: tuple });
      io.out(`building examples/hello for ${tuple} (job ${id}) …`);
      const result = (await (await queue.getJob(id))!.waitUntilFinished(events, 1_800_000)) as BuildResult;
      return { path: `/v1/artifacts/hello/${sourceVersion(job.source)}/${tuple}/download`, result };
    } finally {
      await events.close();
      await queue.close();
    }
  } finally {
    await rm(file, { force: true });
  }
}

export default flagCommand({
  usage: USAGE,
  description: 'The admin token is XAMAL_FARM_TOKEN, else one stored in the state directory (made on the first start).',
  flags: {
    host: { type: 'string', valueName: 'ADDRESS', description: 'The address the API listens on', defaultText: 'XAMAL_FARM_HOST, else 127.0.0.1' },
    port: { type: 'string', valueName: 'PORT', description: 'The port the API listens on (0: any free one)', defaultText: 'XAMAL_FARM_PORT, else 7420' },
    'no-example': { type: 'boolean', description: 'Skip building examples/hello (and the builder image it needs) at start' },
  },
  examples: [
    ['xamal farm up', 'A farm on loopback that builds for this machine, examples/hello built first'],
    ['xamal farm up --host 0.0.0.0 --no-example', 'Listen on every interface; no example build'],
  ],
}, async ({ values }, io) => {
  const fc = farmConfig();
  const bc = builderConfig();
  const { drainMs } = shutdownConfig();
  const sc = bc.services;
  const say = (l: string) => io.err(l);
  const exec = new LocalExecutor();

  const up = await servicesUp(sc, EMBEDDED, say);
  let farm: Farm | undefined;
  try {
    const { token, source, created } = await adminToken(fc.token, sc);
    const signing = await signingKey(bc.signingKey, sc);
    await ensureEgressTools(bc, say);
    const store = await openStore(storeConfig(sc.stateDir));
    const settings: QueueSettings = { redisUrl: bc.redisUrl, prefix: bc.queuePrefix, lockMs: bc.lockMs };
    const githubHooks = fc.githubHooksFile ? parseGithubHooks(JSON.parse(await readFile(fc.githubHooksFile, 'utf8'))) : undefined;
    const apps = fc.appsFile ? parseAppRegistry(JSON.parse(await readFile(fc.appsFile, 'utf8'))) : undefined;
    if (!apps) say('no XAMAL_APPS_FILE: every build token may build and cancel every app, from any repository (README: Apps have owners)');
    const arch = hostArch();
    farm = await startFarm({
      settings,
      store,
      lockPaths: farmLockPaths(bc),
      drainMs,
      logger: createLogger({ name: 'farm' }),
      // API and worker in one process: a key of its own when the farm has none configured.
      secretsKey: buildSecretsKey() ?? randomBytes(32),
      api: {
        host: values.host ?? fc.host,
        port: port(values.port, fc.port),
        token,
        tokens: fc.tokens,
        ...(githubHooks ? { githubHooks, githubDeliveryTtlSeconds: fc.githubDeliveryTtlSeconds } : {}),
        gitUrls: fc.gitUrls,
        gitRemoteEnv: fc.gitRemoteEnv,
        ...(apps ? { apps } : {}),
        logLevel: fc.logLevel,
        downloads: fc.downloads,
        rateLimit: fc.rateLimit,
        maxStreamsPerToken: fc.maxStreamsPerToken,
        ...(fc.cliPackagePath ? { cliPackage: await loadCliPackage(fc.cliPackagePath) } : {}),
        queueArches: ['x86_64', 'aarch64'],
        checks: Object.fromEntries(EMBEDDED.map((n) => [n, () => checkReady(serviceSpec(sc, n).ready)])),
        // A request for this machine's builder while it is still being prepared is queued, not refused.
        preparable: preparableOn(await readCatalog(), readToolchainCatalog(), arch, bc.toolchainPrefer),
        signingKeys: { current: signing.key.publicKey, retired: fc.retiredKeys },
      },
      workers: { arches: [arch], concurrency: bc.concurrency, deps: configuredBuildDeps(bc, store, artifactSigner(signing.key, XAMAL_VERSION)) },
    });
    const url = farm.url!;
    io.out(`farm API: ${url} (GET ${url}/v1/health)`);
    io.out(`admin token: ${created ? `${token} (new, stored in ${source})` : `from ${source}`}`);
    io.out(`worker: building for ${arch}`);
    io.out(`signing key: ${signing.key.keyid} ${signing.created ? `(new, stored in ${signing.source})` : `from ${signing.source}`}; pin it in config/deploy.yml:`);
    io.out(deployYmlKeyLines(signing.key.publicKey));

    if (!values['no-example']) {
      const suite = await localSuite(exec);
      io.out(`preparing the ${suite} builder image for ${arch} (first time: debootstrap, about a minute) …`);
      const image = await buildImage(imageBuildDeps(bc, say), { suite, arch, flavour: 'builder' });
      const { path, result } = await buildExample(io, exec, store, settings, image.entry.tuple!);
      io.out(`built: ${result.tuple}${result.cached ? ' (already built)' : ''}`);
      io.out(`download: ${url}${path}  (Authorization: Bearer <admin token>; sha256 ${result.sha256})`);
    }
    io.out('serving; press Ctrl-C to stop');
    const sig = await io.interrupted();
    io.err(`${sig}: stopping (builds in flight get ${drainMs} ms to finish)`);
  } finally {
    const report = await farm?.close();
    if (report && !report.clean) io.err(`stopped after ${report.ms} ms; forced: ${report.forced.join(', ')}`);
    if (up.started.length) await servicesDown(sc, up.started, say);
  }
  return 0;
});
