import { afterEach, describe, expect, it } from 'vitest';
import { ERROR_CODES, XamalError } from '../../../core/errors/index.ts';
import type { Io } from '../../../cli/io.ts';
import { main } from '../../../cli/main.ts';
import { COMMANDS, type CommandEntry } from '../../../cli/table.ts';

function memoryIo() {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = {
    out: (t) => void out.push(t),
    err: (t) => void err.push(t),
    interrupted: () => new Promise<string>(() => {}),
  };
  return { io, stdout: () => out.join('\n'), stderr: () => err.join('\n') };
}

async function run(argv: string[], debug = false) {
  const m = memoryIo();
  const code = await main(argv, m.io, { debug });
  return { code, stdout: m.stdout(), stderr: m.stderr() };
}

describe('xamal target parse', () => {
  it('prints the fields and the canonical tuple as JSON and exits 0', async () => {
    const r = await run(['target', 'parse', 'linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3+sslstatic']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({
      tuple: 'linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3+sslstatic',
      os: 'linux',
      arch: 'x86_64',
      libc: 'gnu',
      libcVersion: '2.41',
      distro: 'debian',
      distroVersion: '13',
      otp: '27.3.4.1',
      elixir: '1.18.3',
      qualifiers: ['sslstatic'],
    });
  });

  it('exits 2 and lists each bad field on stderr for an invalid tuple', async () => {
    const r = await run(['target', 'parse', 'linux-arm65-glibc2.36-debianbookworm-otp27-elixir1.18.3']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n');
    expect(lines[0]).toBe('xamal: invalid target tuple "linux-arm65-glibc2.36-debianbookworm-otp27-elixir1.18.3"');
    expect(lines).toContain('arch: expected one of x86_64, aarch64, armv7l, riscv64, got "arm65"');
    expect(lines.some((l) => l.startsWith('libc: expected gnu or musl'))).toBe(true);
    expect(lines.some((l) => l.startsWith('distro: '))).toBe(true);
    expect(lines.some((l) => l.startsWith('otp: '))).toBe(true);
  });

  it('exits 2 with a usage line when given two tuples', async () => {
    const r = await run(['target', 'parse', 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', 'another']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('xamal: expected exactly one TUPLE\nusage: xamal target parse TUPLE');
  });

  it('exits 2 with a usage line when given no tuple', async () => {
    const r = await run(['target', 'parse']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('usage: xamal target parse TUPLE');
  });

  it('exits 2 naming an unknown flag', async () => {
    const r = await run(['target', 'parse', '--frobnicate', 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown flag --frobnicate');
    expect(r.stderr).toContain('usage: xamal target parse TUPLE');
  });

  it('prints its usage, summary and flags for --help and exits 0', async () => {
    const r = await run(['target', 'parse', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: xamal target parse TUPLE\n\nPrint a target tuple's fields as JSON/);
    expect(r.stdout).toMatch(/\nFlags:\n  -h, --help +Print this help\n/);
  });
});

describe('xamal help', () => {

  it.each([[[]], [['help']], [['--help']], [['-h']]])('prints every command for %j and exits 0', async (argv) => {
    const r = await run(argv);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    for (const c of COMMANDS) expect(r.stdout).toContain(`  ${c.synopsis}  `);
    expect(r.stdout).toContain('Commands:');
  });

  it('documents every exit code the error table can produce, once each, with what it means', async () => {
    const r = await run(['help']);
    const section = r.stdout.split('Exit codes:\n')[1]!.split('\n\n')[0]!.split('\n');
    // A meaning too long for the line continues on the next, indented past the codes.
    const codes = section.filter((l) => /^\s+\d/.test(l)).map((l) => Number(/^\s+(\d+)\s/.exec(l)![1]));
    expect(codes).toEqual([0, ...new Set(Object.values(ERROR_CODES).map((c) => c.exit))].sort((a, b) => a - b));
    expect(section.find((l) => /^\s+5\s/.test(l))).toContain('lock');
  });

  it('narrows the list to a group with help WORD', async () => {
    const r = await run(['help', 'farm']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('  farm up  ');
    expect(r.stdout).not.toContain('target parse');
  });
});

describe('unknown commands', () => {
  it('exits 2 naming the command and listing every command', async () => {
    const r = await run(['frobnicate', 'now']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^xamal: unknown command "frobnicate now"\n/);
    for (const c of COMMANDS) expect(r.stderr).toContain(`  ${c.synopsis}  `);
  });

  it('exits 2 for a known group with an unknown verb, listing that group', async () => {
    const r = await run(['target', 'explode']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "target explode"');
    expect(r.stderr).toContain('target parse TUPLE');
  });
});

describe('the one exit point', () => {
  const added: CommandEntry[] = [];
  const addCommand = (word: string, run: () => Promise<number>) => {
    const entry: CommandEntry = { words: ['zz-test', word], synopsis: `zz-test ${word}`, summary: 'test only', load: async () => ({ help: { usage: `xamal zz-test ${word}`, flags: {} }, run }) };
    COMMANDS.push(entry);
    added.push(entry);
  };
  afterEach(() => {
    for (const e of added.splice(0)) COMMANDS.splice(COMMANDS.indexOf(e), 1);
  });

  it('returns the code a command returns', async () => {
    addCommand('seven', async () => 7);
    expect((await run(['zz-test', 'seven'])).code).toBe(7);
  });

  it('maps an expected error to its exit code and prints only its message', async () => {
    addCommand('missing', async () => {
      throw new XamalError('not_found', 'no such artifact');
    });
    const r = await run(['zz-test', 'missing']);
    expect(r.code).toBe(4);
    expect(r.stderr).toBe('xamal: no such artifact');
  });

  it('reports an unexpected error as internal, exit 1, without a stack unless debugging', async () => {
    addCommand('boom', async () => {
      throw new Error('kaboom');
    });
    const quiet = await run(['zz-test', 'boom']);
    expect(quiet.code).toBe(1);
    expect(quiet.stderr).toBe('xamal: internal error: kaboom\n(set XAMAL_DEBUG=1 for details)');
    const loud = await run(['zz-test', 'boom'], true);
    expect(loud.code).toBe(1);
    expect(loud.stderr).toMatch(/^xamal: internal error: kaboom\nError: kaboom\n\s+at /);
  });
});

describe('xamal version', () => {
  it.each([[['version']], [['--version']]])("prints the package's version for %j and exits 0", async (argv) => {
    const { version } = JSON.parse(await (await import('node:fs/promises')).readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    const r = await run(argv);
    expect(r).toEqual({ code: 0, stdout: `xamal ${version}`, stderr: '' });
  });

  it('refuses arguments with a usage error (exit 2)', async () => {
    const r = await run(['version', 'extra']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/expected no arguments/);
  });
});

describe('an unknown command', () => {
  it('is a usage error (exit 2) that suggests the command a typo was near, and lists the commands', async () => {
    const r = await run(['deplyo']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('xamal: unknown command "deplyo"; did you mean "deploy"?');
    expect(r.stderr).toContain('Commands:');
    expect((await run(['zzzzzz'])).stderr.split('\n')[0]).toBe('xamal: unknown command "zzzzzz"');
  });
});
