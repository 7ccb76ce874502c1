import { sensitive } from '../../core/index.ts';
import { validateDeployConfig } from '../../deployer/config/load.ts';
import { remoteContext, type RemoteContext } from '../../deployer/flows/context.ts';
import { selectTargets } from '../../deployer/flows/targets.ts';
import { RecordingPool, type SessionResponder } from '../../deployer/remote.ts';
import { Secrets } from '../../deployer/secrets.ts';

export const SECRET = 'db-pa55word-never-shown';
export const COOKIE = 'cookie-value-never-shown';

export const secrets = new Secrets(
  new Map([
    ['DB_PASSWORD', sensitive(SECRET)],
    ['RELEASE_COOKIE', sensitive(COOKIE)],
  ]),
  ['.xamal/secrets'],
);

export const baseConfig = {
  service: 'shop',
  servers: { web: ['web1', { web2: 'eu' }], jobs: { hosts: ['jobs1'], cmd: 'release/bin/shop eval "Shop.Jobs.run()" && echo $PORT 100%' } },
  ssh: { user: 'deploy' },
  caddy: { hosts: ['shop.example.com'], app_port: 4000, ssl: 'internal' },
  env: { clear: { MIX_ENV: 'prod', PORT: '1' }, secret: ['DB_PASSWORD'], tags: { eu: { REGION: 'eu' } } },
  packages: ['ffmpeg'],
};

export function testContext(opts: { config?: unknown; respond?: SessionResponder; env?: Record<string, string>; now?: () => Date; command?: string; destination?: string; hosts?: string[]; roles?: string[] } = {}): { ctx: RemoteContext; pool: RecordingPool; sleeps: number[] } {
  const config = validateDeployConfig(opts.config ?? baseConfig);
  const pool = new RecordingPool(opts.respond);
  const sleeps: number[] = [];
  let t = Date.parse('2025-03-01T12:00:00Z');
  const ctx = remoteContext({
    config,
    destination: opts.destination,
    pool,
    targets: selectTargets(config, { hosts: opts.hosts, roles: opts.roles }),
    performer: 'Ada',
    secrets,
    command: opts.command ?? 'setup',
    env: opts.env ?? {},
    clock: {
      now: opts.now ?? (() => new Date(t)),
      sleep: async (ms) => {
        sleeps.push(ms);
        t += ms;
      },
    },
    local: { host: 'laptop', pid: 4242, isAlive: (pid) => pid === 4242 },
  });
  return { ctx, pool, sleeps };
}
