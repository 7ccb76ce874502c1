/** Characters of the most recent output kept for failure messages and the stored log's tail. */
const RECENT_CHARS = 8 * 1024;

export const LOG_TRUNCATED_MARKER = '[xamal] log truncated';

export interface CappedLog {
  /**
   * Records a chunk of output (one or more lines; carriage-return progress collapsed to its last
   * state, collapseCarriageReturns) and returns what to forward to the live log:
   * the chunk, the part of it that still fits plus the truncation marker, or nothing once the log
   * is over its limit.
   */
  add(chunk: string): string[];
  /** The log to store: everything under the limit, the marker, and the last output after it. */
  text(): string;
  /** The last `n` lines of output, kept or dropped (for failure messages). */
  tail(n: number): string;
  readonly truncated: boolean;
  /** Bytes of output not kept (after the limit). */
  readonly droppedBytes: number;
}

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/**
 * Each line as a terminal leaves it: progress redrawn with carriage returns (`Counting objects: 1%\r…
 * 100%, done.`) keeps its last state, as a terminal overwrites from column 0 (a shorter redraw leaves
 * the end of the longer one). A CRLF line end is a plain line end.
 */
export function collapseCarriageReturns(chunk: string): string {
  if (!chunk.includes('\r')) return chunk;
  return chunk
    .split('\n')
    .map((line) => {
      const parts = line.replace(/\r+$/, '').split('\r');
      let screen = '';
      for (const part of parts) screen = part + screen.slice(part.length);
      return screen;
    })
    .join('\n');
}

/** The longest prefix of `s` within `max` UTF-8 bytes, cut at a line end when there is one. */
function fit(s: string, max: number): string {
  if (max <= 0) return '';
  let cut = Buffer.from(s, 'utf8').subarray(0, max).toString('utf8');
  if (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1);
  const nl = cut.lastIndexOf('\n');
  return nl > 0 ? cut.slice(0, nl) : cut;
}

/**
 * A build log capped at `maxBytes` (XAMAL_MAX_LOG_BYTES): a chatty or runaway build keeps its
 * first `maxBytes` of output, one marker line saying the log was cut and why, and — in the stored
 * log — how much was dropped and the last few KiB, so the failure at the end is still readable. The
 * build itself goes on.
 */
export function cappedLog(maxBytes: number): CappedLog {
  const kept: string[] = [];
  let keptBytes = 0;
  let truncated = false;
  let dropped = 0;
  let recent = '';
  const remember = (s: string) => {
    recent = (recent + s).slice(-RECENT_CHARS);
  };
  const marker = () => `${LOG_TRUNCATED_MARKER}: over its limit of ${maxBytes} bytes (XAMAL_MAX_LOG_BYTES); later output is dropped (the stored log ends with its last lines)`;
  return {
    add(raw) {
      const chunk = collapseCarriageReturns(raw);
      const line = `${chunk}\n`;
      remember(line);
      if (truncated) {
        dropped += bytes(line);
        return [];
      }
      if (keptBytes + bytes(line) <= maxBytes) {
        kept.push(line);
        keptBytes += bytes(line);
        return [chunk];
      }
      truncated = true;
      const head = fit(chunk, maxBytes - keptBytes - 1);
      const out: string[] = [];
      if (head) {
        kept.push(`${head}\n`);
        keptBytes += bytes(head) + 1;
        out.push(head);
      }
      dropped += bytes(line) - (head ? bytes(head) + 1 : 0);
      kept.push(`${marker()}\n`);
      out.push(marker());
      return out;
    },
    text() {
      if (!truncated) return kept.join('');
      // Whole lines only: the window's first line is usually cut.
      const nl = recent.length >= RECENT_CHARS ? recent.indexOf('\n') + 1 : 0;
      const last = nl > 0 && nl < recent.length ? recent.slice(nl) : recent;
      return `${kept.join('')}${LOG_TRUNCATED_MARKER}: ${dropped} bytes dropped; the last ${bytes(last)} bytes of output:\n${last}`;
    },
    tail(n) {
      return recent.trimEnd().split('\n').slice(-n).join('\n');
    },
    get truncated() {
      return truncated;
    },
    get droppedBytes() {
      return dropped;
    },
  };
}
