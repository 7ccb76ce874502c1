import { createHash } from 'node:crypto';
import { revealArg, type CommandResult } from '../../core/index.ts';
import { CADDY_ADMIN_LISTEN, CADDY_ADMIN_SOCKET, CADDY_BOOT_CONFIG, CADDY_DROP_IN, CADDY_TCP_ADMIN } from '../../deployer/commands/caddy.ts';
import { applyCaddyRequests, caddyEtag } from '../../deployer/commands/caddy-draft.ts';
import type { CaddyRequest, CaddyResponse, RecordedStep, SessionResponder } from '../../deployer/remote.ts';

/**
 * A simulated Debian host for flow tests: a file tree, packages, systemd units and a Caddy admin API
 * (GET/POST/PUT/PATCH/DELETE on /config paths and /id/<id>, `If-Match`) to check that a flow's
 * requests leave the config it meant to. Answers the commands our builders make.
 */
export interface FakeFile {
  type: 'directory' | 'file';
  mode: number;
  owner: string;
  /** The owner's group unless set. */
  group?: string;
  content?: string;
}

export class FakeHost {
  files = new Map<string, FakeFile>();
  packages = new Set<string>(['systemd', 'sudo']);
  /** System users (useradd). */
  users = new Set<string>(['root']);
  caddyBinary = true;
  units = { 'caddy-api': { enabled: true, active: true, exists: true }, caddy: { enabled: false, active: false, exists: true } };
  caddy: unknown = null;
  /** Where Caddy's admin API listens: 127.0.0.1:2019 (a fresh package) or the unix socket. */
  caddyAdmin: 'tcp' | 'socket' = 'tcp';
  /** Every `systemctl …` argv run as root. */
  systemctl: string[][] = [];
  down = false;

  constructor(readonly name: string, readonly user = 'deploy') {
    this.users.add(user);
    for (const d of ['/opt', '/etc', '/etc/systemd', '/etc/systemd/system']) this.files.set(d, { type: 'directory', mode: 0o755, owner: 'root' });
  }

  respond(step: RecordedStep): Partial<CommandResult> | CaddyResponse | undefined {
    if (this.down) throw new Error(`${this.name}: connect ECONNREFUSED`);
    if (step.kind === 'caddy') {
      if (this.caddyAdmin !== 'socket') throw new Error(`${this.name}: Caddy admin API unreachable (${CADDY_ADMIN_SOCKET}): No such file or directory`);
      return this.caddyApi(step.request.method, step.request.path, step.request.body, step.request.ifMatch);
    }
    if (step.kind !== 'run') return undefined;
    let argv = step.command.argv.map(revealArg);
    let owner = this.user;
    if (argv[0] === 'sudo') {
      argv = argv.slice(2);
      owner = 'root';
      if (argv[0] === 'env') argv = argv.slice(1).filter((a) => !/^[A-Z_]+=/.test(a));
    }
    const stdin = step.command.stdin === undefined ? '' : revealArg(step.command.stdin);
    return this.exec(argv, stdin, owner);
  }

