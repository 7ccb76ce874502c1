import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { XamalError } from '../core/errors/index.ts';
import { withFileLock } from './fs-lock.ts';
import { SERVICE_NAMES, serviceSpec, type ServiceName, type ServiceSpec } from './catalog.ts';
import type { ServicesConfig } from './config.ts';
import { ensurePackages } from './packages.ts';
import { isAlive, processStartTime, readBarePid, readPidRecord, sleep, terminate, writePidRecord, type PidRecord } from './process.ts';
import { checkReady, portInUse } from './ready.ts';

export interface ServiceStatus {
  name: ServiceName;
  running: boolean;
  ready: boolean;
  pid?: number;
  log: string;
}

export interface UpResult {
  /** Services this call started (a caller that wants to undo exactly its own work stops these). */
  started: ServiceName[];
  alreadyUp: ServiceName[];
}

export type Say = (line: string) => void;

const pidfile = (c: ServicesConfig, name: ServiceName) => join(c.stateDir, 'run', `${name}.pid`);
const logfile = (c: ServicesConfig, name: ServiceName) => join(c.stateDir, 'logs', `${name}.log`);

/** Serialises up/down across processes (a test run and a shell may both call `up`). */
function withLock<T>(c: ServicesConfig, fn: () => Promise<T>): Promise<T> {
  return withFileLock(join(c.stateDir, 'services.lock'), 'services', fn);
}

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function ours(c: ServicesConfig, name: ServiceName): Promise<PidRecord | undefined> {
  const rec = await readPidRecord(pidfile(c, name));
  return rec && isAlive(rec) ? rec : undefined;
}

async function waitReady(spec: ServiceSpec, rec: PidRecord, log: string): Promise<void> {
  const deadline = Date.now() + spec.readyTimeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(rec)) throw new XamalError('unavailable', `${spec.name} exited during start-up; last log lines (${log}):\n${tail(log)}`);
    if (await checkReady(spec.ready, 1_000)) return;
    await sleep(100);
  }
  throw new XamalError('unavailable', `${spec.name} did not become ready within ${spec.readyTimeoutMs} ms; last log lines (${log}):\n${tail(log)}`);
}

async function start(c: ServicesConfig, spec: ServiceSpec, say: Say): Promise<void> {
  if (spec.port !== undefined && (await portInUse(spec.port))) {
    throw new XamalError(
      'conflict',
      `${spec.name}: port 127.0.0.1:${spec.port} is in use by a process xamal did not start; stop it or choose another port (XAMAL_${spec.name.toUpperCase()}_PORT)`,
    );
  }
  for (const d of spec.dirs) await mkdir(d, { recursive: true });
  for (const f of spec.files) {
    await writeFile(f.path, f.content, { mode: f.mode ?? 0o644 });
    await chmod(f.path, f.mode ?? 0o644);
  }
  await mkdir(join(c.stateDir, 'run'), { recursive: true });
  await mkdir(join(c.stateDir, 'logs'), { recursive: true });
  const log = logfile(c, spec.name);
  const fd = openSync(log, 'a');
  const [file, ...args] = spec.argv;
  const child = spawn(file!, args, { detached: true, stdio: ['ignore', fd, fd], cwd: spec.dirs[0] });
  closeSync(fd);
  const spawned = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid!));
    child.once('error', (e) => reject(new XamalError('unavailable', `${spec.name}: could not start ${file}: ${e.message}`, { cause: e })));
  });
  child.unref();
  const startTime = processStartTime(spawned);
  if (!startTime) throw new XamalError('unavailable', `${spec.name} exited at once; last log lines (${log}):\n${tail(log)}`);
  const rec: PidRecord = { pid: spawned, startTime, argv: spec.argv };
  await writePidRecord(pidfile(c, spec.name), rec);
  try {
    await waitReady(spec, rec, log);
  } catch (err) {
    await stopOne(c, spec);
    throw err;
  }
  say(`${spec.name}: started (pid ${spawned})`);
}

async function stopOne(c: ServicesConfig, spec: ServiceSpec): Promise<boolean> {
  const rec = await readPidRecord(pidfile(c, spec.name));
  let stopped = false;
  if (rec && isAlive(rec)) {
    await terminate(rec, spec.stopTimeoutMs);
    stopped = true;
  }
  // Helpers the service owns, by the pid it wrote for them (never by name).
  for (const f of spec.childPidfiles) {
    const pid = await readBarePid(f);
    const startTime = pid ? processStartTime(pid) : undefined;
    if (pid && startTime) await terminate({ pid, startTime, argv: [] }, spec.stopTimeoutMs);
  }
  await rm(pidfile(c, spec.name), { force: true });
  return stopped;
}

export function resolveNames(names: readonly string[]): ServiceName[] {
  if (names.length === 0) return [...SERVICE_NAMES];
  const bad = names.filter((n) => !(SERVICE_NAMES as readonly string[]).includes(n));
  if (bad.length) throw new XamalError('usage', `unknown service(s) ${bad.join(', ')}; expected ${SERVICE_NAMES.join(', ')}`);
  return names as ServiceName[];
}

/**
 * Installs what is missing and starts the named services (all by default) on loopback. Idempotent:
 * a service already running from our pidfile is only health-checked.
 */
export async function servicesUp(c: ServicesConfig, names: readonly ServiceName[] = SERVICE_NAMES, say: Say = () => {}): Promise<UpResult> {
  return withLock(c, async () => {
    const specs = names.map((n) => serviceSpec(c, n));
    const result: UpResult = { started: [], alreadyUp: [] };
    const toStart: ServiceSpec[] = [];
    for (const spec of specs) {
      const rec = await ours(c, spec.name);
      if (rec && (await checkReady(spec.ready))) {
        result.alreadyUp.push(spec.name);
      } else if (rec) {
        // Ours but not answering (e.g. still starting after a crash of the caller): give it its budget.
        await waitReady(spec, rec, logfile(c, spec.name));
        result.alreadyUp.push(spec.name);
      } else {
        toStart.push(spec);
      }
    }
    if (toStart.length === 0) return result;
    await ensurePackages(toStart.flatMap((s) => s.packages), say);
    const outcomes = await Promise.allSettled(toStart.map((s) => start(c, s, say)));
    const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as Error] : []));
    toStart.forEach((s, i) => outcomes[i]!.status === 'fulfilled' && result.started.push(s.name));
    if (failures.length) {
      // Leave nothing half-up: stop what this call started, then report every failure.
      for (const name of result.started) await stopOne(c, serviceSpec(c, name));
      throw new XamalError('unavailable', failures.map((f) => f.message).join('\n'));
    }
    return result;
  });
}

/** Stops the named services (all by default) by the pids we recorded; returns those that were running. */
export async function servicesDown(c: ServicesConfig, names: readonly ServiceName[] = SERVICE_NAMES, say: Say = () => {}): Promise<ServiceName[]> {
  return withLock(c, async () => {
    const stopped: ServiceName[] = [];
    for (const name of [...names].reverse()) {
      if (await stopOne(c, serviceSpec(c, name))) {
        stopped.push(name);
        say(`${name}: stopped`);
      }
    }
    return stopped;
  });
}

export async function servicesStatus(c: ServicesConfig, names: readonly ServiceName[] = SERVICE_NAMES): Promise<ServiceStatus[]> {
  return Promise.all(
    names.map(async (name) => {
      const rec = await ours(c, name);
      const spec = serviceSpec(c, name);
      return { name, running: !!rec, ready: rec ? await checkReady(spec.ready) : false, ...(rec ? { pid: rec.pid } : {}), log: logfile(c, name) };
    }),
  );
}
