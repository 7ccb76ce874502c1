import { command, XamalError, type Command, type Sensitive } from '../../core/index.ts';

/**
 * Commands that inspect and change files on a host, and the one helper that decides how a root
 * step runs. Contents always travel on stdin, never in argv (where `ps` would show them). Scripts
 * passed to `sh -c` are fixed text; paths reach them as positional parameters.
 */

/** Runs `cmd` as root: unchanged for root, `sudo -n` (never prompts) for anyone else. */
export function asRoot(cmd: Command, sshUser: string): Command {
  if (sshUser === 'root') return cmd;
  const env = Object.entries(cmd.env ?? {});
  // sudo resets the environment: variables go through `env` in argv, so they must not be secrets.
  if (env.some(([, v]) => typeof v !== 'string')) throw new XamalError('internal', `refusing to pass a secret in argv (${cmd.label ?? String(cmd.argv[0])})`);
  const { env: _dropped, ...rest } = cmd;
  return { ...rest, argv: ['sudo', '-n', ...(env.length ? ['env', ...env.map(([k, v]) => `${k}=${String(v)}`)] : []), ...cmd.argv] };
}

const WRITE_SCRIPT = 'umask 077; t="$1.xamal-new"; cat > "$t" && { [ -z "$3" ] || chown -- "$3" "$t"; } && chmod "$2" "$t" && mv -f "$t" "$1"';

/**
 * Replaces `path` with stdin atomically (temp file, chown, chmod, rename), with `mode` and, when
 * given, `owner` (`user:group`; changing it is a root step). The file is never readable by others
 * in between.
 */
export function writeFileCommand(path: string, content: string | Sensitive, mode: number, label?: string, owner?: string): Command {
  return command(['sh', '-c', WRITE_SCRIPT, 'sh', path, mode.toString(8).padStart(4, '0'), ...(owner ? [owner] : [])], { stdin: content, label: label ?? `write ${path}` });
}

/** Appends stdin to `path` (created 0600 if absent). */
export function appendFileCommand(path: string, content: string, label?: string): Command {
  return command(['sh', '-c', 'umask 077; cat >> "$1"', 'sh', path], { stdin: content, label: label ?? `append to ${path}` });
}

export function mkdirCommand(paths: readonly string[], mode?: number): Command {
  return command(['mkdir', '-p', ...(mode === undefined ? [] : ['-m', mode.toString(8)]), '--', ...paths], { label: 'create directories' });
}

export function chmodCommand(mode: number, paths: readonly string[]): Command {
  return command(['chmod', mode.toString(8), '--', ...paths], { label: 'set modes' });
}

/** As root: creates `dir` (and parents) owned by `user` and their login group, mode 0755 unless given. */
export function ownedDirCommand(dir: string, user: string, mode = 0o755): Command {
  return command(['sh', '-c', 'mkdir -p -- "$1" && chown -- "$2:" "$1" && chmod "$3" -- "$1"', 'sh', dir, user, mode.toString(8)], { label: `create ${dir} owned by ${user}` });
}

// --- state ---------------------------------------------------------------------------------------

const STATE_SCRIPT = 'stat -c "%F|%a|%U|%G|%n" -- "$@" 2>/dev/null; echo "--"; sha256sum -- "$@" 2>/dev/null; exit 0';

/** One round trip: type, mode, owner, group and sha256 of each path (missing paths are left out). */
export function fileStateCommand(paths: readonly string[]): Command {
  return command(['sh', '-c', STATE_SCRIPT, 'sh', ...paths], { label: 'inspect files' });
}

export interface FileState {
  type: 'directory' | 'file' | 'symlink' | 'other';
  /** Octal permission bits, e.g. 0o600. */
  mode: number;
  owner: string;
  group: string;
  /** Files only. */
  sha256?: string;
}

/** Parses `fileStateCommand`'s output: path → state (absent paths have no entry). */
export function parseFileStates(stdout: string): Map<string, FileState> {
  const [statPart = '', sumPart = ''] = stdout.split(/^--$/m);
  const out = new Map<string, FileState>();
  for (const line of statPart.split('\n')) {
    const m = /^([^|]+)\|([0-7]+)\|([^|]*)\|([^|]*)\|(.+)$/.exec(line.trim());
    if (!m) continue;
    const kind = m[1]!;
    const type = kind === 'directory' ? 'directory' : kind.startsWith('regular') ? 'file' : kind === 'symbolic link' ? 'symlink' : 'other';
    out.set(m[5]!, { type, mode: parseInt(m[2]!, 8), owner: m[3]!, group: m[4]! });
  }
  for (const line of sumPart.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
    const s = m && out.get(m[2]!);
    if (s) s.sha256 = m[1]!;
  }
  return out;
}
