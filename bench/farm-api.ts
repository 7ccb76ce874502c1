/**
 * The farm API as its own process, for load benchmarks (P4): the same app `xamal farm up` serves
 * (buildApp, the store-backed services, the one listener), over the embedded default store (files
 * under --store), without queues or workers. Log level as the farm's (XAMAL_LOG_LEVEL, default
 * info). Writes `listening <url>` to stderr once it serves. With --redis (and --prefix, the queues'
 * key prefix) lookups use the artifact generation the farm's workers move, as `xamal farm up` does.
 *
 *   npx tsx bench/farm-api.ts --store DIR [--port 0] [--redis URL --prefix P]
 */
import { parseArgs } from 'node:util';
import { buildApp } from '../api/app.ts';
import { farmConfig } from '../api/config.ts';
import { listen } from '../api/server.ts';
import { healthService } from '../api/services/health.ts';
import { storeBackedServices } from '../api/services/store-backed.ts';
import { localStore } from '../store/local.ts';
import { artifactGeneration } from '../queue/index.ts';
import { TOKEN } from './farm.ts';

const { values } = parseArgs({ options: { store: { type: 'string' }, port: { type: 'string', default: '0' }, redis: { type: 'string' }, prefix: { type: 'string' } } });
if (!values.store) throw new Error('usage: npx tsx bench/farm-api.ts --store DIR [--port 0]');
const fc = farmConfig();
const generation = values.redis ? artifactGeneration({ redisUrl: values.redis, ...(values.prefix ? { prefix: values.prefix } : {}) }) : undefined;
const app = await buildApp({ token: TOKEN, logLevel: fc.logLevel, services: { health: healthService({}), ...storeBackedServices(localStore(values.store), generation) } });
const url = await listen(app, '127.0.0.1', Number(values.port));
process.stderr.write(`listening ${url}\n`);
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => void app.close().then(() => generation?.close()).then(() => process.exit(0)));
