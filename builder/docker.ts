import { PassThrough, type Readable } from 'node:stream';
import Docker from 'dockerode';
import { deadline, XamalError } from '../core/index.ts';
import { machineOomKills } from './machine-oom.ts';
import { limitedOutput, type OutputLimit } from './output-limit.ts';

/**
 * The only module that imports dockerode. Everything else describes what it wants as data
 * (ContainerSpec) and calls these functions.
 */

/** One container run, as data. */
export interface ContainerSpec {
  image: string;
  cmd: string[];
  user?: string;
  env?: Record<string, string>;
  workdir?: string;
  /**
   * `none`: no network at all. `egress`: a namespace of its own whose only way out is the farm's
   * egress proxy (builder/egress.ts; the applier turns it into `container:<id>` of a sidecar holding
   * that namespace). `container:<id>`: the network namespace of another container.
   */
  networkMode: 'none' | 'egress' | `container:${string}`;
  binds?: string[];
  readOnly?: boolean;
  tmpfs?: Record<string, string>;
  init?: boolean;
  labels?: Record<string, string>;
  memoryBytes?: number;
  nanoCpus?: number;
  capDrop?: string[];
  securityOpt?: string[];
  /** Most processes (and threads) the container may hold at once: a fork bomb hits it, not the machine. */
  pidsLimit?: number;
  /**
   * Kill the container once its output passes `maxBytes`; keep only `keepBytes` of its start (and
   * a tail) in memory. Without it: never killed for output, DEFAULT_OUTPUT_LIMIT.keepBytes kept.
   */
  output?: OutputLimit;
  /** Kill the container after this long. */
  timeoutMs?: number;
  name?: string;
  /** When the container exits 0, its filesystem becomes image repo:tag (`docker commit`; the result's `imageId`). */
  commitAs?: { repo: string; tag: string };
}

/** How a run ends. */
export interface RunOptions {
  /**
   * The exited container's removal is handed here instead of awaited: the run resolves as soon as
   * its result is known, and whoever started it awaits the removal before it reports its own end
   * (a build, before its job completes). A removal never rejects (a container already gone is removed).
   */
  deferRemoval?: (removing: Promise<void>) => void;
}

/** A started container whose command has not run yet (DockerEngine.startHeld). */
export interface HeldContainer {
  /** Runs its command once, as DockerEngine.run does from the start on (limits, result, removal). */
  run(signal?: AbortSignal, options?: RunOptions): Promise<ContainerResult>;
  /** Removes it if its command never ran; nothing otherwise. */
  discard(): Promise<void>;
}

export interface ContainerResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  cancelled?: boolean;
  /**
   * The kernel's OOM killer killed a process of the container — its first or any other (docker's
   * State.OOMKilled, or an `oom` event of the engine for it: FACTS.md#oom-kill).
   */
  oomKilled?: boolean;
  /**
   * Signals the engine was asked to send the container while it ran (its `kill` events, as the
   * engine writes them: `9`, `15`): this run's own kills at its limits, and those of any other client
   * (`docker kill`, `docker stop`, `docker rm -f`, the engine stopping).
   */
  engineKills?: string[];
  /** The container was gone when its run ended: another client removed it while it ran (`docker rm -f`). */
  removed?: boolean;
  /** OOM kills the kernel counted on this machine while it ran (builder/machine-oom.ts); absent when the kernel does not say. */
  machineOomKills?: number;
  /** The image made of the container (spec.commitAs), when it exited 0. */
  imageId?: string;
  /** Killed because its output passed the spec's `output.maxBytes`. */
  outputExceeded?: boolean;
}

/** For containers whose spec sets no output limit: nothing is killed, a bounded head is kept. */
export const DEFAULT_OUTPUT_LIMIT: OutputLimit = { maxBytes: Number.POSITIVE_INFINITY, keepBytes: 8 * 1024 * 1024 };

export interface ImageInfo {
  id: string;
  architecture: string;
  variant: string | undefined;
  os: string;
  repoDigests: string[];
  repoTags: string[];
  labels: Record<string, string>;
}

