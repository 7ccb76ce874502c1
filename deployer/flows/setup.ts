import { createHash } from 'node:crypto';
import { runChecked, XamalError, type Command, type Sensitive } from '../../core/index.ts';
import { dirname } from 'node:path';
import {
  appSite,
  CADDY_ADMIN_LISTEN,
  CADDY_ADMIN_SOCKET,
  CADDY_BOOT_CONFIG,
  CADDY_DROP_IN,
  caddyAdminCommand,
  caddyBootConfig,
  caddyDropIn,
  caddyFactsCommand,
  caddySocketCommand,
  parseCaddyAdminOutput,
  parseCaddyFacts,
  parseCaddyJson,
  type CaddyFacts,
} from '../commands/caddy.ts';
import { appUserExistsCommand, createAppUserCommand, stateDirCommand } from '../commands/app-user.ts';
import { ENV_FILE_MODE, envFile, writeEnvFileCommand } from '../commands/env-file.ts';
import { asRoot, fileStateCommand, mkdirCommand, ownedDirCommand, parseFileStates, writeFileCommand, type FileState } from '../commands/files.ts';
import { rolesOnHost, slotLayout, SLOTS, type SlotLayout } from '../commands/layout.ts';
import { aptInstallCommand, aptUpdateCommand, missingPackages, packageStatusCommand } from '../commands/packages.ts';
import { daemonReloadCommand, systemctlCommand, unitFileFor, unitPath } from '../commands/systemd.ts';
import type { CaddyRequest, HostSession } from '../remote.ts';
import { releaseEnv } from '../secrets.ts';
import { auditResult, recordAudit } from './audit.ts';
import { ensureCaddySite } from './caddy.ts';
import { accessLogDirCommand } from '../commands/access-log.ts';
import type { RemoteContext } from './context.ts';
import { onHosts, type HostOutcome } from './parallel.ts';

/**
 * `xamal server bootstrap` and `xamal setup`, idempotent: each step first looks at the host and
 * changes only what differs, so a second run changes nothing and reports so.
 *
 * bootstrap: the config's `packages`, and on hosts of the primary role Caddy (installed if missing,
 * run as caddy-api.service so admin-API config survives restarts, its admin API on a unix socket).
 * setup: bootstrap, then the app: its system user, directories, one systemd template unit per role
 * (sandboxed, run as that user), one env file per role and slot (0440, group the app's), and the
 * app's Caddy route.
 */

export interface HostSetup {
  changes: string[];
  warnings: string[];
}

export interface SetupOptions {
  /** Host-level steps only (`server bootstrap`). */
  bootstrapOnly?: boolean;
}

const sha256 = (t: string | Sensitive) => createHash('sha256').update(typeof t === 'string' ? t : t.reveal()).digest('hex');

/** A command's stdout; one that fails throws with its output's last lines. */
const run = async (session: HostSession, cmd: Command): Promise<string> => (await runChecked(session, cmd)).stdout;

function servesHttp(ctx: RemoteContext, host: string): boolean {
  return ctx.targets.roles.includes(ctx.config.primaryRole) && rolesOnHost(ctx.config, host).some((r) => r.name === ctx.config.primaryRole);
}

/** Packages and Caddy. */
async function bootstrapHost(ctx: RemoteContext, s: HostSession, out: HostSetup): Promise<void> {
  const user = ctx.sshUser(s.host);
  const root = (c: Command) => asRoot(c, user);
  let updated = false;
  const install = async (pkgs: string[]) => {
    if (!updated) await run(s, root(aptUpdateCommand()));
    updated = true;
    await run(s, root(aptInstallCommand(pkgs)));
  };
  const packages = ctx.config.packages;
  if (packages.length) {
    const r = await s.run(packageStatusCommand(packages));
    const missing = missingPackages(packages, r.stdout);
    if (missing.length) {
      await install(missing);
      out.changes.push(`installed ${missing.join(' ')}`);
    }
  }
  if (!servesHttp(ctx, s.host)) return;
  const facts = parseCaddyFacts(await run(s, root(caddyFactsCommand())));
  if (await ensureCaddyApi(s, facts, root, install, out)) await ensureCaddyAdminSocket(s, facts, root, out);
}

