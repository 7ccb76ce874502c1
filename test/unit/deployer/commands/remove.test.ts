import { mkdtemp, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { displayCommand, LocalExecutor } from '../../../../core/index.ts';
import { appLayout } from '../../../../deployer/commands/layout.ts';
import { appPresenceCommand, parseAppPresence, removeAppUserCommand, removePathsCommand } from '../../../../deployer/commands/remove.ts';
import { UNIT_DIR } from '../../../../deployer/commands/systemd.ts';

const layout = appLayout('shop', undefined);

describe('remove commands', () => {
  it('the presence read names the app, unit dir, roles and paths as arguments of a fixed script', () => {
    const cmd = appPresenceCommand(layout, { roles: ['web', 'jobs'], paths: ['/opt/xamal/shop'], discover: true, user: true });
    expect(cmd.argv.slice(4)).toEqual(['shop', UNIT_DIR, '1', 'xamal-shop', 'web', 'jobs', '--', '/opt/xamal/shop']);
    expect(appPresenceCommand(layout, { roles: [], paths: [], discover: false, user: false }).argv.slice(4)).toEqual(['shop', UNIT_DIR, '0', '', '--']);
  });

  it('parses units, unit files, paths and the user; a reply without its end marker is unknown', () => {
    const p = parseAppPresence('unit web blue active disabled\nunit web green inactive \nunitfile web\npath /opt/xamal/shop\nuser xamal app shop\n@@end\n');
    expect(p).toEqual({
      known: true,
      units: [
        { role: 'web', slot: 'blue', active: 'active', enabled: 'disabled' },
        { role: 'web', slot: 'green', active: 'inactive', enabled: '' },
      ],
      unitFiles: ['web'],
      paths: new Set(['/opt/xamal/shop']),
      userComment: 'xamal app shop',
    });
    expect(parseAppPresence('').known).toBe(false);
  });

  it('run by sh: reports the existing paths (a dangling symlink too) and discovers unit files whose header names this app, not a longer-named one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xamal-remove-'));
    try {
      const units = join(dir, 'units');
      await mkdir(units);
      await writeFile(join(units, 'xamal-shop-web@.service'), '# Managed by xamal (shop, role web); `xamal setup` rewrites it.\n');
      await writeFile(join(units, 'xamal-shop-old@.service'), '# Managed by xamal (shop, role old); `xamal setup` rewrites it.\n');
      await writeFile(join(units, 'xamal-shop-staging-web@.service'), '# Managed by xamal (shop-staging, role web); `xamal setup` rewrites it.\n');
      await symlink(join(dir, 'gone'), join(dir, 'current'));
      const cmd = appPresenceCommand(layout, { roles: ['web'], paths: [join(dir, 'current'), join(dir, 'absent'), units], discover: true, user: true });
      // The same script against the temporary unit directory, and this machine's own user.
      const argv = cmd.argv.map((a, i) => (i === 5 ? units : i === 7 ? userInfo().username : a));
      const r = await new LocalExecutor().run({ argv });
      expect(r.code, r.stderr).toBe(0);
      const p = parseAppPresence(r.stdout);
      expect(p.known).toBe(true);
      expect(p.unitFiles).toEqual(['web', 'old']);
      expect([...new Set(p.units.map((u) => u.role))]).toEqual(['web', 'old']);
      expect([...p.paths]).toEqual([join(dir, 'current'), units]);
      expect(p.userComment).toBeDefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('removal steps are plain argv: rm -rf of layout paths, the user removal a fixed script with the user as argument', () => {
    expect(displayCommand(removePathsCommand(['/opt/xamal/shop']))).toBe('rm -rf -- /opt/xamal/shop');
    expect(removeAppUserCommand(layout).argv.slice(4)).toEqual(['xamal-shop', UNIT_DIR]);
  });
});