export interface DockerEngine {
  version(): Promise<{ version: string; apiVersion: string; os: string; arch: string }>;
  ping(): Promise<boolean>;
  /** `docker import -` of a tar stream, tagged repo:tag; resolves with the image ID. */
  importTarball(tar: Readable, repo: string, tag: string, changes: readonly string[]): Promise<string>;
  tag(source: string, repo: string, tag: string): Promise<void>;
  /** Pushes repo:tag; resolves with the manifest digest the registry reported. */
  push(repo: string, tag: string): Promise<string>;
  pull(ref: string): Promise<void>;
  inspectImage(ref: string): Promise<ImageInfo | undefined>;
  removeImage(ref: string): Promise<boolean>;
  /** What a registry says a ref resolves to (through dockerd, with its auth and insecure-registry settings). */
  distribution(ref: string): Promise<{ digest: string; mediaType: string; platforms: { architecture: string; variant?: string; os: string }[] }>;
  /** Runs a container to completion; aborting `signal` kills it (the result then has `cancelled`). */
  run(spec: ContainerSpec, signal?: AbortSignal, options?: RunOptions): Promise<ContainerResult>;
  /**
   * Creates and starts a container whose command waits at a gate (its image's /bin/sh) until `run`:
   * a step's container made ready beside the steps before it, so its start costs nothing when it runs.
   */
  startHeld(spec: ContainerSpec): Promise<HeldContainer>;
  /** Starts a container and returns at once: its ID and the host PID of its first process. */
  startDetached(spec: ContainerSpec): Promise<{ id: string; pid: number }>;
  /** IDs of containers (running or not) carrying this label=value. */
  containersWithLabel(label: string, value: string): Promise<string[]>;
  /** Kills and removes a container (with its anonymous volumes); false if it was already gone. */
  removeContainer(id: string): Promise<boolean>;
  /** `docker commit`: the container's filesystem as image repo:tag; resolves with the image ID. */
  commit(id: string, repo: string, tag: string): Promise<string>;
}

function engineError(what: string, e: Engine, err: unknown): XamalError {
  const msg = (err as { json?: { message?: string }; message?: string })?.json?.message ?? (err as Error)?.message ?? String(err);
  const code = (err as NodeJS.ErrnoException)?.code;
  if ((err as Error)?.name === 'AbortError' || code === 'ABORT_ERR') {
    return new XamalError('unavailable', `docker engine at ${e.socketPath} did not answer ${what} within ${e.callTimeoutMs} ms (XAMAL_DOCKER_CALL_TIMEOUT_MS)`, { cause: err });
  }
  const down = code === 'ENOENT' || code === 'ECONNREFUSED';
  return new XamalError(down ? 'unavailable' : 'external', down ? `docker engine at ${e.socketPath} is not running (${what})` : `docker: ${what}: ${msg}`, { cause: err });
}

/** dockerode 4's ping and version take the call's options (an abortSignal) at run time; @types/dockerode does not say so. */
const optionsAtRunTime = <T>(call: () => Promise<T>) => call as unknown as (options: { abortSignal: AbortSignal }) => Promise<T>;

/** XAMAL_DOCKER_CALL_TIMEOUT_MS's default: far above a busy engine's slowest start (~1 s, BENCHMARKS.md), far below forever. */
export const DEFAULT_DOCKER_CALL_TIMEOUT_MS = 60_000;

/** The engine client, where it listens (for error messages), and its deadline for calls that answer at once. */
interface Engine {
  docker: Docker;
  socketPath: string;
  callTimeoutMs: number;
  /**
   * Options aborting one call after `callTimeoutMs`: creating, starting, inspecting and removing
   * containers, listing them, tagging and removing images, version and ping (dockerode passes no
   * signal for an image's inspect or distribution). Never for what lasts as long as its work does (a
   * container's wait, its attached output, the event stream, image import, pull, push, commit).
   */
  within: () => { abortSignal: AbortSignal };
}

const notFound = (err: unknown) => (err as { statusCode?: number }).statusCode === 404;

/** Runs `fn`; an engine failure becomes an XamalError saying what was being done. */
async function wrap<T>(e: Engine, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof XamalError) throw err;
    throw engineError(what, e, err);
  }
}

