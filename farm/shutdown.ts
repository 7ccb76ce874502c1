/**
 * The one shutdown path of every farm process (`xamal farm up`, `xamal farm worker`, the test kit's
 * and the benchmarks' farms): parts close in order (the API first, so nothing new arrives; then the
 * workers, which finish the builds they hold; then connections), all of it within one drain
 * timeout. The last part of that time (FORCE_MS, at most a quarter of it) is kept for forcing: a part
 * still closing when the graceful time is up is forced (workers cancel their builds and stop without
 * waiting), and what does not stop even then is left behind: a dead Redis or engine never holds a
 * process past its drain timeout (the CLI exits once the command returns, bin/xamal.mjs).
 */
export interface Closable {
  name: string;
  /** Graceful: finish what is held. */
  close(): Promise<void>;
  /** Stop now (cancel work in flight); defaults to nothing more. */
  force?(): Promise<void>;
}

export interface ShutdownReport {
  /** Every part closed gracefully within the drain timeout. */
  clean: boolean;
  /** Parts that were forced, and parts that did not even stop when forced. */
  forced: string[];
  stuck: string[];
  ms: number;
}

export const FORCE_MS = 3_000;

type Outcome = 'done' | 'late';

const within = (ms: number, work: Promise<unknown>): Promise<Outcome> => {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve('late'), Math.max(0, ms));
  });
  // A part that fails to close is closed as far as it goes: its error is not the shutdown's.
  const done = work.then(
    () => 'done' as const,
    () => 'done' as const,
  );
  return Promise.race([done, late]).finally(() => clearTimeout(timer));
};

/** Closes `parts` in order within `drainMs`; see the module comment. */
export async function shutdown(parts: readonly Closable[], drainMs: number, log: (line: string) => void = () => {}): Promise<ShutdownReport> {
  const t0 = Date.now();
  const forceMs = Math.min(FORCE_MS, Math.floor(drainMs / 4));
  const deadline = t0 + drainMs - forceMs;
  let i = 0;
  for (; i < parts.length; i++) {
    const part = parts[i]!;
    if ((await within(deadline - Date.now(), part.close())) === 'late') break;
  }
  const rest = parts.slice(i);
  if (rest.length === 0) return { clean: true, forced: [], stuck: [], ms: Date.now() - t0 };
  log(`shutdown: builds and requests did not finish within ${drainMs - forceMs} ms; forcing ${rest.map((p) => p.name).join(', ')}`);
  const outcomes = await Promise.all(rest.map((p) => within(forceMs, p.force?.() ?? Promise.resolve())));
  const stuck = rest.filter((_, k) => outcomes[k] === 'late').map((p) => p.name);
  if (stuck.length) log(`shutdown: ${stuck.join(', ')} did not stop within ${forceMs} ms; exiting anyway`);
  return { clean: false, forced: rest.map((p) => p.name), stuck, ms: Date.now() - t0 };
}
