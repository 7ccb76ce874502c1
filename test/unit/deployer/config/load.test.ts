import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError, XamalError } from '../../../../core/index.ts';
import { deepMerge, destinationFile, loadDeployConfig } from '../../../../deployer/config/load.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'xamal-config-'));
  await mkdir(join(root, 'config'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const write = (path: string, text: string) => writeFile(join(root, path), text);

async function failure(p: Promise<unknown>): Promise<XamalError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof XamalError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

const BASE = `service: app
servers:
  web: [web1.example.com, web2.example.com]
  jobs:
    hosts: [jobs1.example.com]
    cmd: bin/app start_jobs
env:
  clear:
    LOG_LEVEL: info
    REGION: base
  secret: [SECRET_KEY_BASE]
ssh:
  user: deploy
`;

describe('loading config/deploy.yml', () => {
  it('deep-merges the destination file over the base: maps key by key, lists replaced', async () => {
    await write('config/deploy.yml', BASE);
    await write('config/deploy.staging.yml', `servers:\n  web: [staging1.example.com]\nenv:\n  clear:\n    REGION: staging\nssh:\n  port: 2222\n`);
    const { config, files, destination } = await loadDeployConfig({ root, destination: 'staging', env: {} });
    expect(files).toEqual(['config/deploy.yml', 'config/deploy.staging.yml']);
    expect(destination).toBe('staging');
    expect(config.roles.map((r) => [r.name, r.hosts.map((h) => h.host)])).toEqual([
      ['web', ['staging1.example.com']],
      ['jobs', ['jobs1.example.com']],
    ]);
    expect(config.roles[1]!.cmd).toBe('bin/app start_jobs');
    expect(config.env.clear).toEqual({ LOG_LEVEL: 'info', REGION: 'staging' });
    expect(config.env.secret).toEqual([{ name: 'SECRET_KEY_BASE', from: 'SECRET_KEY_BASE' }]);
    expect([config.ssh.user, config.ssh.port]).toEqual(['deploy', 2222]);
  });

  it('fills <%= ENV["NAME"] %> and <%= env[\'NAME\'] %> from the given environment', async () => {
    await write('config/deploy.yml', `service: <%= ENV["APP"] %>\nservers: [<%= env['HOST'] %>]\ncaddy:\n  app_port: <%= ENV["PORT"] %>\n# commented out: <%= ENV["UNSET_IN_COMMENT"] %>\n`);
    const { config } = await loadDeployConfig({ root, env: { APP: 'shop', HOST: 'h1.example.com', PORT: '4100' } });
    expect([config.service, config.hosts, config.caddy.appPort]).toEqual(['shop', ['h1.example.com'], 4100]);
  });

  it('names every unset variable with its file and line, and refuses other templates', async () => {
    await write('config/deploy.yml', `service: <%= ENV["APP_NAME"] %>\nservers: [<%= ENV["HOST"] %>]\nenv:\n  clear:\n    X: <%= \`id\` %>\n`);
    const err = await failure(loadDeployConfig({ root, env: { HOST: 'h' } }));
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message.split('\n').slice(1)).toEqual([
      'config/deploy.yml:1: environment variable APP_NAME is not set (used in config/deploy.yml)',
      'config/deploy.yml:5: unsupported template <%= `id` %>: only <%= ENV["NAME"] %> is understood',
    ]);
  });

  it('reports problems of the base and the destination file together, with their paths', async () => {
    await write('config/deploy.yml', `service: app\nservers: [h1.example.com]\nssh:\n  port: nope\n`);
    await write('config/deploy.prod.yml', `caddy:\n  ssl: maybe\nbogus: 1\n`);
    const err = await failure(loadDeployConfig({ root, destination: 'prod', env: {} }));
    expect(err.message.split('\n')).toEqual([
      'invalid configuration (config/deploy.yml + config/deploy.prod.yml)',
      'ssh/port: expected number, got string',
      'caddy/ssl: expected true, false or "internal"',
      'bogus: unknown key',
    ]);
  });

  it('reports YAML syntax errors with file, line and column', async () => {
    await write('config/deploy.yml', `service: app\nservice: again\nservers: [h1\n`);
    const err = await failure(loadDeployConfig({ root, env: {} }));
    expect(err.code).toBe('validation');
    expect(err.message).toMatch(/config\/deploy.yml:2:1: Map keys must be unique/);
  });

  it('ignores top-level x- keys, which hold YAML anchors', async () => {
    await write('config/deploy.yml', `x-hosts: &hosts [a.example.com, b.example.com]\nservice: app\nservers:\n  web: *hosts\n`);
    const { config } = await loadDeployConfig({ root, env: {} });
    expect(config.hosts).toEqual(['a.example.com', 'b.example.com']);
  });

  it('refuses a destination that is not a plain name before touching the filesystem', async () => {
    await write('config/deploy.yml', BASE);
    const err = await failure(loadDeployConfig({ root, destination: '../../etc/passwd', env: {} }));
    expect(err.message).toMatch(/^destination: expected a name of letters, digits/);
  });

  it('fails naming the missing file for an unknown destination, and when require_destination is set without one', async () => {
    await write('config/deploy.yml', `${BASE}require_destination: true\n`);
    const missing = await failure(loadDeployConfig({ root, destination: 'qa', env: {} }));
    expect([missing.code, missing.message]).toEqual(['not_found', 'configuration file not found: config/deploy.qa.yml (run `xamal init` to create one)']);
    const noDest = await failure(loadDeployConfig({ root, env: {} }));
    expect(noDest.message).toMatch(/require_destination: this configuration requires a destination: pass -d DESTINATION/);
  });

  it('reads another file with -c and finds its destination file beside it', async () => {
    await write('config/other.yml', BASE);
    await write('config/other.eu.yml', 'service: app-eu\n');
    const { config, files } = await loadDeployConfig({ root, configFile: 'config/other.yml', destination: 'eu', env: {} });
    expect(files).toEqual(['config/other.yml', 'config/other.eu.yml']);
    expect(config.service).toBe('app-eu');
    expect(destinationFile('deploy.yaml', 'x')).toBe('deploy.x.yaml');
  });
});

describe('deepMerge', () => {
  it('merges maps recursively and lets the override replace lists and scalars', () => {
    expect(deepMerge({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, e: 2 })).toEqual({ a: { b: 1, c: [3] }, d: 1, e: 2 });
  });
});
