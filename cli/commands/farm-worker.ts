import { builderConfig } from '../../builder/config.ts';
import { buildDeps } from '../../builder/deps.ts';
import { hostArch } from '../../builder/images/context.ts';
import { startBuildWorkers } from '../../builder/worker.ts';
import { createLogger, normalizeArch, type Arch } from '../../core/index.ts';
import { parseFlags, usageError } from '../args.ts';
import type { CliCommand } from '../io.ts';

const USAGE = 'xamal farm worker [--arch x86_64,aarch64] [--concurrency N]';

/** A build worker process: consumes the queues of the given arches until Ctrl-C / SIGTERM. */
const command: CliCommand = {
  async run(args, io) {
    const { values } = parseFlags(args, { arch: { type: 'string' }, concurrency: { type: 'string' } }, USAGE);
    const cfg = builderConfig();
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
    const workers = await startBuildWorkers({ redisUrl: cfg.redisUrl, prefix: cfg.queuePrefix, lockMs: cfg.lockMs }, arches, await buildDeps(cfg), concurrency, logger);
    io.out(`worker: ${arches.join(', ')} (concurrency ${concurrency}, queue prefix ${cfg.queuePrefix})`);
    const sig = await io.interrupted();
    io.err(`${sig}: finishing current builds`);
    await workers.close();
    return 0;
  },
};
export default command;
