import { command, type Command } from '../../core/index.ts';
import type { DeployConfig } from '../config/schema.ts';
import type { AppLayout } from './layout.ts';

/**
 * One systemd template unit per app and role, `xamal-<app>-<role>@.service`; the instance is the
 * slot (`blue` or `green`). The unit reads everything slot-specific from the slot's directory, so
 * it never changes between deploys.
 */

export const UNIT_DIR = '/etc/systemd/system';

export function unitName(app: string, role: string): string {
  return `xamal-${app}-${role}@.service`;
}

/** The running instance: `xamal-<app>-<role>@blue.service`. */
export function unitInstance(app: string, role: string, slot: string): string {
  return `xamal-${app}-${role}@${slot}.service`;
}

export function unitPath(app: string, role: string): string {
  return `${UNIT_DIR}/${unitName(app, role)}`;
}

/**
 * A word for a unit's ExecStart= in double quotes: systemd unescapes C escapes inside them, expands
 * `$VAR` (kept literal as `$$`) and `%` specifiers (kept literal as `%%`). Not a shell quote: the
 * shell gets the result as one argument of `/bin/sh -c`.
 */
export function systemdExecWord(word: string): string {
  const escaped = word.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, '\\n').replace(/\t/g, '\\t').replace(/\$/g, '$$$$').replace(/%/g, '%%');
  return `"${escaped}"`;
}

export interface UnitOptions {
  layout: AppLayout;
  role: string;
  /** The role's `cmd` (run with /bin/sh -c in the slot directory), or the release's `start`. */
  cmd?: string | undefined;
  releaseName: string;
  drainTimeout: number;
}

/**
 * The sandbox every slot runs in, all directives systemd 247 (Debian 11) knows. The app's own user,
 * no privileges to gain, a read-only system (`/opt/xamal` included: releases are only read), no
 * homes, a private /tmp and /dev, the kernel's knobs and modules out of reach, no capabilities.
 * The writable places are the slot's RELEASE_TMP (runtime config, crash dump) and the app's state
 * directory (`STATE_DIRECTORY`, shared by its slots and roles; ReadWritePaths= rather than
 * StateDirectory=, since setup creates it and release_command, run outside the unit, uses it too). Not set:
 * MemoryDenyWriteExecute (the BEAM's JIT maps code writable then executable), and, until measured on
 * the test hosts, SystemCallFilter, ProtectProc/ProcSubset (os_mon reads /proc) and PrivateUsers.
 */
export function hardeningLines(layout: AppLayout, slotTmp: string): string[] {
  return [
    `User=${layout.user}`,
    `Group=${layout.user}`,
    'UMask=0077',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'PrivateMounts=yes',
    // `-`: a state directory deleted by hand does not stop the unit booting (the app then fails its own writes).
    `ReadWritePaths=${slotTmp} -${layout.state}`,
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'RestrictSUIDSGID=yes',
    'RestrictRealtime=yes',
    'RestrictNamespaces=yes',
    'LockPersonality=yes',
    // Sockets a release uses: TCP/UDP, local (erl_child_setup, epmd clients), netlink (getifaddrs).
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
    'CapabilityBoundingSet=',
    'AmbientCapabilities=',
    'SystemCallArchitectures=native',
  ];
}

/** The unit file's text. Same inputs, same bytes: setup compares it with the host's copy. */
export function unitFile(o: UnitOptions): string {
  const slotDir = `${o.layout.slots}/${o.role}-%i`;
  const slotTmp = `${o.layout.tmp}/${o.role}-%i`;
  const exec = o.cmd === undefined ? `${slotDir}/release/bin/${o.releaseName} start` : `/bin/sh -c ${systemdExecWord(o.cmd)}`;
  return [
    `# Managed by xamal (${o.layout.app}, role ${o.role}); \`xamal setup\` rewrites it.`,
    '[Unit]',
    `Description=${o.layout.app} ${o.role} (%i slot)`,
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=exec',
    `WorkingDirectory=${slotDir}`,
    // A crash dump goes where the app may write (the env file can still set it).
    `Environment=ERL_CRASH_DUMP=${slotTmp}/erl_crash.dump`,
    `EnvironmentFile=${slotDir}/env`,
    `ExecStart=${exec}`,
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${Math.ceil(o.drainTimeout) + 5}`,
    'Restart=on-failure',
    'RestartSec=1',
    `SyslogIdentifier=xamal-${o.layout.app}-${o.role}-%i`,
    ...hardeningLines(o.layout, slotTmp),
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

export function unitFileFor(config: Pick<DeployConfig, 'roles' | 'release' | 'drainTimeout'>, layout: AppLayout, role: string): string {
  const r = config.roles.find((x) => x.name === role);
  return unitFile({ layout, role, cmd: r?.cmd, releaseName: config.release.name, drainTimeout: config.drainTimeout });
}

/** Root step. */
export function daemonReloadCommand(): Command {
  return command(['systemctl', 'daemon-reload'], { label: 'systemctl daemon-reload' });
}

/** Root step: `systemctl <verb> units…`. */
export function systemctlCommand(verb: 'start' | 'stop' | 'restart' | 'enable' | 'disable', units: readonly string[], now = false): Command {
  return command(['systemctl', verb, ...(now ? ['--now'] : []), '--', ...units], { label: `systemctl ${verb} ${units.join(' ')}` });
}
