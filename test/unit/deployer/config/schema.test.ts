import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../core/index.ts';
import { validateDeployConfig } from '../../../../deployer/config/load.ts';

const minimal = { service: 'my-app', servers: ['10.0.0.1'] };

function problems(value: unknown): string[] {
  try {
    validateDeployConfig(value);
  } catch (err) {
    if (err instanceof ValidationError) return err.issues.map((i) => `${i.path}: ${i.message}`);
    throw err;
  }
  throw new Error('expected the config to be invalid');
}

describe('deploy.yml schema', () => {
  it('fills the documented defaults around a minimal service and host list', () => {
    const c = validateDeployConfig(minimal);
    expect(c.roles).toEqual([{ name: 'web', hosts: [{ host: '10.0.0.1', tags: [] }], cmd: undefined, env: { clear: {}, secret: [] }, tags: [] }]);
    expect(c.primaryRole).toBe('web');
    // user and port stay unset: ~/.ssh/config may give them per host (root and 22 otherwise).
    expect(c.ssh).toMatchObject({ user: undefined, port: undefined, connectTimeout: 30, keys: [], keyData: [], hostKeys: {}, logLevel: 'fatal', config: true });
    expect(c.healthCheck).toEqual({ path: '/up', interval: 1, timeout: 30 });
    expect(c.caddy).toEqual({ hosts: [], appPort: 4000, ssl: true });
    expect(c.release).toEqual({ name: 'my_app', mixEnv: 'prod' });
    expect([c.retainReleases, c.deployTimeout, c.drainTimeout, c.readinessDelay]).toEqual([5, 30, 30, 7]);
    expect([c.hooksPath, c.secretsPath]).toEqual(['.xamal/hooks', '.xamal/secrets']);
  });

  it('takes ssh.port as a number or a numeric string ("2222", as Kamal writes it), still 1-65535', () => {
    expect(validateDeployConfig({ ...minimal, ssh: { port: '2222' } }).ssh.port).toBe(2222);
    expect(validateDeployConfig({ ...minimal, ssh: { port: 2200 } }).ssh.port).toBe(2200);
    expect(problems({ ...minimal, ssh: { port: '70000' } })).toEqual([expect.stringMatching(/^ssh\/port: expected a port 1-65535/)]);
    expect(problems({ ...minimal, ssh: { port: 'ssh' } })).toEqual([expect.stringMatching(/^ssh\/port: expected/)]);
  });

  it('takes ssh.config as true, false, a path or a list of paths (a path becomes a list)', () => {
    expect(validateDeployConfig({ ...minimal, ssh: { config: false } }).ssh.config).toBe(false);
    expect(validateDeployConfig({ ...minimal, ssh: { config: '~/.ssh/deploy_config' } }).ssh.config).toEqual(['~/.ssh/deploy_config']);
    expect(validateDeployConfig({ ...minimal, ssh: { config: ['a', 'b'] } }).ssh.config).toEqual(['a', 'b']);
    expect(problems({ ...minimal, ssh: { config: 3 } })).toEqual([expect.stringMatching(/^ssh\/config: expected true, false, a path or a list of paths/)]);
    expect(problems({ ...minimal, ssh: { log_level: 'verbose' } })).toEqual(['ssh/log_level: expected one of "debug", "info", "warn", "error", "fatal", got "verbose"']);
  });

  it('takes caddy.ssl as true, false or "internal" (Caddy\'s own CA) and nothing else', () => {
    for (const ssl of [true, false, 'internal'] as const) expect(validateDeployConfig({ ...minimal, caddy: { ssl } }).caddy.ssl).toBe(ssl);
    expect(problems({ ...minimal, caddy: { ssl: 'yes' } })).toEqual(['caddy/ssl: expected true, false or "internal"']);
  });

  it('accepts every Kamal servers shape: list, role lists, role maps, and hosts with tags', () => {
    const c = validateDeployConfig({
      service: 'app',
      servers: { web: ['a.example.com', { 'b.example.com': 'canary' }], jobs: { hosts: [{ '10.0.0.3': ['eu', 'batch'] }], cmd: 'bin/app start_jobs', env: { QUEUE: 'x' } } },
    });
    expect(c.roles.map((r) => [r.name, r.hosts, r.cmd ?? null])).toEqual([
      ['web', [{ host: 'a.example.com', tags: [] }, { host: 'b.example.com', tags: ['canary'] }], null],
      ['jobs', [{ host: '10.0.0.3', tags: ['eu', 'batch'] }], 'bin/app start_jobs'],
    ]);
    expect(c.roles[1]!.env).toEqual({ clear: { QUEUE: 'x' }, secret: [] });
    expect(c.hosts).toEqual(['a.example.com', 'b.example.com', '10.0.0.3']);
  });

  it('reads env as clear/secret/tags, a plain map as clear, and NAME:SECRET as an alias', () => {
    const c = validateDeployConfig({ ...minimal, env: { clear: { PORT: 4000, DEBUG: false }, secret: ['DB_PASSWORD', 'SKB:PROD_SKB'], tags: { eu: { REGION: 'eu' } } } });
    expect(c.env.clear).toEqual({ PORT: '4000', DEBUG: 'false' });
    expect(c.env.secret).toEqual([{ name: 'DB_PASSWORD', from: 'DB_PASSWORD' }, { name: 'SKB', from: 'PROD_SKB' }]);
    expect(c.env.tags).toEqual({ eu: { clear: { REGION: 'eu' }, secret: [] } });
    expect(validateDeployConfig({ ...minimal, env: { A: 'b' } }).env.clear).toEqual({ A: 'b' });
  });

  it('lists every problem in a broken file at once, each with its path', () => {
    const lines = problems({
      service: '../etc',
      image: 'app:latest',
      servers: { web: { hosts: [1, 'ok.example.com'], extra: true }, 'bad role': ['h'] },
      ssh: { user: 'root; rm -rf /', port: 0, host_keys: { 'h.example.com': 'MD5:aa' } },
      env: { clear: { 'NOT-A-NAME': 'x' }, secret: ['A B'] },
      boot: { limit: '150%' },
      packages: ['libssl3', 'Bad_Name'],
      release: { name: 'My-App' },
      retain_releases: 0,
    });
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^service: expected a name of letters, digits/),
        'image: unknown key (xamal deploys Elixir releases, not images; the release is named by release.name)',
        'servers/web/hosts/0: expected a host name, or a map {host: [tags]}, got number',
        'servers/web/extra: unknown key',
        expect.stringMatching(/^servers\/bad role: invalid key: expected a name/),
        expect.stringMatching(/^ssh\/user: expected a login name/),
        expect.stringMatching(/^ssh\/port: expected a port 1-65535/),
        expect.stringMatching(/^ssh\/host_keys\/h.example.com: expected a host key fingerprint/),
        expect.stringMatching(/^env\/clear\/NOT-A-NAME: invalid key: expected an environment variable name/),
        'env/secret/0: expected NAME or NAME:SECRET_NAME, got "A B"',
        'boot/limit: expected a percentage like "25%" (1-100), got "150%"',
        expect.stringMatching(/^packages\/1: expected a Debian package name .*got "Bad_Name"$/),
        expect.stringMatching(/^release\/name: expected an Elixir app name/),
        expect.stringMatching(/^retain_releases: expected at least 1/),
      ]),
    );
    expect(lines).toHaveLength(14);
  });

  it('says what was given when a section has the wrong shape', () => {
    expect(problems({ service: 'a', servers: 'h1' })).toEqual(['servers: expected a list of hosts, or a map of roles, got string']);
    expect(problems({ servers: ['h'] })).toEqual(['service: required']);
    expect(problems({ ...minimal, ssh: ['x'] })).toEqual(['ssh: expected a map, got a list']);
  });

  it('refuses names that could escape a path or a shell word', () => {
    for (const service of ['..', 'a/b', 'a b', '$(id)', 'a;b', '-rf', '']) expect(problems({ ...minimal, service }).join()).toMatch(/^service: expected a name/);
    for (const host of ['a b', 'h;id', '-oProxyCommand=x', 'user@host', 'host:22']) expect(problems({ ...minimal, servers: [host] })[0]).toMatch(/^servers\/0: expected a host name or IP address/);
    expect(problems({ ...minimal, release: { mix_env: 'prod && id' } })[0]).toMatch(/^release\/mix_env: /);
  });

  it('checks the primary role exists and a release name can be derived, once the fields are valid', () => {
    expect(problems({ ...minimal, primary_role: 'api' })).toEqual(['primary_role: no role named "api" under servers (roles: web)']);
    expect(problems({ service: '9lives', servers: ['h'] })).toEqual(['release/name: cannot derive a release name from service "9lives"; set release.name']);
    expect(problems({ service: 'a', servers: { web: [] } })).toEqual(['servers/web: role has no hosts (set allow_empty_roles: true to allow)']);
  });

  it('takes farm targets as a tuple, a selector string or a selector map, and reports a bad tuple by field', () => {
    const farm = (target: unknown) => validateDeployConfig({ ...minimal, farm: { url: 'https://farm.example.com/', target } }).farm;
    expect(farm('linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0')).toEqual({ url: 'https://farm.example.com', tokenSecret: 'XAMAL_FARM_TOKEN', target: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', publicKeys: [] });
    expect(farm('otp=27,arch=arm64')?.target).toEqual({ otp: '27', arch: 'aarch64' });
    expect(farm({ distro: 'debian12' })?.target).toEqual({ distro: 'debian12' });
    expect(problems({ ...minimal, farm: { url: 'https://f', target: 'linux-arm65-gnu2.36-debian12-otp25.2.3-elixir1.14.0' } })).toEqual([
      'farm/target: arch: expected one of x86_64, aarch64, armv7l, riscv64, got "arm65"',
    ]);
  });

  it('trusts farm.public_key and every key of farm.public_keys (once each), and names the field of a key that is not one', () => {
    const K1 = 'ed25519:E04TLiElgloJUfASIuQ2alelYfpbwkpIlhzB0aNsBtw=';
    const K2 = 'ed25519:SL4y4RcqzVySln9BVUDUn91ikZZf4L2uEhcCrYRky8Y=';
    const keys = (farm: object) => validateDeployConfig({ ...minimal, farm: { url: 'https://f', ...farm } }).farm?.publicKeys;
    expect(keys({ public_key: K1 })).toEqual([K1]);
    expect(keys({ public_keys: [K2, K1] })).toEqual([K2, K1]);
    expect(keys({ public_key: K1, public_keys: [K2, K1] })).toEqual([K1, K2]);
    expect(keys({})).toEqual([]);
    expect(problems({ ...minimal, farm: { url: 'https://f', public_key: 'ssh-ed25519 AAAAC3Nza' } })).toEqual([
      'farm/public_key: expected an ed25519 public key like ed25519:<44 base64 characters> (from `xamal farm keys new`), got "ssh-ed25519 AAAAC3Nza"',
    ]);
    expect(problems({ ...minimal, farm: { url: 'https://f', public_keys: [K1, 'ed25519:short='] } })).toEqual([
      'farm/public_keys/1: expected an ed25519 public key like ed25519:<44 base64 characters> (from `xamal farm keys new`), got "ed25519:short="',
    ]);
    expect(problems({ ...minimal, farm: { url: 'https://f', public_keys: K1 } })).toContain('farm/public_keys: expected a list, got string');
    expect(problems({ ...minimal, farm: { url: 'https://f', public_keys: [] } })).toEqual(['farm/public_keys: expected at least one key (or leave public_keys out)']);
  });

  it('carries inline SSH keys as secrets that print as [REDACTED]', () => {
    const c = validateDeployConfig({ ...minimal, ssh: { key_data: ['-----BEGIN OPENSSH PRIVATE KEY-----\nsecretkeymaterial'] } });
    expect(c.ssh.keyData[0]!.reveal()).toContain('secretkeymaterial');
    expect(JSON.stringify(c)).not.toContain('secretkeymaterial');
    expect(JSON.stringify(c.ssh.keyData)).toBe('["[REDACTED]"]');
  });
});
