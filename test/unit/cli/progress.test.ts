import { describe, expect, it } from 'vitest';
import { fitLine, plainProgress, progressBar, progressFrame, ttyProgress, ttyScreen } from '../../../cli/progress.ts';
import { fakeTerminal } from '../../../testkit/terminal.ts';
import { buildStatusLine } from '../../../cli/commands/build.ts';

describe('progress display', () => {
  it('draws a bar proportional to the steps done, clamped to its width', () => {
    expect(progressBar(0, 4, 8)).toBe('[........]');
    expect(progressBar(2, 4, 8)).toBe('[####....]');
    expect(progressBar(9, 4, 8)).toBe('[########]');
    expect(progressBar(0, 0, 4)).toBe('[####]');
  });

  it('on a terminal redraws the whole block in place: cursor up by the lines drawn before, each line cleared', () => {
    const out: string[] = [];
    const p = ttyProgress((raw) => out.push(raw));
    p.update('a', 'a: queued');
    p.update('b', 'b: queued');
    p.update('a', 'a: compile');
    p.update('a', 'a: compile'); // unchanged: nothing written
    expect(out).toEqual([
      progressFrame(['a: queued'], 0),
      progressFrame(['a: queued', 'b: queued'], 1),
      progressFrame(['a: compile', 'b: queued'], 2),
    ]);
    expect(out[2]).toBe('\x1b[2A\r\x1b[2Ka: compile\n\r\x1b[2Kb: queued\n');
  });

  it('without a terminal prints one plain line per change, no escape codes', () => {
    const lines: string[] = [];
    const p = plainProgress((l) => lines.push(l));
    for (const [k, l] of [['a', 'a: queued'], ['b', 'b: queued'], ['a', 'a: queued'], ['a', 'a: done']] as const) p.update(k, l);
    p.end();
    expect(lines).toEqual(['a: queued', 'b: queued', 'a: done']);
  });
});

describe('a terminal screen shared by a frame and other lines', () => {
  it('would lose a line written past the screen while a frame shows (what going through it prevents)', () => {
    const term = fakeTerminal();
    const screen = ttyScreen((raw) => term.write(raw));
    const p = screen.progress();
    p.update('a', 'a: queued');
    p.update('b', 'b: queued');
    term.write('warning\n'); // printed at the cursor, not through the screen: below the frame…
    p.update('a', 'a: compile');
    expect(term.lines()).toEqual(['a: queued', 'a: compile', 'b: queued']); // …the redraw, one row short, overwrites it and leaves a stale line
    screen.above(() => term.write('warning\n'));
    p.update('b', 'b: done');
    expect(term.lines()).toEqual(['a: queued', 'warning', 'a: compile', 'b: done']);
  });

  it('clear erases the frame and lines printed afterwards start where it was; a cleared progress draws again when updated', () => {
    const term = fakeTerminal();
    const screen = ttyScreen((raw) => term.write(raw));
    const p = screen.progress();
    p.update('a', 'a: 1');
    p.update('b', 'b: 1');
    screen.clear();
    expect(term.lines()).toEqual([]);
    screen.above(() => term.write('after\n'));
    p.update('a', 'a: 2');
    expect(term.lines()).toEqual(['after', 'a: 2', 'b: 1']);
  });

  it('fits a frame line into one row (columns - 1, ending in …), leaving shorter lines alone', () => {
    expect(fitLine('x'.repeat(100), 40)).toBe(`${'x'.repeat(38)}…`);
    expect(fitLine('short', 40)).toBe('short');
  });
});

describe('xamal build status lines', () => {
  const T = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
  it('fills the bar by build phase, full when completed, and says why a job waits', () => {
    expect(buildStatusLine(T, { state: 'waiting', phase: undefined, waitingReason: 'no worker serves aarch64' })).toBe(`[................] ${T}: waiting — no worker serves aarch64`);
    expect(buildStatusLine(T, { state: 'active', phase: 'compile', waitingReason: undefined })).toMatch(new RegExp(`^\\[#{9}\\.{7}\\] ${T}: active \\(compile\\)$`));
    expect(buildStatusLine(T, { state: 'completed', phase: 'done', waitingReason: undefined })).toBe(`[################] ${T}: completed`);
  });
});
