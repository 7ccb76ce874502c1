import { commandName, runChecked, type Command, type CommandResult, type Executor } from '../core/index.ts';

/**
 * What the deployer does to a host, as data, and the one interface that performs it. Builders in
 * `deployer/commands/` return `Command`s (argv with `Sensitive` parts) and `CaddyRequest`s; flows run
 * them through a `HostSession`: SSH in production (`deployer/ssh.ts`), recording in tests and for
 * `--dry-run` (`RecordingSession`).
 */

/** A request to Caddy's admin API on the host (its root-only unix socket, `commands/caddy.ts`), made through SSH. */
export interface CaddyRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** `/config/apps/http/servers/…`, `/id/<id>`, `/load`, `/reverse_proxy/upstreams`. */
  path: string;
  /** JSON body (serialised by the session). */
  body?: unknown;
  label?: string;
  /** Caddy's `If-Match`: the change applies only to the config this ETag was read from (else 412). */
  ifMatch?: string;
}

export interface CaddyResponse {
  status: number;
  body: string;
}

/** Where a streamed command's output goes, as it comes (UTF-8 text, not split into lines). */
export interface OutputSink {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** One host, one connection: commands, Caddy admin calls, file uploads. */
export interface HostSession extends Executor {
  /** The host as written in the config (name or address). */
  readonly host: string;
  run(cmd: Command): Promise<CommandResult>;
  caddy(req: CaddyRequest): Promise<CaddyResponse>;
  /** Copies a local file to `remotePath` (SFTP), mode 0644 unless given. */
  upload(localPath: string, remotePath: string, mode?: number): Promise<void>;
  /**
   * Runs `cmd` attached to `terminal` (a pty when it has a size) until it exits; resolves with its
   * exit status (128+n for a signal). No timeout: the user ends it.
   */
  interactive(cmd: Command, terminal: Terminal): Promise<number>;
  /**
   * Runs a command whose output is handed to `sink` as it comes (`app logs -f`); resolves with its
   * exit code. `stop` aborting ends the command's stdin (a streaming command watches it to end
   * itself) and closes the channel.
   */
  stream(cmd: Command, sink: OutputSink, stop?: AbortSignal): Promise<number>;
}

/**
 * The local end of an interactive command (`app exec -i`, `console`): the user's terminal, or plain
 * pipes when stdin is not one (scripts). The CLI makes it from the process's streams.
 */
export interface Terminal {
  readonly input: NodeJS.ReadableStream;
  readonly output: NodeJS.WritableStream;
  readonly errors: NodeJS.WritableStream;
  /** `TERM` for the remote pty. */
  readonly term: string;
  /** Rows and columns when stdin is a terminal (then a pty is asked for); undefined otherwise. */
  size(): { rows: number; cols: number } | undefined;
  /** Raw mode (keys go to the remote as typed) on, or off: the terminal as it was. */
  setRaw(on: boolean): void;
  /** `fn` on each window size change (SIGWINCH); returns the unsubscribe. */
  onResize(fn: () => void): () => void;
  /** `fn` on SIGINT, SIGTERM or SIGHUP to xamal; returns the unsubscribe. */
  onSignal(fn: (signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP') => void): () => void;
}

/** A command's stdout on `s`; one that fails throws, naming the host, with its output's last lines. */
export const must = async (s: HostSession, cmd: Command): Promise<string> => (await runChecked(s, cmd, `${s.host}: ${commandName(cmd)}`)).stdout;

/** Opens sessions to hosts; one pooled connection per host; `close` ends them all. */
export interface SessionPool {
  session(host: string): Promise<HostSession>;
  close(): Promise<void>;
}

export type RecordedStep =
  | { kind: 'run'; host: string; command: Command }
  | { kind: 'caddy'; host: string; request: CaddyRequest }
  | { kind: 'upload'; host: string; localPath: string; remotePath: string; mode: number }
  | { kind: 'interactive'; host: string; command: Command }
  /** A step xamal itself does, on this machine (a dry run shows it: the artifact verification of a deploy). */
  | { kind: 'local'; host: 'local'; what: string };

export type SessionResponder = (step: RecordedStep) => Partial<CommandResult> | CaddyResponse | undefined;

/** Records every step instead of performing it (unit tests, `--dry-run`). Answers via `respond`. */
export class RecordingSession implements HostSession {
  constructor(
    readonly host: string,
    readonly steps: RecordedStep[] = [],
    private readonly respond: SessionResponder = () => undefined,
  ) {}

  async run(command: Command): Promise<CommandResult> {
    const step: RecordedStep = { kind: 'run', host: this.host, command };
    this.steps.push(step);
    const r = this.respond(step) as Partial<CommandResult> | undefined;
    return { code: r?.code ?? 0, stdout: r?.stdout ?? '', stderr: r?.stderr ?? '' };
  }

  async caddy(request: CaddyRequest): Promise<CaddyResponse> {
    const step: RecordedStep = { kind: 'caddy', host: this.host, request };
    this.steps.push(step);
    const r = this.respond(step) as CaddyResponse | undefined;
    return { status: r?.status ?? 200, body: r?.body ?? '' };
  }

  async upload(localPath: string, remotePath: string, mode = 0o644): Promise<void> {
    this.steps.push({ kind: 'upload', host: this.host, localPath, remotePath, mode });
  }

  /** Records the command; answers its exit status from `respond` (default 0). The terminal is not touched. */
  async interactive(command: Command): Promise<number> {
    const step: RecordedStep = { kind: 'interactive', host: this.host, command };
    this.steps.push(step);
    return (this.respond(step) as Partial<CommandResult> | undefined)?.code ?? 0;
  }

  /** Recorded as a run step; the answer's stdout and stderr go to the sink. */
  async stream(command: Command, sink: OutputSink): Promise<number> {
    const r = await this.run(command);
    if (r.stdout) sink.stdout(r.stdout);
    if (r.stderr) sink.stderr(r.stderr);
    return r.code;
  }
}

/** A pool of recording sessions sharing one step log, in order. */
export class RecordingPool implements SessionPool {
  readonly steps: RecordedStep[] = [];
  /** `respond` answers for every session (RecordingSession's default when absent). */
  constructor(private readonly respond?: SessionResponder) {}
  async session(host: string): Promise<HostSession> {
    return new RecordingSession(host, this.steps, this.respond);
  }
  /** Records a step done on this machine, not on a host. */
  note(what: string): void {
    this.steps.push({ kind: 'local', host: 'local', what });
  }
  async close(): Promise<void> {}
}
