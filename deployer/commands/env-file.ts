import { REDACTED, sensitive, type Command, type Sensitive } from '../../core/index.ts';
import type { ReleaseEnv } from '../secrets.ts';
import { asRoot, writeFileCommand } from './files.ts';
import type { AppLayout, SlotLayout } from './layout.ts';

/**
 * A slot's environment file (systemd `EnvironmentFile=`, also readable by `sh`'s `.`): the role's
 * clear and secret env, then the slot's own PORT, RELEASE_NODE, RELEASE_TMP, ERL_EPMD_PORT and the
 * app's STATE_DIRECTORY (which win).
 * Values are double-quoted with `\ " $ \`` escaped: the one syntax systemd and sh read alike.
 */

const envValue = (v: string) => `"${v.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;

/** Names the slot sets itself; the user's env cannot override them. */
export const SLOT_ENV_NAMES = ['PORT', 'RELEASE_NODE', 'RELEASE_TMP', 'ERL_EPMD_PORT', 'STATE_DIRECTORY'] as const;

/** The node name of a slot's release: unique per app, role and slot on a host. */
export function releaseNode(layout: AppLayout, slot: SlotLayout): string {
  return `${layout.app}-${slot.role}-${slot.slot}`.replace(/[^A-Za-z0-9_-]/g, '_');
}

export interface EnvFile {
  /** Sensitive when any value is a secret. */
  content: string | Sensitive;
  /** The text with secrets as [REDACTED], for display. */
  shown: string;
}

/**
 * The env file of one slot. `cookie` is RELEASE_COOKIE from the secrets, used when the role's env
 * does not set one (so every slot of an app shares the cookie and nodes can connect).
 */
export function envFile(layout: AppLayout, slot: SlotLayout, env: ReleaseEnv, cookie?: Sensitive): EnvFile {
  const entries: [string, string | Sensitive][] = [];
  const own = new Set<string>(SLOT_ENV_NAMES);
  for (const [k, v] of Object.entries(env.clear)) if (!own.has(k)) entries.push([k, v]);
  for (const [k, v] of Object.entries(env.secret)) if (!own.has(k)) entries.push([k, v]);
  if (cookie && !Object.hasOwn(env.clear, 'RELEASE_COOKIE') && !Object.hasOwn(env.secret, 'RELEASE_COOKIE')) entries.push(['RELEASE_COOKIE', cookie]);
  entries.push(['PORT', String(slot.port)], ['RELEASE_NODE', releaseNode(layout, slot)], ['RELEASE_TMP', slot.tmp], ['ERL_EPMD_PORT', String(slot.epmdPort)], ['STATE_DIRECTORY', layout.state]);
  const header = `# Managed by xamal (${layout.app}, ${slot.role} ${slot.slot}); \`xamal setup\` rewrites it.\n`;
  const text = (reveal: boolean) => header + entries.map(([k, v]) => `${k}=${typeof v === 'string' ? envValue(v) : reveal ? envValue(v.reveal()) : REDACTED}\n`).join('');
  const secret = entries.some(([, v]) => typeof v !== 'string');
  return { content: secret ? sensitive(text(true)) : text(true), shown: text(false) };
}

/**
 * Env files are read by systemd (as root) and by `release_command` / `app exec` (as the app's user):
 * owner the SSH user, group the app's, mode 0440 — no one else, and not even the app can change it.
 */
export const ENV_FILE_MODE = 0o440;

/** Root step (the group is the app's): writes a slot's env file through stdin. */
export function writeEnvFileCommand(layout: AppLayout, slot: SlotLayout, file: EnvFile, sshUser: string, label = `write ${slot.envFile}`): Command {
  return asRoot(writeFileCommand(slot.envFile, file.content, ENV_FILE_MODE, label, `${sshUser}:${layout.user}`), sshUser);
}
