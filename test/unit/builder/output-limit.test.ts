import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { describeBytes, limitedOutput, TAIL_BYTES } from '../../../builder/output-limit.ts';

/** A fake container output: `chunks` chunks of `size` bytes of `fill` on one stream, through a real stream. */
async function pump(add: (b: Buffer) => void, chunks: number, size: number, fill = 'x'): Promise<void> {
  const s = new PassThrough();
  s.on('data', add);
  const done = new Promise((r) => s.on('end', r));
  for (let i = 0; i < chunks; i++) s.write(Buffer.alloc(size, fill));
  s.end();
  await done;
}

describe('a step\'s output as it streams', () => {
  it('keeps everything, kills nothing, while the output stays under both limits', () => {
    let kills = 0;
    const o = limitedOutput({ maxBytes: 1000, keepBytes: 100 }, () => kills++);
    o.add('stdout', Buffer.from('compiling\n'));
    o.add('stderr', Buffer.from('warning: x\n'));
    expect([o.text('stdout'), o.text('stderr'), o.total, o.exceeded, kills]).toEqual(['compiling\n', 'warning: x\n', 21, false, 0]);
  });

  it('asks once for the kill when stdout and stderr together pass the cap, and says so', async () => {
    let kills = 0;
    const o = limitedOutput({ maxBytes: 10_000, keepBytes: 1000 }, () => kills++);
    await pump((b) => o.add('stdout', b), 5, 1000);
    await pump((b) => o.add('stderr', b), 5, 1000);
    expect([o.exceeded, kills]).toEqual([false, 0]);
    o.add('stderr', Buffer.from('!'));
    expect([o.exceeded, kills, o.total]).toEqual([true, 1, 10_001]);
    await pump((b) => o.add('stdout', b), 10, 1000);
    expect(kills).toBe(1);
  });

  it('holds only the head, the tails and one chunk in memory however much is printed (100 MiB here)', async () => {
    const o = limitedOutput({ maxBytes: 1024 ** 3, keepBytes: 4096 }, () => {});
    let most = 0;
    await pump((b) => {
      o.add('stdout', b);
      most = Math.max(most, o.heldBytes);
    }, 1600, 64 * 1024);
    expect(o.total).toBe(100 * 1024 ** 2);
    expect(most).toBeLessThanOrEqual(4096 + TAIL_BYTES + 64 * 1024);
    expect(Buffer.byteLength(o.text('stdout'))).toBeLessThan(4096 + TAIL_BYTES + 100);
  });

  it('keeps the start and the end of a long output with a line naming what was not kept between them', () => {
    const o = limitedOutput({ maxBytes: 10 ** 9, keepBytes: 6 }, () => {});
    o.add('stdout', Buffer.from('first\n'));
    o.add('stdout', Buffer.alloc(TAIL_BYTES + 500, 'm'));
    o.add('stdout', Buffer.from('\nthe error at the end\n'));
    const text = o.text('stdout');
    expect(text.startsWith('first\n[xamal] 522 bytes of stdout not kept\n')).toBe(true);
    expect(text.endsWith('m\nthe error at the end\n')).toBe(true);
    expect(Buffer.byteLength(text)).toBe(6 + '[xamal] 522 bytes of stdout not kept\n'.length + TAIL_BYTES);
  });

  it('shares the head between the streams: stderr after a full head keeps only its tail', () => {
    const o = limitedOutput({ maxBytes: 10 ** 9, keepBytes: 4 }, () => {});
    o.add('stdout', Buffer.from('abcdef'));
    o.add('stderr', Buffer.from('oops\n'));
    expect([o.text('stdout'), o.text('stderr')]).toEqual(['abcdef', 'oops\n']);
  });

  it('names a limit in the unit people read', () => {
    expect([describeBytes(64 * 1024 ** 2), describeBytes(1024 ** 3), describeBytes(512 * 1024), describeBytes(100), describeBytes(1.5 * 1024 ** 2 + 1), describeBytes(8 * 1024 ** 3 + 12345)]).toEqual([
      '64 MiB',
      '1 GiB',
      '512 KiB',
      '100 bytes',
      '1.5 MiB',
      '8.0 GiB',
    ]);
  });
});
