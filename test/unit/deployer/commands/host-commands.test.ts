import { describe, expect, it } from 'vitest';
import { displayCommand, sensitive } from '../../../../core/index.ts';
import { validateDeployConfig } from '../../../../deployer/config/load.ts';
import { envFile } from '../../../../deployer/commands/env-file.ts';
import { asRoot, parseFileStates, writeFileCommand } from '../../../../deployer/commands/files.ts';
import { appLayout, slotLayout } from '../../../../deployer/commands/layout.ts';
import { acquireLockCommand } from '../../../../deployer/commands/lock.ts';
import { aptInstallCommand, missingPackages } from '../../../../deployer/commands/packages.ts';
import { systemdExecWord, unitFileFor } from '../../../../deployer/commands/systemd.ts';
import { releaseEnv } from '../../../../deployer/secrets.ts';
import { baseConfig, COOKIE, SECRET, secrets } from '../../../../testkit/deployer/context.ts';

const config = validateDeployConfig(baseConfig);
const layout = appLayout('shop', undefined);

describe('host commands', () => {
  it('runs root steps with sudo -n (never prompting) unless the user is root, passing env through env(1)', () => {
    const apt = aptInstallCommand(['ffmpeg']);
    expect(displayCommand(asRoot(apt, 'deploy'))).toBe('sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -- ffmpeg');
    expect(asRoot(apt, 'root')).toBe(apt);
    expect(() => asRoot({ argv: ['x'], env: { K: sensitive('v') } }, 'deploy')).toThrow(/secret in argv/);
  });

  it('writes files from stdin: the content never appears in argv', () => {
    const cmd = writeFileCommand('/opt/xamal/shop/slots/web-blue/env', sensitive(`DB=${SECRET}`), 0o600);
    expect(cmd.argv).toEqual(['sh', '-c', expect.stringContaining('cat >'), 'sh', '/opt/xamal/shop/slots/web-blue/env', '0600']);
    expect(displayCommand(cmd)).not.toContain(SECRET);
    expect(JSON.stringify(acquireLockCommand(layout, '{"holder":"Ada"}').argv)).not.toContain('Ada');
  });

  it('parses file states (type, mode, owner, group, sha256) and leaves missing paths out', () => {
    const states = parseFileStates(
      ['directory|755|deploy|deploy|/opt/xamal/shop', 'regular file|440|deploy|xamal-shop|/opt/xamal/shop/slots/web-blue/env', '--', `${'a'.repeat(64)}  /opt/xamal/shop/slots/web-blue/env`, ''].join('\n'),
    );
    expect(Object.fromEntries(states)).toEqual({
      '/opt/xamal/shop': { type: 'directory', mode: 0o755, owner: 'deploy', group: 'deploy' },
      '/opt/xamal/shop/slots/web-blue/env': { type: 'file', mode: 0o440, owner: 'deploy', group: 'xamal-shop', sha256: 'a'.repeat(64) },
    });
  });

  it('finds the packages dpkg does not report installed', () => {
    expect(missingPackages(['ffmpeg', 'curl', 'libvips42'], 'curl installed\nffmpeg config-files\n')).toEqual(['ffmpeg', 'libvips42']);
  });

  it('writes one template unit per role: slot directory by instance, release start or the role cmd via /bin/sh -c', () => {
    const web = unitFileFor(config, layout, 'web');
    expect(web).toContain('ExecStart=/opt/xamal/shop/slots/web-%i/release/bin/shop start\n');
    expect(web).toContain('EnvironmentFile=/opt/xamal/shop/slots/web-%i/env\n');
    expect(web).toContain('WorkingDirectory=/opt/xamal/shop/slots/web-%i\n');
    expect(web).toContain('User=xamal-shop\nGroup=xamal-shop\n');
    expect(web).toMatch(/KillSignal=SIGTERM\nTimeoutStopSec=35\nRestart=on-failure\n/);
    expect(unitFileFor(config, layout, 'jobs')).toContain('ExecStart=/bin/sh -c "release/bin/shop eval \\"Shop.Jobs.run()\\" && echo $$PORT 100%%"\n');
    expect(systemdExecWord('a\\b\nc')).toBe('"a\\\\b\\nc"');
    expect(unitFileFor(config, layout, 'web')).toBe(web);
  });

  it("env files hold the role's env, the secrets (only inside the Sensitive content), PORT, RELEASE_NODE, RELEASE_TMP, the slot's own epmd port, the app's STATE_DIRECTORY and the cookie", () => {
    const slot = slotLayout(config, layout, 'web', 'green');
    const f = envFile(layout, slot, releaseEnv(config, secrets, 'web', ['eu']), secrets.get('RELEASE_COOKIE'));
    expect(typeof f.content).not.toBe('string');
    expect(f.shown).toBe(
      [
        '# Managed by xamal (shop, web green); `xamal setup` rewrites it.',
        'MIX_ENV="prod"',
        'REGION="eu"',
        'DB_PASSWORD=[REDACTED]',
        'RELEASE_COOKIE=[REDACTED]',
        'PORT="4001"',
        'RELEASE_NODE="shop-web-green"',
        'RELEASE_TMP="/opt/xamal/shop/tmp/web-green"',
        'ERL_EPMD_PORT="14001"',
        'STATE_DIRECTORY="/var/lib/xamal/shop"',
        '',
      ].join('\n'),
    );
    const text = (f.content as { reveal(): string }).reveal();
    expect(text).toContain(`DB_PASSWORD="${SECRET}"`);
    expect(text).toContain(`RELEASE_COOKIE="${COOKIE}"`);
    // The slot's own names win over the user's env, STATE_DIRECTORY included.
    expect(envFile(layout, slot, { clear: { STATE_DIRECTORY: '/elsewhere', PORT: '1' }, secret: {} }).shown).not.toMatch(/elsewhere|PORT="1"/);
    const odd = envFile(layout, slot, { clear: { Q: 'a"b$c`d\\e' }, secret: {} });
    expect(odd.content).toContain('Q="a\\"b\\$c\\`d\\\\e"\n');
  });
});

describe('env file syntax', () => {
  it('reads back exactly in sh (systemd reads the same double-quoted escapes)', async () => {
    const { LocalExecutor } = await import('../../../../core/index.ts');
    const { writeFile, mkdtemp, rm } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'xamal-env-'));
    try {
      const value = `a"b$c\`d\\e 'f'\nsecond line %i`;
      const f = envFile(layout, slotLayout(config, layout, 'web', 'blue'), { clear: { Q: value }, secret: {} });
      await writeFile(join(dir, 'env'), f.content as string);
      const r = await new LocalExecutor().run({ argv: ['sh', '-c', '. "$1"; printf %s "$Q"', 'sh', join(dir, 'env')] });
      expect(r.stdout).toBe(value);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
