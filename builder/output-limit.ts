/**
 * A container step's output as it streams, with bounded memory: every byte is counted, the first
 * `keepBytes` (both streams together) and the last TAIL_BYTES of each stream are kept, and once the
 * count passes `maxBytes` the owner is told once (builder/docker.ts then kills the container).
 */

/** Bytes of each stream's most recent output kept after the head is full (the failure is usually at the end). */
export const TAIL_BYTES = 64 * 1024;

export type OutputStream = 'stdout' | 'stderr';

export interface OutputLimit {
  /** The step is killed once its stdout and stderr together pass this many bytes. */
  maxBytes: number;
  /** Bytes of the start of the output kept (the build log keeps no more than its own cap). */
  keepBytes: number;
}

export interface LimitedOutput {
  add(stream: OutputStream, chunk: Buffer): void;
  /** What was kept of a stream: its head, a marker with the bytes not kept, and its tail. */
  text(stream: OutputStream): string;
  /** Bytes seen on both streams. */
  readonly total: number;
  /** The output passed `maxBytes`. */
  readonly exceeded: boolean;
  /** Bytes held in memory now (at most `keepBytes` plus, per stream, TAIL_BYTES and one chunk). */
  readonly heldBytes: number;
}

/** The last `max` bytes of a stream as a list of chunks, never holding more than `max` plus one chunk. */
class Tail {
  private chunks: Buffer[] = [];
  private bytes = 0;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    this.chunks.push(b);
    this.bytes += b.length;
    while (this.chunks.length > 1 && this.bytes - this.chunks[0]!.length >= this.max) this.bytes -= this.chunks.shift()!.length;
  }
  get size(): number {
    return Math.min(this.bytes, this.max);
  }
  get held(): number {
    return this.bytes;
  }
  buffer(): Buffer {
    const all = Buffer.concat(this.chunks);
    return all.length > this.max ? all.subarray(all.length - this.max) : all;
  }
}

interface StreamState {
  head: Buffer[];
  tail: Tail;
  /** Bytes past the head. */
  after: number;
}

/** Counts and keeps a bounded part of a step's output; `onExceeded` runs once, when it passes `maxBytes`. */
export function limitedOutput(limit: OutputLimit, onExceeded: () => void): LimitedOutput {
  const state = (): StreamState => ({ head: [], tail: new Tail(TAIL_BYTES), after: 0 });
  const streams: Record<OutputStream, StreamState> = { stdout: state(), stderr: state() };
  let headBytes = 0;
  let total = 0;
  let exceeded = false;
  return {
    add(stream, chunk) {
      total += chunk.length;
      const s = streams[stream];
      const room = Math.max(0, limit.keepBytes - headBytes);
      if (room > 0) {
        const kept = chunk.length <= room ? chunk : chunk.subarray(0, room);
        s.head.push(Buffer.from(kept));
        headBytes += kept.length;
        chunk = chunk.subarray(kept.length);
      }
      if (chunk.length > 0) {
        s.after += chunk.length;
        s.tail.push(Buffer.from(chunk));
      }
      if (!exceeded && total > limit.maxBytes) {
        exceeded = true;
        onExceeded();
      }
    },
    text(stream) {
      const s = streams[stream];
      const head = Buffer.concat(s.head).toString('utf8');
      const dropped = s.after - s.tail.size;
      if (dropped <= 0) return head + s.tail.buffer().toString('utf8');
      const sep = head === '' || head.endsWith('\n') ? '' : '\n';
      return `${head}${sep}[xamal] ${dropped} bytes of ${stream} not kept\n${s.tail.buffer().toString('utf8')}`;
    },
    get total() {
      return total;
    },
    get exceeded() {
      return exceeded;
    },
    get heldBytes() {
      return headBytes + streams.stdout.tail.held + streams.stderr.tail.held;
    },
  };
}

/** `64 MiB`, `512 KiB`, `70.4 MiB`, `100 bytes`: a size as people read it, in its largest unit. */
export function describeBytes(n: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (n >= size) return `${n % size === 0 ? n / size : (n / size).toFixed(1)} ${unit}`;
  }
  return `${n} bytes`;
}
