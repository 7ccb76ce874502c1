import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../api/app.ts';
import { farmConfig } from '../../api/config.ts';
import { listen } from '../../api/server.ts';
import { parseGithubHooks } from '../../api/routes/github.ts';
import { storeBackedServices } from '../../api/services/store-backed.ts';
import { healthService } from '../../api/services/health.ts';
import { builderConfig } from '../../builder/config.ts';
import { buildImage } from '../../builder/images/build.ts';
import { hostArch, imageBuildDeps } from '../../builder/images/context.ts';
import { buildDeps } from '../../builder/deps.ts';
import { startBuildWorkers, type BuildResult } from '../../builder/worker.ts';
import { LocalExecutor, parseProbeOutput, PROBE_KEY, probeCommand, sourceKey, XamalError, type Executor } from '../../core/index.ts';
import { sourceVersion } from '../../core/contracts/build-job.ts';
import { artifactGeneration, buildQueue, buildQueueEvents, buildQueues, enqueueBuild, queueInspector, redisClient, type QueueSettings } from '../../queue/index.ts';
import { buildService } from '../../api/services/builds.ts';
import { readLock } from '../../images/lock.ts';
import { COMMITTED_LOCK_PATH } from '../../images/catalog.ts';
import { checkReady } from '../../localservices/ready.ts';
import { PROJECT_ROOT, serviceSpec, servicesDown, servicesUp, type ServiceName, type ServicesConfig } from '../../localservices/index.ts';
import { storeConfig } from '../../store/config.ts';
import { openStore } from '../../store/open.ts';
import type { ObjectStore } from '../../store/store.ts';
import { CODENAMES, isDebianSuite, type DebianSuite } from '../../images/distros.ts';
import { parseFlags } from '../args.ts';
import type { CliCommand, Io } from '../io.ts';

const USAGE = 'xamal farm up [--host 127.0.0.1] [--port 7420] [--no-example]';
/** What the farm needs on embedded defaults; artifacts stay on local disk unless S3 is configured. */
const EMBEDDED: ServiceName[] = ['redis', 'dockerd', 'registry'];

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

const command: CliCommand = {
  async run(args, io) {
    const { values } = parseFlags(args, { host: { type: 'string' }, port: { type: 'string' }, 'no-example': { type: 'boolean' } }, USAGE);
    const fc = farmConfig();
    const bc = builderConfig();
    const sc = bc.services;
    const host = values.host ?? fc.host;
    const listenPort = port(values.port, fc.port);
    const say = (l: string) => io.err(l);
    const exec = new LocalExecutor();

    const up = await servicesUp(sc, EMBEDDED, say);
    let workers: { close(): Promise<void> } | undefined;
    const closers: (() => Promise<void>)[] = [];
    try {
      const { token, source, created } = await adminToken(fc.token, sc);
      const store = await openStore(storeConfig(sc.stateDir));
      const checks: Record<string, () => Promise<boolean>> = {
        ...Object.fromEntries(EMBEDDED.map((n) => [n, () => checkReady(serviceSpec(sc, n).ready)])),
        // Any answer (even "not there") proves the store is reachable; an error means it is not.
        store: async () => (await store.exists(PROBE_KEY), true),
      };
      const settings: QueueSettings = { redisUrl: bc.redisUrl, prefix: bc.queuePrefix };
      const queues = buildQueues(settings, ['x86_64', 'aarch64']);
      closers.push(() => queues.close());
      // Rate-limit counters live in the shared Redis, so every API process of the farm counts together.
      const redis = redisClient(settings);
      // GET /metrics and the /admin/queues board read the same platform queues.
      const inspector = queueInspector(settings, ['x86_64', 'aarch64']);
      closers.push(() => inspector.close());
      closers.push(async () => void (await redis.quit().catch(() => redis.disconnect())));
      // Workers move the artifact generation; while it stands still lookups use kept listings.
      const generation = artifactGeneration(settings);
      closers.push(() => generation.close());
      const locks = async () => [await readLock(COMMITTED_LOCK_PATH), await readLock(bc.localLockPath)];
      const githubHooks = fc.githubHooksFile ? parseGithubHooks(JSON.parse(await readFile(fc.githubHooksFile, 'utf8'))) : undefined;
      const app = await buildApp({
        token,
        tokens: fc.tokens,
        ...(githubHooks ? { githubHooks } : {}),
        services: { health: healthService(checks), ...storeBackedServices(store, generation), builds: buildService({ queues, store, locks, exec }), queues: inspector },
        logLevel: fc.logLevel,
        downloads: fc.downloads,
        rateLimit: { ...fc.rateLimit, redis, prefix: bc.queuePrefix },
      });
      const url = await listen(app, host, listenPort);
      io.out(`farm API: ${url} (GET ${url}/v1/health)`);
      io.out(`admin token: ${created ? `${token} (new, stored in ${source})` : `from ${source}`}`);

      const arch = hostArch();
      workers = await startBuildWorkers(settings, [arch], { ...(await buildDeps(bc)), store }, bc.concurrency);
      io.out(`worker: building for ${arch}`);

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
      io.err(`${sig}: stopping`);
      await app.close();
    } finally {
      await workers?.close();
      for (const close of closers) await close();
      if (up.started.length) await servicesDown(sc, up.started, say);
    }
    return 0;
  },
};
export default command;