  private exec(argv: string[], stdin: string, owner: string): Partial<CommandResult> {
    const [cmd, ...args] = argv;
    if (cmd === 'sh' && args[0] === '-c') return this.script(args[1]!, args.slice(3), stdin, owner);
    if (cmd === 'mkdir') {
      for (const p of args.filter((a) => a.startsWith('/'))) this.mkdirp(p, owner);
      return {};
    }
    if (cmd === 'chmod') {
      const mode = parseInt(args[0]!, 8);
      for (const p of args.slice(2)) this.files.get(p)!.mode = mode;
      return {};
    }
    if (cmd === 'getent' && args[0] === 'passwd') return this.users.has(args[1]!) ? { stdout: `${args[1]}:x:999:999::/nonexistent:/usr/sbin/nologin\n` } : { code: 2 };
    if (cmd === 'useradd') {
      if (owner !== 'root') return { code: 1, stderr: 'useradd: Permission denied.' };
      const name = args[args.length - 1]!;
      if (this.users.has(name)) return { code: 9, stderr: `useradd: user '${name}' already exists` };
      this.users.add(name);
      return {};
    }
    if (cmd === 'runuser') {
      if (owner !== 'root') return { code: 1, stderr: 'runuser: may not be used by non-root users' };
      return this.exec(args.slice(args.indexOf('--') + 1), stdin, args[1]!);
    }
    if (cmd === 'test' && args[0] === '-S') return { code: args[1] === CADDY_ADMIN_SOCKET && this.caddyAdmin === 'socket' && owner === 'root' ? 0 : 1 };
    if (cmd === 'curl') return this.curl(args, stdin, owner);
    if (cmd === 'dpkg-query') {
      const pkgs = args.slice(args.indexOf('--') + 1);
      return { code: pkgs.every((p) => this.packages.has(p)) ? 0 : 1, stdout: pkgs.filter((p) => this.packages.has(p)).map((p) => `${p} installed\n`).join('') };
    }
    if (cmd === 'apt-get') {
      if (args[0] === 'install') for (const p of args.slice(args.indexOf('--') + 1)) this.packages.add(p);
      if (args.includes('caddy')) {
        this.caddyBinary = true;
        this.units.caddy = { enabled: true, active: true, exists: true };
        this.units['caddy-api'] = { enabled: false, active: false, exists: true };
      }
      return {};
    }
    if (cmd === 'systemctl') {
      this.systemctl.push(argv);
      const verb = args[0];
      const now = args.includes('--now');
      for (const u of args.slice(args.indexOf('--') + 1)) {
        const k = u.replace(/\.service$/, '') as keyof FakeHost['units'];
        if (!(k in this.units)) continue;
        if (verb === 'enable') Object.assign(this.units[k], { enabled: true, ...(now ? { active: true } : {}) });
        if (verb === 'disable') Object.assign(this.units[k], { enabled: false, ...(now ? { active: false } : {}) });
        if (verb === 'restart' && k === 'caddy-api') this.restartCaddy();
      }
      return {};
    }
    return { code: 127, stderr: `fake host: unknown command ${argv.join(' ')}` };
  }

