import { describe, expect, it } from 'vitest';
import { cappedLog, collapseCarriageReturns, LOG_TRUNCATED_MARKER } from '../../../builder/build-log.ts';
import { builderConfig } from '../../../builder/config.ts';

describe('a build log capped at XAMAL_MAX_LOG_BYTES', () => {
  it('keeps a log under its limit as it was, forwarding every chunk', () => {
    const log = cappedLog(1000);
    expect(log.add('compiling 3 files')).toEqual(['compiling 3 files']);
    expect(log.add('line one\nline two')).toEqual(['line one\nline two']);
    expect(log.text()).toBe('compiling 3 files\nline one\nline two\n');
    expect(log.truncated).toBe(false);
  });

  it('cuts a runaway log at the limit with one marker line, drops the rest live, and stores how much was dropped and the last lines', () => {
    const max = 4096;
    const log = cappedLog(max);
    const forwarded: string[] = [];
    for (let i = 0; i < 2000; i++) forwarded.push(...log.add(`warning: line ${i} ${'x'.repeat(40)}`));
    forwarded.push(...log.add('** (CompileError) lib/final.ex:1: the real error'));
    const markers = forwarded.filter((l) => l.startsWith(LOG_TRUNCATED_MARKER));
    expect(markers).toHaveLength(1);
    expect(markers[0]).toContain(`over its limit of ${max} bytes (XAMAL_MAX_LOG_BYTES)`);
    expect(forwarded.at(-1)).toBe(markers[0]);
    expect(Buffer.byteLength(forwarded.map((l) => `${l}\n`).join(''))).toBeLessThanOrEqual(max + 200);
    expect(log.truncated).toBe(true);
    expect(log.droppedBytes).toBeGreaterThan(90_000);

    const stored = log.text();
    expect(stored.startsWith('warning: line 0 ')).toBe(true);
    expect(stored).toContain(`${LOG_TRUNCATED_MARKER}: ${log.droppedBytes} bytes dropped`);
    expect(stored.trimEnd().endsWith('the real error')).toBe(true);
    expect(Buffer.byteLength(stored)).toBeLessThan(max + 16 * 1024);
    // Failure messages still show the end of the output, not the end of what was kept.
    expect(log.tail(2)).toBe(`warning: line 1999 ${'x'.repeat(40)}\n** (CompileError) lib/final.ex:1: the real error`);
  });

  it('cuts a single huge chunk (a whole step\'s output) inside the chunk, at a line end', () => {
    const log = cappedLog(4096);
    const chunk = Array.from({ length: 2000 }, (_, i) => `out ${i}`).join('\n');
    const fwd = log.add(chunk);
    expect(fwd).toHaveLength(2);
    expect(fwd[0]!.startsWith('out 0\nout 1\n')).toBe(true);
    expect(fwd[0]!.endsWith('\n')).toBe(false);
    expect(Buffer.byteLength(fwd[0]!)).toBeLessThanOrEqual(4096);
    expect(fwd[1]).toMatch(/^\[xamal\] log truncated/);
    expect(log.add('more')).toEqual([]);
  });

  it('reads the limit from XAMAL_MAX_LOG_BYTES (4 MiB by default) and rejects a silly one naming the setting', () => {
    expect(builderConfig({}).maxLogBytes).toBe(4 * 1024 * 1024);
    expect(builderConfig({ XAMAL_MAX_LOG_BYTES: '65536' }).maxLogBytes).toBe(65536);
    expect(() => builderConfig({ XAMAL_MAX_LOG_BYTES: '10' })).toThrow(/XAMAL_MAX_LOG_BYTES[\s\S]*at least 4096/);
  });
});

describe('carriage-return progress in build output', () => {
  it('keeps the last state of a redrawn line, as a terminal shows it, and stores and forwards only that', () => {
    const progress = Array.from({ length: 101 }, (_, i) => `Counting objects: ${i}% (${i}/100)`).join('\r') + '\rCounting objects: 100% (100/100), done.';
    const log = cappedLog(1000);
    expect(log.add(`remote: Enumerating objects: 100, done.\n${progress}\nResolving deltas: 100% (3/3), done.`)).toEqual([
      'remote: Enumerating objects: 100, done.\nCounting objects: 100% (100/100), done.\nResolving deltas: 100% (3/3), done.',
    ]);
    expect(log.text()).toBe('remote: Enumerating objects: 100, done.\nCounting objects: 100% (100/100), done.\nResolving deltas: 100% (3/3), done.\n');
  });

  it('overwrites from column 0 (a shorter redraw leaves the end of the longer one), and treats CRLF as a line end', () => {
    expect(collapseCarriageReturns('abcdef\rXY')).toBe('XYcdef');
    expect(collapseCarriageReturns('one\r\ntwo\r\n')).toBe('one\ntwo\n');
    expect(collapseCarriageReturns('10%\r20%\r\r')).toBe('20%');
    expect(collapseCarriageReturns('no progress here')).toBe('no progress here');
  });
});
