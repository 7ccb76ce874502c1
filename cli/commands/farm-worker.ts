import { builderConfig } from '../../builder/config.ts';
import { artifactSigner } from '../../builder/provenance.ts';
import { missingSigningKey } from '../../core/signing-key-file.ts';
import { XAMAL_VERSION } from '../version.ts';
import { hostArch } from '../../builder/images/context.ts';
import { createLogger, normalizeArch, type Arch } from '../../core/index.ts';
import { configuredBuildDeps, ensureEgressTools, farmLockPaths } from '../../farm/build-deps.ts';
import { buildSecretsKey, shutdownConfig } from '../../farm/config.ts';
import { startFarm } from '../../farm/farm.ts';
import { storeConfig } from '../../store/config.ts';
import { openStore } from '../../store/open.ts';
import { flagCommand, usageError } from '../args.ts';

const USAGE = 'xamal farm worker [--arch x86_64,aarch64] [--concurrency N]';

/** A build worker process: consumes the queues of the given arches until Ctrl-C / SIGTERM. */
export default flagCommand({
  usage: USAGE,
  description: 'Redis, the store and the engine come from the same environment as the farm\'s (XAMAL_REDIS_URL, XAMAL_S3_*, XAMAL_DOCKER_SOCKET); the signing key from XAMAL_SIGNING_KEY_FILE (`xamal farm keys new`). Stops on Ctrl-C or SIGTERM, finishing the builds it holds.',
  flags: {
    arch: { type: 'string', valueName: 'ARCHES', description: 'The platforms to build for, comma-separated (another than this machine\'s runs under emulation)', defaultText: "this machine's" },
    concurrency: { type: 'string', valueName: 'N', description: 'Builds at once', defaultText: 'XAMAL_WORKER_CONCURRENCY' },
  },
  examples: [['xamal farm worker --arch aarch64 --concurrency 2', 'Two aarch64 builds at a time']],
}, async ({ values }, io) => {
  const cfg = builderConfig();
  // Every artifact is signed: a worker without the farm's key does not start.
  if (!cfg.signingKey) throw missingSigningKey();
  const signer = artifactSigner(cfg.signingKey, XAMAL_VERSION);
  const arches: Arch[] = values.arch
    ? values.arch.split(',').map((a) => {
        const n = normalizeArch(a);
        if (!n) throw usageError(`--arch: unknown arch ${JSON.stringify(a)}`, USAGE);
        return n;
      })
    : [hostArch()];
  const concurrency = values.concurrency === undefined ? cfg.concurrency : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw usageError(`--concurrency: expected a positive integer, got ${JSON.stringify(values.concurrency)}`, USAGE);
  const logger = createLogger({ name: 'worker' });
  const { drainMs } = shutdownConfig();
  const secretsKey = buildSecretsKey();
  await ensureEgressTools(cfg, (l) => io.err(l));
  const store = await openStore(storeConfig(cfg.services.stateDir));
  const farm = await startFarm({
    settings: { redisUrl: cfg.redisUrl, prefix: cfg.queuePrefix, lockMs: cfg.lockMs },
    store,
    lockPaths: farmLockPaths(cfg),
    drainMs,
    logger,
    ...(secretsKey ? { secretsKey } : {}),
    workers: { arches, concurrency, deps: configuredBuildDeps(cfg, store, signer) },
  });
  io.out(`worker: ${arches.join(', ')} (concurrency ${concurrency}, queue prefix ${cfg.queuePrefix}; signing with key ${signer.key.keyid})`);
  const sig = await io.interrupted();
  io.err(`${sig}: finishing current builds (at most ${drainMs} ms)`);
  const report = await farm.close();
  io.err(report.clean ? `stopped after ${report.ms} ms` : `stopped after ${report.ms} ms; forced: ${report.forced.join(', ')}`);
  return 0;
});
