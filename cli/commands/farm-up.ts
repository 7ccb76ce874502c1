import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildApp } from '../../api/app.ts';
import { farmConfig } from '../../api/config.ts';
import { listen } from '../../api/server.ts';
import { healthService } from '../../api/services/health.ts';
import { checkReady } from '../../core/services/ready.ts';
import { serviceSpec, servicesConfig, servicesDown, servicesUp, type ServiceName, type ServicesConfig } from '../../core/services/index.ts';
import { XamalError } from '../../core/index.ts';
import { parseFlags } from '../args.ts';
import type { CliCommand } from '../io.ts';

const USAGE = 'xamal farm up [--host 127.0.0.1] [--port 7420]';
/** What the farm needs on embedded defaults; artifacts stay on local disk unless S3 is configured. */
const EMBEDDED: ServiceName[] = ['redis', 'dockerd'];

/** The admin token: from the environment, else the one stored in the state directory, else a new one. */
async function adminToken(envToken: string | undefined, c: ServicesConfig): Promise<{ token: string; source: string }> {
  if (envToken) return { token: envToken, source: 'XAMAL_FARM_TOKEN' };
  const path = join(c.stateDir, 'farm', 'token');
  const stored = (await readFile(path, 'utf8').catch(() => '')).trim();
  if (stored) return { token: stored, source: path };
  await mkdir(join(c.stateDir, 'farm'), { recursive: true, mode: 0o700 });
  const token = randomBytes(24).toString('base64url');
  await writeFile(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return { token, source: `${path} (new)` };
}

function port(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new XamalError('usage', `--port: expected an integer 0-65535, got ${JSON.stringify(value)}\nusage: ${USAGE}`);
  return n;
}

const command: CliCommand = {
  async run(args, io) {
    const { values } = parseFlags(args, { host: { type: 'string' }, port: { type: 'string' } }, USAGE);
    const fc = farmConfig();
    const sc = servicesConfig();
    const host = values.host ?? fc.host;
    const listenPort = port(values.port, fc.port);

    const up = await servicesUp(sc, EMBEDDED, (l) => io.err(l));
    try {
      const { token, source } = await adminToken(fc.token, sc);
      const checks = Object.fromEntries(EMBEDDED.map((n) => [n, () => checkReady(serviceSpec(sc, n).ready)]));
      const app = await buildApp({ token, services: { health: healthService(checks) }, logLevel: fc.logLevel });
      const url = await listen(app, host, listenPort);
      io.out(`farm API: ${url} (GET ${url}/v1/health)`);
      io.out(`admin token: ${source.endsWith('(new)') ? token : '(hidden)'} — from ${source}`);
      io.out('builder: not available yet in this version — no worker runs and no build of examples/hello is made');
      io.out('press Ctrl-C to stop');
      const sig = await io.interrupted();
      io.err(`${sig}: stopping`);
      await app.close();
    } finally {
      if (up.started.length) await servicesDown(sc, up.started, (l) => io.err(l));
    }
    return 0;
  },
};
export default command;