/** Follows a progress stream to its end; a `{error}` line rejects. Resolves with every JSON line. */
function follow(docker: Docker, stream: NodeJS.ReadableStream): Promise<Record<string, unknown>[]> {
  return new Promise<Record<string, unknown>[]>((resolve, reject) => {
    const lines: Record<string, unknown>[] = [];
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(err) : resolve(lines)),
      (ev: Record<string, unknown>) => lines.push(ev),
    );
  });
}

async function ping(e: Engine): Promise<boolean> {
  try {
    return String(await optionsAtRunTime(e.docker.ping.bind(e.docker))(e.within())) === 'OK';
  } catch {
    return false;
  }
}

async function importTarball(docker: Docker, tar: Readable, repo: string, tag: string, changes: readonly string[]): Promise<string> {
  const stream = await docker.importImage(tar, { repo, tag, changes: [...changes] });
  const lines = await follow(docker, stream);
  const id = lines.map((l) => l.status).find((s): s is string => typeof s === 'string' && /^sha256:[0-9a-f]{64}$/.test(s));
  if (!id) throw new XamalError('external', `docker import of ${repo}:${tag} reported no image ID`);
  return id;
}

async function push(docker: Docker, repo: string, tag: string): Promise<string> {
  const stream = await docker.getImage(`${repo}:${tag}`).push({ tag });
  const lines = await follow(docker, stream);
  const digest = lines.map((l) => (l.aux as { Digest?: string } | undefined)?.Digest).find((d): d is string => typeof d === 'string');
  if (!digest) throw new XamalError('external', `push of ${repo}:${tag} reported no digest`);
  return digest;
}

async function inspectImage(e: Engine, ref: string): Promise<ImageInfo | undefined> {
  try {
    const i = await e.docker.getImage(ref).inspect();
    return {
      id: i.Id,
      architecture: i.Architecture,
      variant: (i as { Variant?: string }).Variant,
      os: i.Os,
      repoDigests: i.RepoDigests ?? [],
      repoTags: i.RepoTags ?? [],
      labels: i.Config?.Labels ?? {},
    };
  } catch (err) {
    if (notFound(err)) return undefined;
    throw engineError(`inspect ${ref}`, e, err);
  }
}

/** Runs a removal: true once done, false when the object was already gone (404). */
async function removal(e: Engine, what: string, remove: () => Promise<unknown>): Promise<boolean> {
  try {
    await remove();
    return true;
  } catch (err) {
    if (notFound(err)) return false;
    throw engineError(what, e, err);
  }
}

async function distribution(e: Engine, ref: string): ReturnType<DockerEngine['distribution']> {
  const d = await e.docker.getImage(ref).distribution();
  return {
    digest: d.Descriptor.digest,
    mediaType: d.Descriptor.mediaType,
    platforms: (d.Platforms ?? []).map((p) => ({ architecture: p.architecture, os: p.os, ...(p.variant ? { variant: p.variant } : {}) })),
  };
}

/** Pure: the engine's create options for a ContainerSpec. */
export function containerOptions(spec: ContainerSpec): Docker.ContainerCreateOptions {
  return {
    Image: spec.image,
    Cmd: spec.cmd,
    User: spec.user,
    Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
    WorkingDir: spec.workdir,
    Labels: spec.labels,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    OpenStdin: false,
    HostConfig: {
      NetworkMode: spec.networkMode,
      Binds: spec.binds,
      ReadonlyRootfs: spec.readOnly,
      Tmpfs: spec.tmpfs,
      Init: spec.init,
      Memory: spec.memoryBytes,
      // No swap on top of the limit: the limit is the memory the step gets.
      ...(spec.memoryBytes ? { MemorySwap: spec.memoryBytes } : {}),
      NanoCpus: spec.nanoCpus,
      CapDrop: spec.capDrop,
      SecurityOpt: spec.securityOpt,
      ...(spec.pidsLimit ? { PidsLimit: spec.pidsLimit } : {}),
      AutoRemove: false,
    },
    ...(spec.name ? { name: spec.name } : {}),
  };
}

/**
 * Follows a container's stdout and stderr (attached before start so no output is lost), keeping a
 * bounded part of them; past the spec's output limit the container is killed.
 */
