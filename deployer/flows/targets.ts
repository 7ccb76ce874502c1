import { XamalError } from '../../core/index.ts';
import type { DeployConfig } from '../config/schema.ts';

/** `-h HOSTS` and `-r ROLES`: comma-separated names with `*` wildcards, as in Kamal. */

function matcher(patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.map((p) => new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`));
  return (name) => res.some((r) => r.test(name));
}

/** `"web*,db1"` → `["web*", "db1"]`; repeated flags are joined. */
export function splitPatterns(values: readonly string[] | string | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  const list = (typeof values === 'string' ? [values] : values).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  return list.length ? list : undefined;
}

export interface Targets {
  /** Selected hosts, in config order. */
  hosts: string[];
  /** Selected roles, in config order. */
  roles: string[];
}

export interface TargetSelection {
  /** `-h`: host patterns. */
  hosts?: readonly string[] | undefined;
  /** `-r`: role patterns. */
  roles?: readonly string[] | undefined;
  /** `-p`: only the primary host: the primary role's first host, or with -r the first selected role's (Kamal's). */
  primary?: boolean | undefined;
}

/** The hosts and roles the command acts on; a pattern matching nothing is an error naming the choices. */
export function selectTargets(config: Pick<DeployConfig, 'roles' | 'hosts' | 'primaryRole'>, sel: TargetSelection = {}): Targets {
  // Kamal lets --primary silently replace --hosts; naming the conflict is clearer.
  if (sel.primary && sel.hosts) throw new XamalError('usage', '--primary and --hosts cannot be combined: --primary picks the one host itself (the primary role\'s first host, or with --roles the first selected role\'s)');
  const roleNames = config.roles.map((r) => r.name);
  if (sel.roles) {
    for (const p of sel.roles) if (!roleNames.some(matcher([p]))) throw new XamalError('not_found', `no role matches ${JSON.stringify(p)} (roles: ${roleNames.join(', ')})`);
  }
  if (sel.hosts) {
    for (const p of sel.hosts) if (!config.hosts.some(matcher([p]))) throw new XamalError('not_found', `no host matches ${JSON.stringify(p)} (hosts: ${config.hosts.join(', ')})`);
  }
  const roles = sel.roles ? roleNames.filter(matcher(sel.roles)) : roleNames;
  if (sel.primary) return { hosts: [primaryHost(config, sel.roles ? roles[0]! : config.primaryRole)], roles };
  const inRoles = new Set(config.roles.filter((r) => roles.includes(r.name)).flatMap((r) => r.hosts.map((h) => h.host)));
  const hosts = config.hosts.filter((h) => inRoles.has(h) && (!sel.hosts || matcher(sel.hosts)(h)));
  if (!hosts.length) throw new XamalError('not_found', `no host is in the selected roles and hosts (roles: ${roles.join(', ')})`);
  return { hosts, roles };
}

/** The first host of a role (the one `-p` picks). */
function primaryHost(config: Pick<DeployConfig, 'roles'>, roleName: string): string {
  const host = config.roles.find((r) => r.name === roleName)?.hosts[0]?.host;
  if (!host) throw new XamalError('not_found', `--primary: role ${roleName} has no hosts`);
  return host;
}