/** Caddy installed and run as caddy-api.service; false when it runs from a Caddyfile (a warning). */
async function ensureCaddyApi(s: HostSession, facts: CaddyFacts, root: (c: Command) => Command, install: (pkgs: string[]) => Promise<void>, out: HostSetup): Promise<boolean> {
  if (!facts.installed) {
    try {
      await install(['caddy']);
    } catch (err) {
      throw new XamalError('external', `${(err as Error).message}\n(Caddy is not packaged for this Debian release before 12: install it from Caddy's repository, https://caddyserver.com/docs/install#debian-ubuntu-raspbian, then run setup again)`);
    }
    // The package starts caddy.service (Caddyfile); xamal drives Caddy through its admin API.
    await run(s, root(systemctlCommand('disable', ['caddy.service'], true)));
    await run(s, root(systemctlCommand('enable', ['caddy-api.service'], true)));
    out.changes.push('installed caddy (caddy-api.service)');
  } else if (facts.api.active) {
    if (!facts.api.enabled) {
      await run(s, root(systemctlCommand('enable', ['caddy-api.service'])));
      out.changes.push('enabled caddy-api.service');
    }
  } else if (facts.caddyfile.active) {
    out.warnings.push(
      `Caddy runs as caddy.service from /etc/caddy/Caddyfile: routes xamal adds through the admin API are lost when it restarts, and xamal reaches the admin API only on ${CADDY_ADMIN_SOCKET} (caddy-api.service). Switch to caddy-api.service (systemctl disable --now caddy; systemctl enable --now caddy-api) after moving your Caddyfile sites to the API, then run setup again.`,
    );
    return false;
  } else if (facts.api.exists) {
    await run(s, root(systemctlCommand('enable', ['caddy-api.service'], true)));
    out.changes.push('started caddy-api.service');
  } else {
    throw new XamalError('external', 'Caddy is installed but neither caddy-api.service nor caddy.service exists or runs; install Caddy\'s caddy-api.service, then run setup again');
  }
  return true;
}

/**
 * Caddy's admin API onto its unix socket on a host already running caddy-api.service (what setup
 * does after installing Caddy); returns the changes. For tools that drive Caddy without a deploy.yml.
 */
export async function ensureCaddyAdmin(s: HostSession, sshUser: string): Promise<string[]> {
  const root = (c: Command) => asRoot(c, sshUser);
  const out: HostSetup = { changes: [], warnings: [] };
  await ensureCaddyAdminSocket(s, parseCaddyFacts(await run(s, root(caddyFactsCommand()))), root, out);
  return out.changes;
}

/**
 * The admin API on a unix socket only root opens: caddy-api's drop-in and boot config (written and
 * Caddy restarted once, when they differ), then, if Caddy resumed an autosave still listening on
 * 127.0.0.1:2019, the API itself moved to the socket (one GET and one POST on the old address, the
 * rest of its `admin` settings kept; Caddy answers before it closes the old listener).
 */
