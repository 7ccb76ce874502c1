import type { CommandResult } from '../../core/index.ts';
import { CADDY_ADMIN_SOCKET, CADDY_TCP_ADMIN } from '../../deployer/commands/caddy.ts';
import type { Lab, LabHost } from './lab.ts';

/**
 * Reading a test host's Caddy admin API from a test: as root over SSH, on the unix socket where
 * `xamal setup` puts it (empty Host header, as Caddy 2.6 wants there), or on 127.0.0.1:2019 where a
 * fresh host's Caddy still listens.
 */
const READ_SCRIPT = `if [ -S "$1" ]; then exec curl -sS --max-time 5 --unix-socket "$1" -H 'Host;' "http://localhost$3"; fi
exec curl -sS --max-time 5 "$2$3"`;

/** `GET <path>` on the host's admin API, wherever it listens. */
export function caddyAdminGet(lab: Pick<Lab, 'ssh'>, h: LabHost, path: string): Promise<CommandResult> {
  return lab.ssh(h, { argv: ['sh', '-c', READ_SCRIPT, 'sh', CADDY_ADMIN_SOCKET, CADDY_TCP_ADMIN, path], label: `caddy admin GET ${path}` }, 'root');
}

/** The host's Caddy root CA (PEM), for clients that verify what `ssl: internal` serves. */
export async function caddyRootCa(lab: Pick<Lab, 'ssh'>, h: LabHost): Promise<string> {
  const r = await caddyAdminGet(lab, h, '/pki/ca/local');
  if (r.code !== 0) throw new Error(`${h.name}: Caddy admin API: ${r.stderr.trim()}`);
  return (JSON.parse(r.stdout) as { root_certificate: string }).root_certificate;
}
