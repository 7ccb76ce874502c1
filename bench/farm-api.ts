/**
 * The farm API as its own process, for load benchmarks (P4): the farm's composition root
 * (farm/farm.ts `startFarm`) with the API only: the same app `xamal farm up` serves
 * (buildApp, the store-backed services, the one listener), over the embedded default store (files
 * under --store), without queues or workers. Log level as the farm's (XAMAL_LOG_LEVEL, default
 * info). Writes `listening <url>` to stderr once it serves. With --redis (and --prefix, the queues'
 * key prefix) lookups use the artifact generation the farm's workers move, as `xamal farm up` does.
 *
 *   npx tsx bench/farm-api.ts --store DIR [--port 0] [--redis URL --prefix P]
 */
import { parseArgs } from 'node:util';
import { farmConfig } from '../api/config.ts';
import { startFarm } from '../farm/farm.ts';
import { localStore } from '../store/local.ts';
import { TOKEN } from './farm.ts';

const { values } = parseArgs({ options: { store: { type: 'string' }, port: { type: 'string', default: '0' }, redis: { type: 'string' }, prefix: { type: 'string' } } });
if (!values.store) throw new Error('usage: npx tsx bench/farm-api.ts --store DIR [--port 0]');
const fc = farmConfig();
const farm = await startFarm({
  ...(values.redis ? { settings: { redisUrl: values.redis, ...(values.prefix ? { prefix: values.prefix } : {}) } } : {}),
  store: localStore(values.store),
  lockPaths: [],
  drainMs: 5_000,
  api: { host: '127.0.0.1', port: Number(values.port), token: TOKEN, logLevel: fc.logLevel, queueArches: [] },
});
process.stderr.write(`listening ${farm.url}\n`);
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => void farm.close().then(() => process.exit(0)));
