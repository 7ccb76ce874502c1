import { describe, expect, it } from 'vitest';
import { displayCommand, revealArg, sensitive } from '../../../../core/index.ts';
import { validateDeployConfig } from '../../../../deployer/config/load.ts';
import { appUserExistsCommand, createAppUserCommand } from '../../../../deployer/commands/app-user.ts';
import { envFile, writeEnvFileCommand } from '../../../../deployer/commands/env-file.ts';
import { asRoot } from '../../../../deployer/commands/files.ts';
import { appLayout, appUser, slotLayout } from '../../../../deployer/commands/layout.ts';
import { curlUrlConfig, pullReleaseCommand, unpackUploadedCommand } from '../../../../deployer/commands/release.ts';
import { releaseCommandCommand } from '../../../../deployer/commands/slots.ts';
import { unitFileFor } from '../../../../deployer/commands/systemd.ts';
import { remoteInvocation } from '../../../../deployer/ssh.ts';
import { releaseEnv } from '../../../../deployer/secrets.ts';
import { baseConfig, SECRET, secrets } from '../../../../testkit/deployer/context.ts';

const config = validateDeployConfig(baseConfig);
const layout = appLayout('shop', undefined);
const SHA = 'a'.repeat(64);
const URL = 'https://farm.example/v1/downloads/x?sig=SIGNED"TOKEN\\';

describe("each app's own user", () => {
  it('is xamal-<app>, and a long or mixed-case app name gets a hashed name within 32 characters', () => {
    expect(appUser('shop')).toBe('xamal-shop');
    expect(appLayout('shop', 'staging').user).toBe('xamal-shop-staging');
    const long = appUser('a-very-long-service-name-indeed-staging');
    expect(long).toMatch(/^xamal-a-very-long-service-[0-9a-f]{6}$/);
    expect(long).toHaveLength(32);
    expect(appUser('Shop')).not.toBe(appUser('shop'));
    expect(appUser('Shop')).toMatch(/^xamal-shop-[0-9a-f]{6}$/);
  });

  it('is created as a system user with its own group, no home and no login shell', () => {
    expect(displayCommand(appUserExistsCommand(layout))).toBe('getent passwd xamal-shop');
    expect(displayCommand(createAppUserCommand(layout))).toBe(
      "useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --comment 'xamal app shop' -- xamal-shop",
    );
  });
});

