import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { displayCommand, revealArgv } from '../../../../core/index.ts';
import { appLogsCommand, grepPattern, journalSince } from '../../../../deployer/commands/logs.ts';

const UNIT = 'xamal-shop-web@green.service';

describe('app logs commands', () => {
  it('ask journalctl for the live units, -n, --since and -f, with the grep pattern as a word of its own', () => {
    expect(displayCommand(appLogsCommand([UNIT], { lines: 100 })).endsWith(`sh once '' -u ${UNIT} --no-pager -o cat -n 100`)).toBe(true);
    const argv = revealArgv(appLogsCommand([UNIT, 'xamal-shop-jobs@blue.service'], { since: '-10min', grep: "it's $(x)", follow: true }));
    expect(argv.slice(3)).toEqual(['sh', 'follow', "it's $(x)", '-u', UNIT, '-u', 'xamal-shop-jobs@blue.service', '--no-pager', '-o', 'cat', '--since=-10min', '-f']);
    expect(appLogsCommand([UNIT], { follow: true }).timeoutMs).toBeUndefined();
  });

  it('--since takes 30s/5m/1h/2d as relative times, and absolute times in UTC', () => {
    expect(['30s', '5m', '1h', '2d'].map(journalSince)).toEqual(['-30s', '-5min', '-1h', '-2d']);
    expect(journalSince('2026-01-02T13:00:00Z')).toBe('2026-01-02 13:00:00 UTC');
    expect(journalSince('2026-01-02T13:00+02:00')).toBe('2026-01-02 11:00:00 UTC');
    // No zone: this machine's local time.
    expect(journalSince('2026-01-02 13:00')).toBe(`${new Date(2026, 0, 2, 13, 0).toISOString().slice(0, 19).replace('T', ' ')} UTC`);
  });

  it('--since refuses anything else with the forms it takes', () => {
    for (const bad of ['5 minutes', 'yesterday', '2026-02-30', '2026-13-01', '-5m', "'; rm -rf /"]) expect(() => journalSince(bad)).toThrow(/^--since: /);
    expect(() => journalSince('soon')).toThrow('--since: expected a time like "2026-01-02 13:00", 2026-01-02T13:00:00Z or 2026-01-02, or a relative time like 30s, 5m, 1h, 2d, got "soon"');
  });

  it('--grep refuses an empty or multi-line pattern', () => {
    expect(grepPattern('error|warn')).toBe('error|warn');
    expect(() => grepPattern('')).toThrow('--grep: expected a non-empty pattern on one line');
    expect(() => grepPattern('a\nb')).toThrow('--grep');
  });
});

/** The script run here, with a fake journalctl on PATH: what it prints and when it stops. */
describe('the logs script (sh, a fake journalctl)', () => {
  let dir: string;
  const run = (args: string[], stdin?: 'keep') =>
    spawn('sh', args, { env: { PATH: `${dir}:/usr/bin:/bin`, DIR: dir }, stdio: [stdin === 'keep' ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-logs-'));
    // Prints its arguments and three lines; with -f, its pid, then a line every 50 ms until killed.
    await writeFile(
      join(dir, 'journalctl'),
      `#!/bin/sh\necho "args: $*"\nprintf 'GET /a 200\\nGET /b 500 error\\nPOST /c 200\\n'\ncase " $* " in *" -f "*) echo $$ > "$DIR/pid"; while :; do echo "tick error"; sleep 0.05; done;; esac\n`,
    );
    await chmod(join(dir, 'journalctl'), 0o755);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const collect = (child: ReturnType<typeof run>) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      let out = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      child.on('close', (code) => resolve({ code, out }));
    });

  it('prints every line without --grep, and only matching lines with it (no match is not a failure)', async () => {
    const all = await collect(run(appLogsCommand([UNIT], { lines: 3 }).argv.slice(1) as string[]));
    expect(all).toEqual({ code: 0, out: `args: -u ${UNIT} --no-pager -o cat -n 3\nGET /a 200\nGET /b 500 error\nPOST /c 200\n` });
    expect(await collect(run(appLogsCommand([UNIT], { grep: '500' }).argv.slice(1) as string[]))).toEqual({ code: 0, out: 'GET /b 500 error\n' });
    expect(await collect(run(appLogsCommand([UNIT], { grep: 'nothing-like-this' }).argv.slice(1) as string[]))).toEqual({ code: 0, out: '' });
  });

  it('following, streams matching lines until stdin ends, then stops journalctl too', async () => {
    const child = run(appLogsCommand([UNIT], { grep: 'error', follow: true }).argv.slice(1) as string[], 'keep');
    const done = collect(child);
    let seen = '';
    await new Promise<void>((resolve) => child.stdout!.on('data', (b: Buffer) => ((seen += b.toString()), seen.includes('tick error') && resolve())));
    const t0 = Date.now();
    child.stdin!.end();
    const r = await done;
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(r.out.split('\n').filter(Boolean).every((l) => l.includes('error'))).toBe(true);
    const pid = Number((await readFile(join(dir, 'pid'), 'utf8')).trim());
    const alive = () => {
      try {
        return process.kill(pid, 0);
      } catch {
        return false;
      }
    };
    // Killed, then reaped by whoever inherits it: gone within a moment.
    for (let i = 0; i < 40 && alive(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive()).toBe(false);
  });
});
