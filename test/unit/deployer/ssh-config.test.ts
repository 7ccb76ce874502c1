import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateDeployConfig } from '../../../deployer/config/load.ts';
import { readSshConfigFiles, resolveEndpoints, sshConfigFile } from '../../../deployer/ssh-config.ts';
import { sshOptionsFromConfig } from '../../../deployer/ssh.ts';

const HOME = '/home/ada';
const file = (text: string, path = `${HOME}/.ssh/config`) => sshConfigFile(path, text);
const ssh = (s: Record<string, unknown> = {}) => validateDeployConfig({ service: 'shop', servers: ['web1'], ssh: s }).ssh;

const USER_CONFIG = `
Host web1
  HostName 10.0.0.5
  User deploy
  Port 2222
  IdentityFile ~/.ssh/web1_ed25519

Host *.internal !db.internal
  User ops
  ProxyJump bastion

Host bastion
  HostName 203.0.113.9
  User jump
  IdentityFile %d/.ssh/bastion_key

Host alias-*
  HostName %h.example.com

Host *
  IdentityFile ~/.ssh/id_ed25519
  Port 22
`;

describe('~/.ssh/config resolution (ssh.config)', () => {
  it('takes HostName, User, Port and IdentityFile (~ expanded) for a host named by its alias', () => {
    const ep = resolveEndpoints(ssh(), [file(USER_CONFIG)], ['web1'], HOME).web1!;
    expect(ep).toMatchObject({ name: 'web1', address: '10.0.0.5', user: 'deploy', port: 2222, hostKeyName: '10.0.0.5' });
    // Every matching block adds its IdentityFile, in order (as ssh); the first Port found wins over `Host *`.
    expect(ep.identityFiles).toEqual([`${HOME}/.ssh/web1_ed25519`, `${HOME}/.ssh/id_ed25519`]);
    expect(ep.jump).toBeUndefined();
  });

  it("lets deploy.yml's explicit user, port, proxy and known_hosts win over the file", () => {
    const ep = resolveEndpoints(ssh({ user: 'admin', port: 2200, proxy: 'gate.example.com', known_hosts: '/k' }), [file(`${USER_CONFIG}\nHost web1\n  UserKnownHostsFile /other`)], ['web1'], HOME).web1!;
    expect([ep.address, ep.user, ep.port]).toEqual(['10.0.0.5', 'admin', 2200]);
    expect(ep.knownHostsPath).toBeUndefined();
    expect(ep.jump).toMatchObject({ name: 'gate.example.com', address: 'gate.example.com', user: 'admin', port: 22 });
  });

  it('matches wildcards and negations; a ProxyJump alias is resolved through the file too', () => {
    const eps = resolveEndpoints(ssh(), [file(USER_CONFIG)], ['app.internal', 'db.internal'], HOME);
    expect(eps['app.internal']).toMatchObject({ address: 'app.internal', user: 'ops', port: 22 });
    expect(eps['app.internal']!.jump).toMatchObject({ name: 'bastion', address: '203.0.113.9', user: 'jump', port: 22, identityFiles: [`${HOME}/.ssh/bastion_key`, `${HOME}/.ssh/id_ed25519`] });
    // `!db.internal` keeps db.internal out of that block: no jump, and the default user.
    expect(eps['db.internal']).toMatchObject({ address: 'db.internal', user: 'root' });
    expect(eps['db.internal']!.jump).toBeUndefined();
  });

  it('expands %h in HostName and falls back to root, 22 and the name with no file at all', () => {
    expect(resolveEndpoints(ssh(), [file(USER_CONFIG)], ['alias-a'], HOME)['alias-a']!.address).toBe('alias-a.example.com');
    expect(resolveEndpoints(ssh(), [], ['web1'], HOME).web1).toMatchObject({ address: 'web1', user: 'root', port: 22, identityFiles: [] });
  });

  it('reads the user file before the system file: its values win, IdentityFiles add up', () => {
    const system = file('Host *\n  User sysuser\n  Port 2022\n  IdentityFile /etc/ssh/shared_key\n', '/etc/ssh/ssh_config');
    const ep = resolveEndpoints(ssh(), [file('Host web1\n  User mine\n'), system], ['web1'], HOME).web1!;
    expect([ep.user, ep.port, ep.identityFiles]).toEqual(['mine', 2022, ['/etc/ssh/shared_key']]);
  });

  it('honours IdentitiesOnly, HostKeyAlias and UserKnownHostsFile (when deploy.yml sets no known_hosts)', () => {
    const ep = resolveEndpoints(ssh(), [file('Host web1\n  IdentitiesOnly yes\n  HostKeyAlias web1-key\n  UserKnownHostsFile ~/.ssh/kh_%h\n')], ['web1'], HOME).web1!;
    expect(ep).toMatchObject({ identitiesOnly: true, hostKeyName: 'web1-key', knownHostsPath: `${HOME}/.ssh/kh_web1` });
    // `none` as ssh reads it: no identity file, no known_hosts file (every host unknown, so refused).
    expect(resolveEndpoints(ssh(), [file('Host web1\n  IdentityFile none\n  UserKnownHostsFile none\n')], ['web1'], HOME).web1).toMatchObject({ identityFiles: [], knownHostsPath: '/dev/null' });
  });

  it('refuses a bad Port, a chain of jumps and an unsupported token, naming the host', () => {
    expect(() => resolveEndpoints(ssh(), [file('Host web1\n  Port 70000\n')], ['web1'], HOME)).toThrow('ssh.config: Port "70000" for host web1: expected a port 1-65535');
    expect(() => resolveEndpoints(ssh(), [file('Host web1\n  ProxyJump a,b\n')], ['web1'], HOME)).toThrow('only one jump host is supported');
    expect(() => resolveEndpoints(ssh(), [file('Host web1\n  ProxyJump gw\nHost gw\n  ProxyJump gw2\n')], ['web1'], HOME)).toThrow('jump host gw of web1 has a ProxyJump of its own');
    expect(() => resolveEndpoints(ssh(), [file('Host web1\n  IdentityFile ~/.ssh/%C\n')], ['web1'], HOME)).toThrow('token %C is not supported');
  });

  it('gives the jump host its own user@host:port from ProxyJump before the file', () => {
    const ep = resolveEndpoints(ssh(), [file('Host web1\n  ProxyJump ssh://me@bastion:2022\n' + USER_CONFIG)], ['web1'], HOME).web1!;
    expect(ep.jump).toMatchObject({ address: '203.0.113.9', user: 'me', port: 2022 });
  });
});