async function attachOutput(container: Docker.Container, limit: OutputLimit, stdin = false) {
  const stream = (await container.attach({ stream: true, stdout: true, stderr: true, ...(stdin ? { stdin: true, hijack: true } : {}) })) as NodeJS.ReadWriteStream;
  const kept = limitedOutput(limit, () => void container.kill().catch(() => {}));
  const out = new PassThrough();
  const err = new PassThrough();
  out.on('data', (b: Buffer) => kept.add('stdout', b));
  err.on('data', (b: Buffer) => kept.add('stderr', b));
  container.modem.demuxStream(stream, out, err);
  const ended = new Promise<void>((r) => stream.on('end', () => r()));
  return { ended, kept, stream };
}

/** Waits for a started container, killing it at its time limit or when `signal` aborts. */
async function waitWithLimits(container: Docker.Container, spec: ContainerSpec, signal?: AbortSignal) {
  let cancelled = false;
  const limit = deadline(spec.timeoutMs, () => void container.kill().catch(() => {}));
  const onAbort = () => {
    cancelled = true;
    container.kill().catch(() => {});
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  // Aborted while the container was created, attached or started: no event comes for that any more.
  if (signal?.aborted) onAbort();
  const waited = (await container.wait()) as { StatusCode: number };
  limit.clear();
  signal?.removeEventListener('abort', onAbort);
  return { code: waited.StatusCode, timedOut: limit.expired(), cancelled };
}

/** What the engine reported about one container while it ran: its `oom` events, and the signals of its `kill` events. */
export interface EngineNotes {
  ooms: number;
  kills: string[];
}

/** Pure: notes one line of the engine's event stream (one JSON object) about a container; other lines change nothing. */
export function noteEngineEvent(notes: EngineNotes, line: string): void {
  let ev: { Action?: unknown; status?: unknown; Actor?: { Attributes?: { signal?: unknown } } };
  try {
    ev = JSON.parse(line) as typeof ev;
  } catch {
    return;
  }
  const action = ev?.Action ?? ev?.status;
  if (action === 'oom') notes.ooms++;
  else if (action === 'kill') notes.kills.push(String(ev.Actor?.Attributes?.signal ?? 'unknown'));
}

/** How long a run whose container was SIGKILLed for no reason it knows waits for the engine's late `oom` event. */
export const LATE_OOM_EVENT_MS = 1_000;

/**
 * Follows the engine's `oom` and `kill` events for one container, from `sinceS` (unix seconds, taken
 * before it was created: events the engine sent before the stream was open are replayed).
 */
async function watchEngineEvents(docker: Docker, id: string, sinceS: number) {
  const notes: EngineNotes = { ooms: 0, kills: [] };
  const stream = (await docker.getEvents({ since: sinceS, filters: { type: ['container'], container: [id], event: ['oom', 'kill'] } })) as Readable;
  let pending = '';
  let onOom: (() => void) | undefined;
  stream.on('data', (b: Buffer) => {
    const lines = (pending + b.toString('utf8')).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) noteEngineEvent(notes, line);
    if (notes.ooms > 0) onOom?.();
  });
  stream.on('error', () => {});
  return {
    notes,
    /** Resolves once an `oom` event came, or after `ms`. */
    oom: (ms: number) =>
      new Promise<void>((resolve) => {
        if (notes.ooms > 0) return resolve();
        const timer = setTimeout(resolve, ms);
        onOom = () => (clearTimeout(timer), resolve());
      }),
    close: () => stream.destroy(),
  };
}

/** SIGKILL's exit status (128 + 9): what a container whose first process was killed exits with. */
export const SIGKILL_EXIT = 137;

/** A container created with its output attached and its engine events followed, not started yet. */
interface Created {
  container: Docker.Container;
  within: Engine['within'];
  events: Awaited<ReturnType<typeof watchEngineEvents>> | undefined;
  output: Awaited<ReturnType<typeof attachOutput>>;
}

/** Stops following a container's engine events and removes it; never rejects (a container already gone is removed; an engine that does not answer leaves it to the leftovers sweep). */
function disposed(container: Docker.Container, events: Created['events'], within: Engine['within']): Promise<void> {
  events?.close();
  return container.remove({ force: true, v: true, ...within() }).then(
    () => undefined,
    () => undefined,
  );
}