  private mkdirp(path: string, owner: string) {
    const parts = path.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const p = `/${parts.slice(0, i).join('/')}`;
      if (!this.files.has(p)) this.files.set(p, { type: 'directory', mode: 0o755, owner });
    }
  }

  private parent(p: string) {
    return p.slice(0, p.lastIndexOf('/')) || '/';
  }

  /** Our fixed scripts, recognised by their text. */
  private script(text: string, args: string[], stdin: string, owner: string): Partial<CommandResult> {
    const sha = (t: string) => createHash('sha256').update(t).digest('hex');
    if (text.startsWith('stat -c')) {
      const stats: string[] = [];
      const sums: string[] = [];
      for (const p of args) {
        const f = this.files.get(p);
        if (!f) continue;
        stats.push(`${f.type === 'directory' ? 'directory' : 'regular file'}|${f.mode.toString(8)}|${f.owner}|${f.group ?? f.owner}|${p}`);
        if (f.type === 'file') sums.push(`${sha(f.content ?? '')}  ${p}`);
      }
      return { stdout: `${stats.join('\n')}\n--\n${sums.join('\n')}\n` };
    }
    if (text.includes('.xamal-new')) {
      const [path, mode, chown] = args as [string, string, string | undefined];
      if (this.files.get(this.parent(path))?.type !== 'directory') return { code: 1, stderr: `${path}: No such file or directory` };
      if (path.startsWith('/etc/') && owner !== 'root') return { code: 1, stderr: `${path}: Permission denied` };
      if (chown && owner !== 'root') return { code: 1, stderr: `chown: changing ownership of '${path}': Operation not permitted` };
      const [user, group] = chown ? chown.split(':') : [owner, undefined];
      if (group && !this.users.has(group)) return { code: 1, stderr: `chown: invalid group: '${chown}'` };
      this.files.set(path, { type: 'file', mode: parseInt(mode, 8), owner: user!, ...(group ? { group } : {}), content: stdin });
      return {};
    }
    if (text.startsWith('mkdir -p -- "$1" && chown')) {
      if (owner !== 'root') return { code: 1, stderr: 'Permission denied' };
      if (!this.users.has(args[1]!)) return { code: 1, stderr: `chown: invalid user: '${args[1]}:'` };
      this.mkdirp(args[0]!, 'root');
      Object.assign(this.files.get(args[0]!)!, { owner: args[1]!, mode: parseInt(args[2]!, 8) });
      return {};
    }
    if (text.startsWith('mkdir -p -m 0755 -- "$3" && mkdir -p -- "$1" && chown -R')) {
      // The state directory: its parent root's, the directory and everything in it the user's, 0700.
      if (owner !== 'root') return { code: 1, stderr: 'Permission denied' };
      if (!this.users.has(args[1]!)) return { code: 1, stderr: `chown: invalid user: '${args[1]}:'` };
      this.mkdirp(args[0]!, 'root');
      for (const [p, f] of this.files) if (p === args[0] || p.startsWith(`${args[0]}/`)) f.owner = args[1]!;
      this.files.get(args[0]!)!.mode = 0o700;
      return {};
    }
    if (text.startsWith('printf "bin=')) {
      const u = (k: keyof FakeHost['units']) => `${k}=${this.units[k].exists ? (this.units[k].enabled ? 'enabled' : 'disabled') : ''}/${this.units[k].active ? 'active' : 'inactive'}`;
      const sum = (p: string) => (this.files.get(p)?.content === undefined ? '' : sha(this.files.get(p)!.content!));
      const socket = this.caddyAdmin === 'socket' && owner === 'root' ? 'yes' : '';
      return { stdout: `bin=${this.caddyBinary ? '/usr/bin/caddy' : ''}\n${u('caddy-api')}\n${u('caddy')}\ndropin=${sum(CADDY_DROP_IN)}\nboot=${sum(CADDY_BOOT_CONFIG)}\nsocket=${socket}\n` };
    }
    const root = args[0]!;
    const lock = `${root}/lock`;
    const details = `${lock}/details.json`;
    if (text.includes('mv -T -- "$t" "$1/lock"')) {
      if (!this.files.has(root)) return { code: 4 };
      if (this.files.has(lock)) return { code: 3, stdout: this.files.get(details)?.content ?? '' };
      this.files.set(lock, { type: 'directory', mode: 0o755, owner });
      this.files.set(details, { type: 'file', mode: 0o644, owner, content: stdin });
      return {};
    }
    if (text.includes('[ -d "$1/lock" ] || exit 3; cat')) {
      if (!this.files.has(root)) return { code: 4 };
      if (!this.files.has(lock)) return { code: 3 };
      return { stdout: this.files.get(details)?.content ?? '' };
    }
    if (text.includes('lock.released')) {
      if (!this.files.has(lock)) return { code: 3 };
      this.files.delete(details);
      this.files.delete(lock);
      return {};
    }
    if (text.startsWith('cmp -s')) {
      if (this.files.get(details)?.content !== stdin) return { code: 5 };
      this.files.delete(details);
      this.files.delete(lock);
      return {};
    }
    if (text.includes('cat >> "$2"')) {
      if (!this.files.has(root)) return {};
      const f = this.files.get(args[1]!) ?? { type: 'file' as const, mode: 0o600, owner, content: '' };
      f.content = (f.content ?? '') + stdin;
      this.files.set(args[1]!, f);
      return {};
    }
    if (text.includes('install -d -o caddy -g caddy -m 0755 /var/log/caddy')) {
      if (this.files.has('/var/log/caddy')) return {};
      this.files.set('/var/log/caddy', { type: 'directory', mode: 0o755, owner: 'caddy:caddy' });
      return { stdout: 'made\n' };
    }
    if (text.includes('tail -n')) {
      const f = this.files.get(args[0]!);
      return { stdout: f ? (f.content ?? '').split('\n').filter(Boolean).slice(-Number(args[1])).join('\n') + '\n' : '' };
    }
    return { code: 127, stderr: `fake host: unknown script ${text}` };
  }

  // --- Caddy -----------------------------------------------------------------------------------

  /** caddy-api restarted: the autosave's admin address, else (no autosave) the boot config's with the drop-in. */
  private restartCaddy() {
    if (this.caddy === null && this.files.has(CADDY_DROP_IN) && this.files.has(CADDY_BOOT_CONFIG)) this.caddy = { admin: { listen: CADDY_ADMIN_LISTEN } };
    this.caddyAdmin = this.adminListen();
  }

  private adminListen(): 'tcp' | 'socket' {
    const admin = (this.caddy as { admin?: { listen?: string } } | null)?.admin;
    return admin?.listen === CADDY_ADMIN_LISTEN ? 'socket' : 'tcp';
  }

  /** `curl … -X M [--data-binary @-] -w '\n%{http_code}' URL`: the admin API on its TCP address. */
  private curl(args: string[], stdin: string, owner: string): Partial<CommandResult> {
    const url = args[args.length - 1]!;
    if (args.includes('--unix-socket')) return { code: 2, stderr: 'fake host: socket calls are caddy steps' };
    if (!url.startsWith(CADDY_TCP_ADMIN) || this.caddyAdmin !== 'tcp') return { code: 7, stderr: `curl: (7) Failed to connect to ${url}` };
    if (owner !== 'root') return { code: 1, stderr: 'fake host: the admin API is called as root' };
    const method = args[args.indexOf('-X') + 1]!;
    const r = this.caddyApi(method, url.slice(CADDY_TCP_ADMIN.length), stdin ? JSON.parse(stdin) : undefined);
    return { stdout: `${r.body}\n${r.status}` };
  }

  private caddyApi(method: string, path: string, body: unknown, ifMatch?: string): CaddyResponse {
    const r = this.caddyRequest(method, path, body, ifMatch);
    if (method !== 'GET' && r.status === 200) this.caddyAdmin = this.adminListen();
    return r;
  }

  /** Reads as Caddy answers them; changes through the deployer's own model of Caddy's semantics (commands/caddy-draft.ts), `If-Match` checked. */
  private caddyRequest(method: string, path: string, body: unknown, ifMatch?: string): CaddyResponse {
    const ok = (b: unknown = undefined): CaddyResponse => ({ status: 200, body: b === undefined ? '' : `${JSON.stringify(b)}\n` });
    const fail = (status: number, msg: string): CaddyResponse => ({ status, body: JSON.stringify({ error: msg }) });
    if (path === '/reverse_proxy/upstreams') return ok([]);
    if (!path.startsWith('/id/') && !path.startsWith('/config/')) return fail(404, 'not found');
    const id = path.startsWith('/id/') ? path.slice(4).split('/')[0]! : undefined;
    if (id !== undefined && !findPath(this.caddy, id)) return fail(404, `unknown object ID '${id}'`);
    if (method !== 'GET') {
      if (ifMatch !== undefined && ifMatch !== caddyEtag('/config/', ok(this.caddy).body)) return fail(412, 'If-Match header did not match current config hash');
      try {
        this.caddy = applyCaddyRequests(this.caddy, [{ method: method as CaddyRequest['method'], path, body }]);
        return ok();
      } catch (err) {
        return fail(400, err instanceof Error ? err.message : String(err));
      }
    }
    const keys = id !== undefined ? [...findPath(this.caddy, id)!, ...path.slice(4).split('/').slice(1).filter(Boolean)] : path.slice('/config/'.length).split('/').filter(Boolean).map(decodeURIComponent);
    const parent = keys.slice(0, -1).reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), this.caddy);
    if (keys.length === 0) return ok(this.caddy);
    if (!parent || typeof parent !== 'object') return fail(400, `invalid traversal path at: ${keys.slice(0, -1).join('/')}`);
    return ok((parent as Record<string, unknown>)[keys[keys.length - 1]!] ?? null);
  }
}

function findPath(v: unknown, id: string, path: string[] = []): string[] | undefined {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const f = findPath(v[i], id, [...path, String(i)]);
      if (f) return f;
    }
  } else if (v && typeof v === 'object') {
    if ((v as Record<string, unknown>)['@id'] === id) return path;
    for (const [k, x] of Object.entries(v)) {
      const f = findPath(x, id, [...path, k]);
      if (f) return f;
    }
  }
  return undefined;
}

/** A responder over several fake hosts (by name). */
export function fakeHosts(hosts: FakeHost[]): SessionResponder {
  const byName = new Map(hosts.map((h) => [h.name, h]));
  return (step) => byName.get(step.host)?.respond(step);
}
