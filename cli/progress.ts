/**
 * Progress for long commands: one status line per item (a build target, a host). On a terminal the
 * block of lines (the frame) is redrawn in place, below whatever else is printed: a line printed
 * while a frame is live goes through the screen, which erases the frame, prints the line and draws
 * the frame again under it, so the line appears once, intact. An error, an exit or Ctrl-C erases the
 * frame. Without a terminal each change is one plain line, so CI logs stay readable. Rendering is
 * pure (`progressFrame`, `progressBar`, `fitLine`); the sinks only write.
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

/** What erases a frame `lines` tall whose last line the cursor is under: up to its top, erase to the end of the screen. */
export function eraseFrame(lines: number): string {
  return lines > 0 ? `\x1b[${lines}A\r\x1b[J` : '';
}

/**
 * A frame line cut to `columns - 1` cells (ending in `…`): a line the terminal wraps would take two
 * rows, and the next redraw, going up one row per line, would leave its first row behind.
 */
export function fitLine(line: string, columns: number): string {
  const room = Math.max(8, columns - 1);
  return line.length > room ? `${line.slice(0, room - 1)}…` : line;
}

export interface Progress {
  /** Sets the status line of `key` (new keys are appended, in order). */
  update(key: string, line: string): void;
  /** Done: leaves the last frame on screen; lines printed afterwards go below it. */
  end(): void;
  /** Erases the frame from the screen (the command failed or was stopped). */
  clear(): void;
}

/** Plain lines: each key's line printed when it changes. */
export function plainProgress(write: (line: string) => void): Progress {
  const lines = new Map<string, string>();
  return {
    update(key, line) {
      if (lines.get(key) === line) return;
      lines.set(key, line);
      write(line);
    },
    end() {},
    clear() {},
  };
}

/** A terminal's stderr shared by one live progress frame and the lines printed while it shows. */
export interface Screen {
  /** A new progress display; its first update makes it the live frame (a frame still live is left as it is). */
  progress(): Progress;
  /** Runs `print` (which writes whole lines) with the live frame lifted: erased before, drawn again below after. */
  above(print: () => void): void;
  /** Erases the live frame, if any (an error, an exit, Ctrl-C). */
  clear(): void;
}

interface Frame {
  lines: Map<string, string>;
  drawn: number;
}

/** The screen of a terminal `columns` wide whose raw output is `write`. */
export function ttyScreen(write: (raw: string) => void, columns = 80): Screen {
  let live: Frame | undefined;
  const draw = (f: Frame) => {
    const lines = [...f.lines.values()].map((l) => fitLine(l, columns));
    write(progressFrame(lines, f.drawn));
    f.drawn = lines.length;
  };
  const erase = () => {
    if (!live) return;
    if (live.drawn) write(eraseFrame(live.drawn));
    live.drawn = 0;
  };
  return {
    progress() {
      const f: Frame = { lines: new Map(), drawn: 0 };
      return {
        update(key, line) {
          if (f.lines.get(key) === line) return;
          f.lines.set(key, line);
          live = f;
          draw(f);
        },
        end() {
          if (live === f) live = undefined;
          f.drawn = 0;
        },
        clear() {
          if (live !== f) return;
          erase();
          live = undefined;
        },
      };
    },
    above(print) {
      const f = live;
      if (!f?.drawn) return print();
      erase();
      try {
        print();
      } finally {
        if (live === f) draw(f);
      }
    },
    clear() {
      erase();
      live = undefined;
    },
  };
}

/** One progress on its own terminal (the screen's other lines not shared). */
export function ttyProgress(write: (raw: string) => void, columns = 80): Progress {
  return ttyScreen(write, columns).progress();
}