async function created(e: Engine, spec: ContainerSpec, gated: boolean): Promise<Created> {
  if (spec.networkMode === 'egress') throw new XamalError('internal', 'a container with network `egress` runs beside an egress sidecar (builder/apply.ts)');
  const sinceS = Math.floor(Date.now() / 1000) - 1;
  const container = await e.docker.createContainer({ ...(gated ? gatedOptions(spec) : containerOptions(spec)), ...e.within() });
  const events = await watchEngineEvents(e.docker, container.id, sinceS).catch(() => undefined);
  try {
    return { container, events, output: await attachOutput(container, spec.output ?? DEFAULT_OUTPUT_LIMIT, gated), within: e.within };
  } catch (err) {
    await disposed(container, events, e.within);
    throw err;
  }
}

/** `begin` starts the step's command (starts the container, or opens its gate); then as DockerEngine.run, the container removed after. */
async function completed(c: Created, spec: ContainerSpec, signal: AbortSignal | undefined, options: RunOptions, begin: () => Promise<void>): Promise<ContainerResult> {
  const { container, events } = c;
  const { ended, kept } = c.output;
  try {
    const oomBefore = await machineOomKills();
    await begin();
    const { code, timedOut, cancelled } = await waitWithLimits(container, spec, signal);
    await Promise.race([ended, new Promise((r) => setTimeout(r, 2_000))]);
    const own = timedOut || cancelled || kept.exceeded;
    // Killed for no reason this run knows: the engine may report an OOM kill after the exit (FACTS.md#oom-kill).
    if (code === SIGKILL_EXIT && !own) await events?.oom(LATE_OOM_EVENT_MS);
    // An engine that went away meanwhile is an engine error (retried), not the step's result: a
    // dockerd stopping sends SIGTERM, which a BEAM answers by exiting 0 with its work undone.
    const inspected = await container.inspect(c.within()).catch((err: unknown) => {
      if (notFound(err)) return undefined;
      throw err;
    });
    const oomAfter = await machineOomKills();
    const commitAs = code === 0 && !timedOut && !cancelled && inspected ? spec.commitAs : undefined;
    const imageId = commitAs ? ((await container.commit({ repo: commitAs.repo, tag: commitAs.tag })) as { Id: string }).Id : undefined;
    const notes = events?.notes;
    return {
      code,
      stdout: kept.text('stdout'),
      stderr: kept.text('stderr'),
      timedOut,
      cancelled,
      ...(inspected?.State?.OOMKilled || (notes?.ooms ?? 0) > 0 ? { oomKilled: true } : {}),
      ...(kept.exceeded ? { outputExceeded: true } : {}),
      ...(notes?.kills.length ? { engineKills: [...notes.kills] } : {}),
      ...(inspected ? {} : { removed: true }),
      ...(oomBefore !== undefined && oomAfter !== undefined ? { machineOomKills: oomAfter - oomBefore } : {}),
      ...(imageId ? { imageId } : {}),
    };
  } finally {
    const removing = disposed(container, events, c.within);
    if (options.deferRemoval) options.deferRemoval(removing);
    else await removing;
  }
}

const CANCELLED: ContainerResult = { code: SIGKILL_EXIT, stdout: '', stderr: '', timedOut: false, cancelled: true };

async function runContainer(e: Engine, spec: ContainerSpec, signal?: AbortSignal, options: RunOptions = {}): Promise<ContainerResult> {
  if (signal?.aborted) return { ...CANCELLED };
  const c = await created(e, spec, false);
  return completed(c, spec, signal, options, () => c.container.start(e.within()));
}

/**
 * The gate a held container's first process waits at (`/bin/sh` of its image): one line `run` on its
 * stdin execs the step's command in its place; stdin closed without it exits 125, the command never run.
 */
export const HOLD_GATE = 'read -r gate && [ "$gate" = run ] && exec "$@"; exit 125';

/** Pure: create options for a container held at HOLD_GATE: the spec's own, its command behind the gate, stdin open once. */
export function gatedOptions(spec: ContainerSpec): Docker.ContainerCreateOptions {
  return { ...containerOptions(spec), Cmd: ['/bin/sh', '-c', HOLD_GATE, 'xamal-hold', ...spec.cmd], AttachStdin: true, OpenStdin: true, StdinOnce: true };
}

