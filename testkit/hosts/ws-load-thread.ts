import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { LoadMark } from './load.ts';
import { startWsLoad, type WsConnectionRecord, type WsLoadOptions, type WsLoadRun } from './ws-load.ts';

/**
 * `startWsLoad` in a worker thread of its own, so that one host's clients do not wait in the same
 * event loop as another host's (real clients each have their own CPU; one Node thread dialling 600
 * sockets at once is the load generator's queue, not the server's). Records come back on this
 * thread's clock; `current()` is the worker's view at most 50 ms old.
 */
export interface WsLoadThreadRun extends WsLoadRun {
  /** The worker's event-loop delay over its life (ms), known after stop(). */
  loopDelayMs(): { p50: number; p99: number; max: number } | undefined;
}

type FromWorker =
  | { type: 'current'; current: (string | undefined)[] }
  | { type: 'done'; records: WsConnectionRecord[]; timeOrigin: number; loop: { p50: number; p99: number; max: number } };

const TIMES = ['start', 'tcpAt', 'tlsAt', 'openAt', 'versionAt', 'end'] as const;

export function startWsLoadThread(opts: Omit<WsLoadOptions, 'version'>): WsLoadThreadRun {
  const worker = new Worker(new URL('./ts-worker.mjs', import.meta.url), { workerData: { entry: import.meta.url, wsLoadThread: opts } });
  let holding: (string | undefined)[] = Array.from({ length: opts.clients }, () => undefined);
  let loop: { p50: number; p99: number; max: number } | undefined;
  const marks: LoadMark[] = [];
  const done = new Promise<WsConnectionRecord[]>((resolve, reject) => {
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'current') holding = m.current;
      else {
        loop = m.loop;
        const shift = m.timeOrigin - performance.timeOrigin;
        resolve(m.records.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, (TIMES as readonly string[]).includes(k) && typeof v === 'number' ? v + shift : v])) as unknown as WsConnectionRecord));
      }
    });
    worker.on('error', reject);
    worker.on('exit', (code) => reject(new Error(`WebSocket load worker exited (${code}) before its records came back`)));
  });
  done.catch(() => undefined);
  return {
    mark(label, to) {
      const m: LoadMark = { label, at: performance.now(), ...(to !== undefined ? { to } : {}) };
      marks.push(m);
      return m;
    },
    current: () => holding,
    loopDelayMs: () => loop,
    async stop() {
      worker.postMessage('stop');
      const records = await done;
      await worker.terminate();
      return { records, marks };
    },
  };
}

if (!isMainThread && (workerData as { wsLoadThread?: WsLoadOptions } | undefined)?.wsLoadThread) {
  const port = parentPort!;
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const run = startWsLoad((workerData as { wsLoadThread: WsLoadOptions }).wsLoadThread);
  const tick = setInterval(() => port.postMessage({ type: 'current', current: run.current() } satisfies FromWorker), 50);
  port.on('message', (m) => {
    if (m !== 'stop') return;
    clearInterval(tick);
    void run.stop().then(({ records }) => {
      delay.disable();
      const ms = (ns: number) => Math.round(ns / 1e5) / 10;
      port.postMessage({ type: 'done', records, timeOrigin: performance.timeOrigin, loop: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) } } satisfies FromWorker);
    });
  });
}