async function ensureCaddyAdminSocket(s: HostSession, facts: CaddyFacts, root: (c: Command) => Command, out: HostSetup): Promise<void> {
  let onSocket = facts.adminSocket;
  if (facts.dropIn !== sha256(caddyDropIn()) || facts.bootConfig !== sha256(caddyBootConfig())) {
    await run(s, root(mkdirCommand([dirname(CADDY_DROP_IN), dirname(CADDY_BOOT_CONFIG)])));
    await run(s, root(writeFileCommand(CADDY_BOOT_CONFIG, caddyBootConfig(), 0o644)));
    await run(s, root(writeFileCommand(CADDY_DROP_IN, caddyDropIn(), 0o644)));
    await run(s, root(daemonReloadCommand()));
    await run(s, root(systemctlCommand('restart', ['caddy-api.service'])));
    out.changes.push(`wrote ${CADDY_DROP_IN} (caddy-api.service restarted)`);
    onSocket = (await s.run(root(caddySocketCommand()))).code === 0;
  }
  if (onSocket) return;
  const tcp = async (req: CaddyRequest) => {
    const r = parseCaddyAdminOutput(await run(s, root(caddyAdminCommand(req, 'tcp'))));
    if (r.status < 200 || r.status >= 300) throw new XamalError('external', `${s.host}: moving Caddy's admin API to ${CADDY_ADMIN_SOCKET}: ${req.method} ${req.path} answered ${r.status}: ${r.body.trim().slice(0, 300)}`);
    return r.body;
  };
  const config = parseCaddyJson(await tcp({ method: 'GET', path: '/config/', label: 'read Caddy config' }));
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  // An empty Caddy has no key to POST under: the whole config is the admin section then.
  if (isObject(config)) {
    const admin = { ...(isObject(config.admin) ? config.admin : {}), listen: CADDY_ADMIN_LISTEN };
    await tcp({ method: 'POST', path: '/config/admin', body: admin, label: 'move admin API to its socket' });
  } else {
    await tcp({ method: 'POST', path: '/config/', body: { admin: { listen: CADDY_ADMIN_LISTEN } }, label: 'move admin API to its socket' });
  }
  out.changes.push(`Caddy admin API moved from 127.0.0.1:2019 to ${CADDY_ADMIN_SOCKET}`);
}

type SlotOnHost = SlotLayout & { onHost: { name: string; tags: string[] } };

/** The app's system user, created once. */
async function ensureAppUser(ctx: RemoteContext, s: HostSession, out: HostSetup): Promise<void> {
  if ((await s.run(appUserExistsCommand(ctx.layout))).code === 0) return;
  await run(s, asRoot(createAppUserCommand(ctx.layout), ctx.sshUser(s.host)));
  out.changes.push(`created user ${ctx.layout.user}`);
}

/** APP (the SSH user's), its shared dirs, each slot's RELEASE_TMP and the app's state directory (the app user's, 0700). */
async function ensureDirs(ctx: RemoteContext, s: HostSession, state: Map<string, FileState>, slots: SlotOnHost[], out: HostSetup): Promise<void> {
  const { layout } = ctx;
  const user = ctx.sshUser(s.host);
  const appDir = state.get(layout.root);
  if (appDir?.type !== 'directory' || appDir.owner !== user) {
    await run(s, asRoot(ownedDirCommand(layout.root, user), user));
    out.changes.push(appDir ? `${layout.root} given to ${user}` : `created ${layout.root}`);
  }
  const missingDirs = [layout.releases, layout.slots, layout.tmp, ...slots.map((x) => x.dir)].filter((d) => state.get(d)?.type !== 'directory');
  if (missingDirs.length) {
    await run(s, mkdirCommand(missingDirs));
    out.changes.push(...missingDirs.map((d) => `created ${d}`));
  }
  for (const x of slots) {
    const st = state.get(x.tmp);
    if (st?.type === 'directory' && st.owner === layout.user && st.mode === 0o700) continue;
    await run(s, asRoot(ownedDirCommand(x.tmp, layout.user, 0o700), user));
    out.changes.push(st ? `${x.tmp} given to ${layout.user}` : `created ${x.tmp}`);
  }
  const st = state.get(layout.state);
  if (st?.type === 'directory' && st.owner === layout.user && st.mode === 0o700) return;
  await run(s, asRoot(stateDirCommand(layout), user));
  out.changes.push(st ? `${layout.state} given to ${layout.user}` : `created ${layout.state} (the app's data, STATE_DIRECTORY)`);
}

/** One unit per role, written only when it differs; then one daemon-reload. */
async function ensureUnits(ctx: RemoteContext, s: HostSession, state: Map<string, FileState>, roles: string[], out: HostSetup): Promise<void> {
  const user = ctx.sshUser(s.host);
  let reload = false;
  for (const role of roles) {
    const path = unitPath(ctx.layout.app, role);
    const content = unitFileFor(ctx.config, ctx.layout, role);
    if (state.get(path)?.sha256 === sha256(content) && state.get(path)?.mode === 0o644) continue;
    await run(s, asRoot(writeFileCommand(path, content, 0o644, `write ${path}`), user));
    out.changes.push(`${state.has(path) ? 'updated' : 'wrote'} ${path}`);
    reload = true;
  }
  if (reload) await run(s, asRoot(daemonReloadCommand(), user));
}