/** Creates and starts a container held at its gate (HeldContainer). */
async function startHeld(e: Engine, spec: ContainerSpec): Promise<HeldContainer> {
  const c = await created(e, spec, true);
  const discard = () => (c.output.stream.end(), disposed(c.container, c.events, e.within));
  try {
    await c.container.start(e.within());
  } catch (err) {
    await discard();
    throw err;
  }
  let taken = false;
  return {
    run: async (signal, options = {}) => {
      if (taken) throw new XamalError('internal', 'a held container runs its command once');
      taken = true;
      if (signal?.aborted) {
        await discard();
        return { ...CANCELLED };
      }
      return completed(c, spec, signal, options, async () => void c.output.stream.end('run\n'));
    },
    discard: async () => {
      if (taken) return;
      taken = true;
      await discard();
    },
  };
}

/** Creates and starts a container without waiting for it; its ID and the host PID of its first process. */
async function startDetached(e: Engine, spec: ContainerSpec): Promise<{ id: string; pid: number }> {
  if (spec.networkMode === 'egress') throw new XamalError('internal', 'a detached container cannot have network `egress`');
  const container = await e.docker.createContainer({ ...containerOptions(spec), AttachStdout: false, AttachStderr: false, ...e.within() });
  try {
    await container.start(e.within());
    const pid = (await container.inspect(e.within())).State.Pid;
    if (!pid) throw new XamalError('external', `container ${container.id.slice(0, 12)} exited at once`);
    return { id: container.id, pid };
  } catch (err) {
    await container.remove({ force: true, v: true, ...e.within() }).catch(() => {});
    throw err;
  }
}

/** The engine at `socketPath`; calls that answer at once fail as `unavailable` after `callTimeoutMs` (Engine.within). */
export function dockerEngine(socketPath: string, callTimeoutMs = DEFAULT_DOCKER_CALL_TIMEOUT_MS): DockerEngine {
  const docker = new Docker({ socketPath });
  const e: Engine = { docker, socketPath, callTimeoutMs, within: () => ({ abortSignal: AbortSignal.timeout(callTimeoutMs) }) };
  return {
    version: () =>
      wrap(e, 'version', async () => {
        const v = await optionsAtRunTime(docker.version.bind(docker))(e.within());
        return { version: v.Version, apiVersion: v.ApiVersion, os: v.Os, arch: v.Arch };
      }),
    ping: () => ping(e),
    importTarball: (tar, repo, tag, changes) => wrap(e, `import ${repo}:${tag}`, () => importTarball(docker, tar, repo, tag, changes)),
    tag: (source, repo, tag) => wrap(e, `tag ${source}`, async () => void (await docker.getImage(source).tag({ repo, tag, ...e.within() }))),
    push: (repo, tag) => wrap(e, `push ${repo}:${tag}`, () => push(docker, repo, tag)),
    pull: (ref) => wrap(e, `pull ${ref}`, async () => void (await follow(docker, await docker.pull(ref)))),
    inspectImage: (ref) => inspectImage(e, ref),
    removeImage: (ref) => removal(e, `remove ${ref}`, () => docker.getImage(ref).remove({ force: false, noprune: false, ...e.within() })),
    distribution: (ref) => wrap(e, `resolve ${ref}`, () => distribution(e, ref)),
    run: (spec, signal, options) => wrap(e, `run ${spec.image}`, () => runContainer(e, spec, signal, options)),
    startHeld: (spec) =>
      wrap(e, `start ${spec.image}`, async () => {
        const held = await startHeld(e, spec);
        return { run: (signal, options) => wrap(e, `run ${spec.image}`, () => held.run(signal, options)), discard: held.discard };
      }),
    startDetached: (spec) => wrap(e, `start ${spec.image}`, () => startDetached(e, spec)),
    removeContainer: (id) => removal(e, `remove container ${id}`, () => docker.getContainer(id).remove({ force: true, v: true, ...e.within() })),
    commit: (id, repo, tag) => wrap(e, `commit ${id.slice(0, 12)}`, async () => ((await docker.getContainer(id).commit({ repo, tag })) as { Id: string }).Id),
    containersWithLabel: (label, value) =>
      wrap(e, 'list containers', async () => (await docker.listContainers({ all: true, filters: { label: [`${label}=${value}`] }, ...e.within() })).map((c) => c.Id)),
  };
}
