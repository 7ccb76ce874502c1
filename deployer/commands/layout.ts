import { createHash } from 'node:crypto';
import { XamalError } from '../../core/index.ts';
import type { DeployConfig } from '../config/schema.ts';

/**
 * Where an app lives on a host and which ports its slots listen on. Everything a flow needs to name
 * a path, a unit or a port comes from here, so part 1 (setup) and part 2 (deploy) agree.
 */

/** Each role runs in two slots; a deploy boots the idle one and stops the other after the switch. */
export const SLOTS = ['blue', 'green'] as const;
export type Slot = (typeof SLOTS)[number];

export const XAMAL_ROOT = '/opt/xamal';

/**
 * Where apps keep their data: `/var/lib/xamal/<app>` (systemd's StateDirectory= place), the app
 * user's, 0700, shared by both slots and every role of the app on the host, kept by `xamal remove`.
 */
export const STATE_ROOT = '/var/lib/xamal';

/** `<service>` or `<service>-<destination>`: the app's name in paths, units, Caddy ids. */
export function appName(service: string, destination: string | undefined): string {
  return destination ? `${service}-${destination}` : service;
}

/** useradd refuses names longer than this. */
export const MAX_USER_NAME = 32;

/**
 * The system user an app runs as on every host: `xamal-<app>` in lower case. A name that would be
 * too long, or that lower case changed (`Shop` and `shop` must not share a user), ends in 6 hex
 * characters of the app name's sha256, within useradd's 32 characters.
 */
export function appUser(app: string): string {
  const lower = app.toLowerCase();
  const plain = `xamal-${lower}`;
  if (lower === app && plain.length <= MAX_USER_NAME) return plain;
  const hash = createHash('sha256').update(app).digest('hex').slice(0, 6);
  return `xamal-${lower.slice(0, MAX_USER_NAME - 'xamal-'.length - 7).replace(/[-_]+$/, '')}-${hash}`;
}

export interface AppLayout {
  /** `service[-dest]` */
  app: string;
  /** The system user (and group) the app's processes run as: never root, never the SSH user. */
  user: string;
  root: string;
  releases: string;
  slots: string;
  current: string;
  lock: string;
  /** The holder's details, inside the lock directory. */
  lockDetails: string;
  audit: string;
  tmp: string;
  /** The app's durable data (`STATE_DIRECTORY`): `/var/lib/xamal/<app>`, outside the app directory. */
  state: string;
}

export function appLayout(service: string, destination: string | undefined): AppLayout {
  const app = appName(service, destination);
  const root = `${XAMAL_ROOT}/${app}`;
  return {
    app,
    user: appUser(app),
    root,
    releases: `${root}/releases`,
    slots: `${root}/slots`,
    current: `${root}/current`,
    lock: `${root}/lock`,
    lockDetails: `${root}/lock/details.json`,
    audit: `${root}/audit.log`,
    tmp: `${root}/tmp`,
    state: `${STATE_ROOT}/${app}`,
  };
}

/** A role's slot on a host: its directory (env file, `release` symlink) and RELEASE_TMP. */
export interface SlotLayout {
  role: string;
  slot: Slot;
  dir: string;
  envFile: string;
  /** Symlink to `releases/<version>` (set by a deploy). */
  release: string;
  tmp: string;
  port: number;
  /**
   * The slot's own epmd (`ERL_EPMD_PORT`): `port + EPMD_PORT_OFFSET`. Each slot's node starts its own
   * epmd inside its unit, so stopping the other slot (which kills everything in that unit, an epmd
   * it started included) never unregisters this node: `console` and `rpc` still find it.
   */
  epmdPort: number;
}

export const EPMD_PORT_OFFSET = 10_000;

const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A version names a directory on every host: letters, digits, `. _ -` only. */
export function checkVersion(version: string): string {
  if (!VERSION_RE.test(version) || version.includes('..')) throw new XamalError('validation', `version: expected letters, digits, . _ - (a git SHA or a tag), got ${JSON.stringify(version)}`);
  return version;
}

/** `releases/<version>`: the version is checked here, so no path built from it can leave `releases/`. */
export function releaseDir(layout: AppLayout, version: string): string {
  return `${layout.releases}/${checkVersion(version)}`;
}

/**
 * A slot's port: `caddy.app_port + 2 × role index + slot` (roles in config order, blue 0, green 1).
 * Every role and slot gets its own port, so two slots of two roles never collide on a host.
 */
export function slotPort(config: Pick<DeployConfig, 'roles' | 'caddy'>, role: string, slot: Slot): number {
  const r = config.roles.findIndex((x) => x.name === role);
  if (r < 0) throw new XamalError('not_found', `no role ${JSON.stringify(role)} (roles: ${config.roles.map((x) => x.name).join(', ')})`);
  const port = config.caddy.appPort + 2 * r + SLOTS.indexOf(slot);
  if (port > 65535) throw new XamalError('validation', `caddy.app_port ${config.caddy.appPort} leaves no room for role ${role}'s slots (port ${port} > 65535)`);
  return port;
}

export function slotLayout(config: Pick<DeployConfig, 'roles' | 'caddy'>, layout: AppLayout, role: string, slot: Slot): SlotLayout {
  const dir = `${layout.slots}/${role}-${slot}`;
  const port = slotPort(config, role, slot);
  if (port + EPMD_PORT_OFFSET > 65535) throw new XamalError('validation', `caddy.app_port ${config.caddy.appPort} leaves no room for role ${role}'s epmd ports (port + ${EPMD_PORT_OFFSET} = ${port + EPMD_PORT_OFFSET} > 65535)`);
  return { role, slot, dir, envFile: `${dir}/env`, release: `${dir}/release`, tmp: `${layout.tmp}/${role}-${slot}`, port, epmdPort: port + EPMD_PORT_OFFSET };
}

/** The roles that run on `host`, in config order, with the host's tags in each. */
export function rolesOnHost(config: Pick<DeployConfig, 'roles'>, host: string): { name: string; tags: string[] }[] {
  return config.roles.flatMap((r) => r.hosts.filter((h) => h.host === host).map((h) => ({ name: r.name, tags: h.tags })));
}

/** The host the lock (and `release_command`) lives on: the first host of the primary role. */
export function primaryHost(config: Pick<DeployConfig, 'roles' | 'primaryRole' | 'hosts'>): string {
  const host = config.roles.find((r) => r.name === config.primaryRole)?.hosts[0]?.host ?? config.hosts[0];
  if (!host) throw new XamalError('validation', 'no hosts configured');
  return host;
}
