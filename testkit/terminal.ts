/**
 * A tiny terminal for tests: applies what a program writes (text, `\r`, `\n` as a tty's onlcr does,
 * and the few escape sequences the CLI uses — cursor up, erase line, erase to the end of the screen)
 * to a grid of rows, so a test asserts what a person would see. Any other escape sequence throws:
 * the model must not pretend to understand output it does not.
 */
export interface FakeTerminal {
  isTTY: true;
  columns: number;
  write(raw: string): boolean;
  /** The visible rows, trailing spaces and trailing empty rows dropped. */
  lines(): string[];
}

export function fakeTerminal(columns = 80): FakeTerminal {
  const rows: string[][] = [[]];
  let row = 0;
  let col = 0;
  const at = (r: number) => (rows[r] ??= []);
  const escape = (seq: string) => {
    const m = /^\x1b\[(\d*)([AKJ])$/.exec(seq);
    if (!m) throw new Error(`fake terminal: unsupported escape sequence ${JSON.stringify(seq)}`);
    const n = m[1] === '' ? undefined : Number(m[1]);
    if (m[2] === 'A') row = Math.max(0, row - (n ?? 1));
    else if (m[2] === 'K' && n === 2) rows[row] = [];
    else if (m[2] === 'K' && !n) at(row).length = Math.min(at(row).length, col);
    else if (m[2] === 'J' && !n) {
      at(row).length = Math.min(at(row).length, col);
      rows.length = row + 1;
    } else throw new Error(`fake terminal: unsupported escape sequence ${JSON.stringify(seq)}`);
  };
  return {
    isTTY: true,
    columns,
    write(raw) {
      for (let i = 0; i < raw.length; i++) {
        const ch = raw[i]!;
        if (ch === '\x1b') {
          const end = raw.slice(i).search(/[A-Za-z]/);
          if (end < 0) throw new Error(`fake terminal: unterminated escape sequence in ${JSON.stringify(raw)}`);
          escape(raw.slice(i, i + end + 1));
          i += end;
        } else if (ch === '\r') col = 0;
        else if (ch === '\n') {
          row++;
          col = 0;
          at(row);
        } else {
          if (col >= columns) {
            row++;
            col = 0;
          }
          const cells = at(row);
          while (cells.length < col) cells.push(' ');
          cells[col++] = ch;
        }
      }
      return true;
    },
    lines() {
      const out = rows.map((r) => r.join('').trimEnd());
      while (out.length && out.at(-1) === '') out.pop();
      return out;
    },
  };
}