describe('reading the files (ssh.config: true | false | paths)', () => {
  let home: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'xamal-sshcfg-'));
    await mkdir(join(home, '.ssh', 'config.d'), { recursive: true });
    await writeFile(join(home, '.ssh', 'config'), 'Include config.d/*.conf\nHost web1\n  User fromuser\n');
    await writeFile(join(home, '.ssh', 'config.d', 'a.conf'), 'Host web1\n  HostName 10.1.1.1\n');
    await writeFile(join(home, 'project.conf'), 'Host web1\n  Port 2201\n');
  });
  afterAll(() => rm(home, { recursive: true, force: true }));

  it('true reads ~/.ssh/config (its Includes inlined, globbed relative to ~/.ssh)', () => {
    const files = readSshConfigFiles(true, { home, root: '/nowhere' });
    expect(files[0]!.path).toBe(join(home, '.ssh', 'config'));
    expect(resolveEndpoints(ssh(), files, ['web1'], home).web1).toMatchObject({ address: '10.1.1.1', user: 'fromuser' });
  });

  it('false reads nothing; a path is read relative to the project, and a missing one is an error', () => {
    expect(readSshConfigFiles(false, { home, root: home })).toEqual([]);
    const files = readSshConfigFiles(['project.conf'], { home, root: home });
    expect(resolveEndpoints(ssh(), files, ['web1'], home).web1).toMatchObject({ address: 'web1', port: 2201 });
    expect(() => readSshConfigFiles(['~/nope.conf'], { home, root: home })).toThrow(`ssh.config: cannot read ${home}/nope.conf: ENOENT`);
  });

  it('true with no files at all is no error', () => {
    expect(readSshConfigFiles(true, { home: join(home, 'empty'), root: home }).every((f) => f.path === '/etc/ssh/ssh_config')).toBe(true);
  });
});

describe('ssh.log_level', () => {
  it('debug passes ssh2 protocol messages and connection lines to the log, info connection lines only, fatal nothing', () => {
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    const debug = sshOptionsFromConfig(ssh({ log_level: 'debug' }), { HOME }, false, { log });
    const info = sshOptionsFromConfig(ssh({ log_level: 'info' }), { HOME }, false, { log });
    const fatal = sshOptionsFromConfig(ssh(), { HOME }, false, { log });
    debug.debug!('Outbound: Sending KEXINIT');
    info.info!('connected to web1');
    expect(lines).toEqual(['ssh: Outbound: Sending KEXINIT', 'ssh: connected to web1']);
    expect([info.debug, fatal.debug, fatal.info]).toEqual([undefined, undefined, undefined]);
  });
});
