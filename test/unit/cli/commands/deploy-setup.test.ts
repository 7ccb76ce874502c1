import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Io } from '../../../../cli/io.ts';
import { main } from '../../../../cli/main.ts';

/** xamal init, config, docs and secrets, run through the CLI's one entry point in a temp project. */

let root: string;
const startDir = process.cwd();
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'xamal-cli-'));
  process.chdir(root);
});
afterEach(async () => {
  process.chdir(startDir);
  vi.unstubAllEnvs();
  await rm(root, { recursive: true, force: true });
});

async function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => void out.push(t), err: (t) => void err.push(t), interrupted: () => new Promise<string>(() => {}) };
  const code = await main(argv, io, { debug: false });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

const SECRET = 'pa55-w0rd-that-must-not-leak';
const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----keymaterial-that-must-not-leak';

async function project() {
  await mkdir(join(root, 'config'));
  await mkdir(join(root, '.xamal'));
  await writeFile(
    join(root, 'config/deploy.yml'),
    `service: shop\nservers: [web1.example.com]\nssh:\n  key_data: ["<%= ENV["SSH_KEY"] %>"]\nenv:\n  secret: [DB_PASSWORD]\n`,
  );
  await writeFile(join(root, 'config/deploy.staging.yml'), 'servers: [staging.example.com]\n');
  await writeFile(join(root, '.xamal/secrets-common'), `DB_PASSWORD=${SECRET}\nSHORT=ab\n`);
  await writeFile(join(root, '.xamal/secrets.staging'), 'DB_PASSWORD=$(printf staging-%s "$SUFFIX")\n');
  vi.stubEnv('SSH_KEY', KEY);
  vi.stubEnv('SUFFIX', 'db-pass');
}

describe('xamal init', () => {
  it('writes config/deploy.yml, the secrets stub and executable hook samples, and the stub is a valid config', async () => {
    const r = await run('init');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual(
      expect.arrayContaining(['created config/deploy.yml', 'created .xamal/secrets', 'created .xamal/hooks/pre-deploy.sample', 'created .xamal/hooks/post-deploy.sample']),
    );
    expect((await stat(join(root, '.xamal/hooks/pre-connect.sample'))).mode & 0o777).toBe(0o755);
    expect((await stat(join(root, '.xamal/secrets'))).mode & 0o777).toBe(0o600);
    const config = await run('config', '--json');
    expect(config.code).toBe(0);
    expect(JSON.parse(config.stdout).service).toBe('my-app');
  });

  it('refuses to overwrite, naming the files, and writes nothing', async () => {
    await mkdir(join(root, 'config'));
    await writeFile(join(root, 'config/deploy.yml'), 'mine');
    const r = await run('init');
    expect(r.code).toBe(5);
    expect(r.stderr).toBe('xamal: not overwriting existing files: config/deploy.yml (remove them first to start over)');
    expect(await readFile(join(root, 'config/deploy.yml'), 'utf8')).toBe('mine');
    await expect(stat(join(root, '.xamal'))).rejects.toThrow();
  });
});

describe('xamal config', () => {
  it('prints the resolved config with the destination merged and inline keys redacted', async () => {
    await project();
    const r = await run('config', '-d', 'staging', '--json');
    expect(r.code).toBe(0);
    const shown = JSON.parse(r.stdout);
    expect(shown.destination).toBe('staging');
    expect(shown.hosts).toEqual(['staging.example.com']);
    expect(shown.ssh.keyData).toEqual(['[REDACTED]']);
    expect(shown.env.secret).toEqual([{ name: 'DB_PASSWORD', from: 'DB_PASSWORD' }]);
    const yaml = await run('config', '-v');
    expect(yaml.stdout).toMatch(/^destination: null\nservice: shop\n/);
    expect(yaml.stderr).toBe('read config/deploy.yml');
    for (const out of [r, yaml]) expect(`${out.stdout}${out.stderr}`).not.toMatch(/must-not-leak/);
  });

  it('exits 2 listing every problem with its path', async () => {
    await mkdir(join(root, 'config'));
    await writeFile(join(root, 'config/deploy.yml'), 'service: shop\nservers:\n  web:\n    hosts: [1]\nssh: {port: "ssh"}\nregistry: {}\n');
    const r = await run('config');
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')).toEqual([
      'xamal: invalid configuration (config/deploy.yml)',
      'servers/web/hosts/0: expected a host name, or a map {host: [tags]}, got number',
      'ssh/port: expected number, got string',
      'registry: unknown key (no registry: releases come from the farm (see `xamal docs farm`))',
    ]);
  });

  it('names the missing environment variable and the file', async () => {
    await project();
    vi.stubEnv('SSH_KEY', undefined);
    const r = await run('config');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('config/deploy.yml:4: environment variable SSH_KEY is not set (used in config/deploy.yml)');
  });
});

describe('xamal secrets', () => {
  it('prints names with values redacted unless --reveal, and never the value in the default output', async () => {
    await project();
    const r = await run('secrets', 'print');
    expect(r).toEqual({ code: 0, stdout: 'DB_PASSWORD=[REDACTED]\nSHORT=[REDACTED]', stderr: '' });
    const revealed = await run('secrets', 'print', '--reveal', '--json');
    expect(JSON.parse(revealed.stdout)).toEqual({ DB_PASSWORD: SECRET, SHORT: 'ab' });
  });

  it('uses the destination file over the common one, substituting commands', async () => {
    await project();
    expect((await run('secrets', 'extract', 'DB_PASSWORD', '-d', 'staging')).stdout).toBe('staging-db-pass');
    expect((await run('secrets', 'extract', 'DB_PASSWORD')).stdout).toBe(SECRET);
  });

  it('exits 4 for an unknown secret and 2 for a bad action', async () => {
    await project();
    const missing = await run('secrets', 'extract', 'NOPE');
    expect([missing.code, missing.stderr]).toEqual([4, 'xamal: secret NOPE not found (read .xamal/secrets-common)']);
    const bad = await run('secrets', 'show');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^xamal: unknown action "show"\nusage: xamal secrets print/);
  });
});

describe('xamal docs', () => {
  it('lists the sections, prints one, and exits 4 for an unknown one', async () => {
    const list = await run('docs');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^Sections of config\/deploy.yml/);
    expect(list.stdout).toMatch(/\n {2}servers +Servers: the hosts to deploy to/);
    const ssh = await run('docs', 'ssh');
    expect(ssh.stdout).toMatch(/^# SSH: how xamal connects/);
    expect(ssh.stdout).toContain('host_keys:');
    const unknown = await run('docs', 'nope');
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toMatch(/^xamal: no docs section "nope"; sections: aliases, boot, builder, caddy/);
  });

  it('appears in xamal help with init, config and secrets', async () => {
    const help = await run('help');
    for (const synopsis of ['  init  ', '  config  ', '  docs [SECTION]  ', '  secrets ACTION  ']) expect(help.stdout).toContain(synopsis);
  });
});