describe('the systemd unit', () => {
  const unit = unitFileFor(config, layout, 'web');
  const directives = new Map(unit.split('\n').filter((l) => l.includes('=') && !l.startsWith('#')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

  it("runs the app as its own user and group, never root or the SSH user", () => {
    expect(directives.get('User')).toBe('xamal-shop');
    expect(directives.get('Group')).toBe('xamal-shop');
  });

  it('sandboxes it: no new privileges, read-only system, no homes, private /tmp and /dev, no capabilities', () => {
    expect(Object.fromEntries([...directives].filter(([k]) => /^(Protect|Private|Restrict|NoNew|Lock|Capability|Ambient|SystemCall|UMask)/.test(k)))).toEqual({
      UMask: '0077',
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      PrivateMounts: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectKernelLogs: 'yes',
      ProtectControlGroups: 'yes',
      ProtectClock: 'yes',
      ProtectHostname: 'yes',
      RestrictSUIDSGID: 'yes',
      RestrictRealtime: 'yes',
      RestrictNamespaces: 'yes',
      LockPersonality: 'yes',
      RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6 AF_NETLINK',
      CapabilityBoundingSet: '',
      AmbientCapabilities: '',
      SystemCallArchitectures: 'native',
    });
  });

  it("lets it write only its slot's RELEASE_TMP (where its crash dump goes too) and the app's state directory, and leaves the BEAM's JIT alone", () => {
    expect(directives.get('ReadWritePaths')).toBe('/opt/xamal/shop/tmp/web-%i -/var/lib/xamal/shop');
    // Every role's unit shares the one state directory (both slots: the unit is a template).
    expect(unitFileFor(config, layout, 'jobs')).toContain('\nReadWritePaths=/opt/xamal/shop/tmp/jobs-%i -/var/lib/xamal/shop\n');
    expect(directives.get('Environment')).toBe('ERL_CRASH_DUMP=/opt/xamal/shop/tmp/web-%i/erl_crash.dump');
    expect(unit).not.toContain('MemoryDenyWriteExecute');
    // Environment= first, EnvironmentFile= after: the app's env may still set ERL_CRASH_DUMP.
    expect(unit.indexOf('Environment=')).toBeLessThan(unit.indexOf('EnvironmentFile='));
  });
});

describe('env files', () => {
  it("are written through stdin as root, owner the SSH user, group the app's, mode 0440", () => {
    const slot = slotLayout(config, layout, 'web', 'blue');
    const cmd = writeEnvFileCommand(layout, slot, envFile(layout, slot, releaseEnv(config, secrets, 'web', [])), 'deploy');
    expect(cmd.argv.map(String)).toEqual(['sudo', '-n', 'sh', '-c', expect.stringContaining('chown -- "$3"'), 'sh', slot.envFile, '0440', 'deploy:xamal-shop']);
    expect(cmd.argv.map(revealArg).join(' ')).not.toContain(SECRET);
    expect(revealArg(cmd.stdin!)).toContain(SECRET);
  });
});

describe('release_command and app exec', () => {
  it("run as the app's user through runuser (a root step), with the slot's env", () => {
    const slot = slotLayout(config, layout, 'web', 'green');
    const cmd = asRoot(releaseCommandCommand(layout, slot, 'v1', 'bin/shop eval Migrate.run', 60), 'deploy');
    expect(cmd.argv.slice(0, 7)).toEqual(['sudo', '-n', 'runuser', '-u', 'xamal-shop', '--', 'sh']);
    expect(cmd.argv.slice(-3)).toEqual([slot.envFile, '/opt/xamal/shop/releases/v1', 'bin/shop eval Migrate.run']);
  });
});

describe('pulling a release', () => {
  const pull = pullReleaseCommand({ layout, version: 'v1', sha256: SHA }, URL);

  it('gives curl the link on stdin as a config (`--config -`), never in argv or the environment', () => {
    const script = String(pull.argv[2]);
    expect(script).toMatch(/curl [^\n]*--config - /);
    expect(pull.argv.map(revealArg).join(' ')).not.toContain('SIGNED');
    expect(pull.env).toBeUndefined();
    expect(pull.stdin).toBeInstanceOf(Object);
    expect(displayCommand(pull)).not.toContain('SIGNED');
    expect(revealArg(pull.stdin!)).toBe('url = "https://farm.example/v1/downloads/x?sig=SIGNED\\"TOKEN\\\\"\n');
  });

  it('sends sshd a command line without the link: it travels in stdin only', () => {
    const wire = remoteInvocation(pull);
    expect(wire.line).not.toContain('SIGNED');
    expect(Buffer.from(wire.stdin!.split('\n')[0]!, 'base64').toString()).not.toContain('SIGNED');
    expect(wire.stdin).toContain('url = "https://farm.example/v1/downloads/x?sig=SIGNED');
  });

  it('refuses a link with a line break (it could add curl options)', () => {
    expect(() => curlUrlConfig('https://farm.example/x\noutput = "/etc/passwd"')).toThrow(/download URL: contains a line break/);
  });

  it('unpacks keeping no owner and no archived modes: no setuid/setgid, no group/other write, readable by the app user (umask 022)', () => {
    for (const cmd of [pull, unpackUploadedCommand({ layout, version: 'v1', sha256: SHA })]) {
      const script = String(cmd.argv[2]);
      expect(script).toContain('tar --no-same-owner --no-same-permissions -xzf "$f" -C "$p"');
      expect(script).toContain('chmod -R u-s,g-s,go-w,a+rX -- "$p"');
      expect(script.split('\n')[1]).toBe('umask 022');
    }
  });
});

describe('secrets in sshd command lines', () => {
  it('a command with a Sensitive stdin is sent whole through stdin', () => {
    const wire = remoteInvocation({ argv: ['cat'], stdin: sensitive('x') });
    expect(wire.line).not.toContain('cat');
    expect(wire.stdin!.endsWith('\nx')).toBe(true);
  });
});
