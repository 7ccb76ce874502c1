import { describe, expect, it } from 'vitest';
import { plainProgress, progressBar, progressFrame, ttyProgress } from '../../../cli/progress.ts';
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

describe('xamal build status lines', () => {
  const T = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
  it('fills the bar by build phase, full when completed, and says why a job waits', () => {
    expect(buildStatusLine(T, { state: 'waiting', phase: undefined, waitingReason: 'no worker serves aarch64' })).toBe(`[................] ${T}: waiting — no worker serves aarch64`);
    expect(buildStatusLine(T, { state: 'active', phase: 'compile', waitingReason: undefined })).toMatch(new RegExp(`^\\[#{9}\\.{7}\\] ${T}: active \\(compile\\)$`));
    expect(buildStatusLine(T, { state: 'completed', phase: 'done', waitingReason: undefined })).toBe(`[################] ${T}: completed`);
  });
});