/** Each slot's env file: content, mode 0440, owner the SSH user, group the app's. */
async function ensureEnvFiles(ctx: RemoteContext, s: HostSession, state: Map<string, FileState>, slots: SlotOnHost[], out: HostSetup): Promise<void> {
  const { config, layout } = ctx;
  const user = ctx.sshUser(s.host);
  for (const x of slots) {
    const file = envFile(layout, x, releaseEnv(config, ctx.secrets, x.onHost.name, x.onHost.tags), ctx.secrets.get('RELEASE_COOKIE'));
    const st = state.get(x.envFile);
    const same = st?.sha256 === sha256(file.content);
    if (same && st.mode === ENV_FILE_MODE && st.owner === user && st.group === layout.user) continue;
    await run(s, writeEnvFileCommand(layout, x, file, user));
    out.changes.push(same ? `${x.envFile} permissions set to 0440 ${user}:${layout.user}` : `${st ? 'updated' : 'wrote'} ${x.envFile}`);
  }
}

/** The app's user, directories, units, env files, Caddy route. */
async function setupApp(ctx: RemoteContext, s: HostSession, out: HostSetup): Promise<void> {
  const { config, layout } = ctx;
  const roles = rolesOnHost(config, s.host).filter((r) => ctx.targets.roles.includes(r.name));
  const slots: SlotOnHost[] = roles.flatMap((r) => SLOTS.map((slot) => ({ onHost: r, ...slotLayout(config, layout, r.name, slot) })));
  const units = [...new Set(roles.map((r) => r.name))];
  const paths = [layout.root, layout.releases, layout.slots, layout.tmp, ...slots.flatMap((x) => [x.dir, x.tmp, x.envFile]), ...units.map((r) => unitPath(layout.app, r)), layout.state];

  await ensureAppUser(ctx, s, out);
  const state = parseFileStates(await run(s, fileStateCommand(paths)));
  await ensureDirs(ctx, s, state, slots, out);
  await ensureUnits(ctx, s, state, units, out);
  await ensureEnvFiles(ctx, s, state, slots, out);

  if (servesHttp(ctx, s.host)) {
    const site = appSite(config, layout);
    if (site.accessLog && (await run(s, asRoot(accessLogDirCommand(), ctx.sshUser(s.host)))).trim() === 'made') out.changes.push('/var/log/caddy made (Caddy\'s, for the app\'s access log)');
    const caddy = await ensureCaddySite(s, site);
    out.changes.push(...caddy.changes);
    out.warnings.push(...caddy.warnings);
  }
}

export async function setupHost(ctx: RemoteContext, host: string, opts: SetupOptions = {}): Promise<HostSetup> {
  const s = await ctx.pool.session(host);
  const out: HostSetup = { changes: [], warnings: [] };
  try {
    await bootstrapHost(ctx, s, out);
    if (!opts.bootstrapOnly) await setupApp(ctx, s, out);
  } catch (err) {
    await recordAudit(ctx, s, { result: auditResult(err) });
    if (out.changes.length && err instanceof Error) err.message += `\n(changed before the failure: ${out.changes.join('; ')})`;
    throw err;
  }
  await recordAudit(ctx, s, { result: out.changes.length ? `ok: ${out.changes.length} change(s)` : 'ok: nothing changed' });
  return out;
}

/** Runs setup (or bootstrap) on every selected host in parallel; every host's outcome is returned. */
export async function setup(ctx: RemoteContext, opts: SetupOptions = {}): Promise<HostOutcome<HostSetup>[]> {
  return onHosts(ctx.targets.hosts, (host) => setupHost(ctx, host, opts), { concurrency: ctx.concurrency });
}
