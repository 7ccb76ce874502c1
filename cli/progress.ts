/**
 * Progress for long commands: one status line per item (a build target, a host). On a terminal the
 * block of lines is redrawn in place; otherwise each change is one plain line, so CI logs stay
 * readable. Rendering is pure (`progressFrame`, `progressBar`); the sinks only write.
 */

/** A bar for `done` of `total` steps, `width` cells: `[#####.....]`. */
export function progressBar(done: number, total: number, width = 16): string {
  const filled = total <= 0 ? width : Math.max(0, Math.min(width, Math.round((done / total) * width)));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/**
 * What to write to a terminal to replace the previous frame (`previousLines` lines tall) with
 * `lines`: cursor up, then each line cleared and rewritten.
 */
export function progressFrame(lines: readonly string[], previousLines: number): string {
  const up = previousLines > 0 ? `\x1b[${previousLines}A` : '';
  return up + lines.map((l) => `\r\x1b[2K${l}\n`).join('');
}

export interface Progress {
  /** Sets the status line of `key` (new keys are appended, in order). */
  update(key: string, line: string): void;
  /** Leaves the last frame on screen. */
  end(): void;
}

/** An `update` that keeps each key's line (keys in first-seen order) and calls `changed` only when one changes. */
function onChange(changed: (lines: ReadonlyMap<string, string>, line: string) => void): Progress['update'] {
  const lines = new Map<string, string>();
  return (key, line) => {
    if (lines.get(key) === line) return;
    lines.set(key, line);
    changed(lines, line);
  };
}

/** Plain lines: each key's line printed when it changes. */
export function plainProgress(write: (line: string) => void): Progress {
  return { update: onChange((_, line) => write(line)), end() {} };
}

/** A terminal: the whole block redrawn in place on each change. */
export function ttyProgress(write: (raw: string) => void): Progress {
  let drawn = 0;
  return {
    update: onChange((lines) => {
      const frame = [...lines.values()];
      write(progressFrame(frame, drawn));
      drawn = frame.length;
    }),
    end() {
      drawn = 0;
    },
  };
}
