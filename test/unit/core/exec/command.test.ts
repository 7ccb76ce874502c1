import { execFileSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { XamalError } from '../../../../core/errors/index.ts';
import {
  command,
  displayCommand,
  LocalExecutor,
  RecordingExecutor,
  REDACTED,
  revealArgv,
  sensitive,
  Sensitive,
  shellQuote,
  toShellLine,
  type Command,
} from '../../../../core/exec/index.ts';

const PATH_ENV = { PATH: '/usr/local/bin:/usr/bin:/bin', LC_ALL: 'C' };

/** Runs a line through the real POSIX shell and returns stdout as bytes. */
function sh(line: string): Buffer {
  return execFileSync('/bin/sh', ['-c', line], { env: PATH_ENV });
}

const HOSTILE = [
  '$(id)',
  '`id`',
  ';rm -rf /',
  '&& echo pwned',
  '| cat /etc/passwd',
  "it's",
  '"double quoted"',
  "'",
  '"',
  "'\\''",
  "''",
  'a\nb',
  'trailing newline\n',
  '\r\n',
  '*',
  '/etc/*',
  '?',
  '[abc]',
  '{a,b}',
  '~',
  '~root',
  'two words',
  ' leading space',
  'tab\there',
  'ünïcødé',
  '日本語',
  '🙂 emoji',
  'nbsp\u00a0here',
  '',
  '-n',
  '-e',
  '--help',
  '-',
  '$HOME',
  '${PATH}',
  '$((1+1))',
  '\\',
  'back\\slash\\n',
  'a>b',
  '<in',
  'a&b',
  '!',
  '#comment',
  '(sub)',
  'x=y',
  '%s%d',
  "$'\\x41'",
  'ends with backslash\\',
];

describe('shellQuote', () => {
  it('has at least 30 hostile strings to try', () => {
    expect(HOSTILE.length).toBeGreaterThanOrEqual(30);
  });

  it.each(HOSTILE.map((s) => [JSON.stringify(s), s]))('gets %s through /bin/sh byte for byte', (_label, s) => {
    const out = sh(`printf '%s' ${shellQuote(s)}`);
    expect(out.equals(Buffer.from(s, 'utf8'))).toBe(true);
  });

  it('keeps all hostile strings as separate words in one line', () => {
    const out = sh(`printf '%s\\0' ${HOSTILE.map(shellQuote).join(' ')}`);
    expect(out.toString('utf8').split('\0').slice(0, -1)).toEqual(HOSTILE);
  });

  it.each(['linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', '/usr/bin/env', 'KEY=value', 'user@host:22', 'a,b'])(
    'leaves the safe word %s bare',
    (w) => {
      expect(shellQuote(w)).toBe(w);
    },
  );

  it('quotes the empty string as a visible empty word', () => {
    expect(shellQuote('')).toBe("''");
  });

  it("writes an embedded single quote as '\\''", () => {
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });

  it('refuses NUL, which no shell word can carry', () => {
    expect(() => shellQuote('a\0b')).toThrow(TypeError);
    expect(() => shellQuote('a\0b')).toThrow('NUL');
  });
});

describe('Sensitive', () => {
  const secret = 'hunter2-s3cr3t';
  const s = sensitive(secret);

  it('prints [REDACTED] through String(), concatenation and template literals', () => {
    expect(String(s)).toBe(REDACTED);
    expect(`token=${s}`).toBe(`token=${REDACTED}`);
    expect('x' + s).toBe(`x${REDACTED}`);
  });

  it('prints [REDACTED] through JSON.stringify, also nested', () => {
    expect(JSON.stringify(s)).toBe(JSON.stringify(REDACTED));
    expect(JSON.stringify({ env: { TOKEN: s } })).toBe('{"env":{"TOKEN":"[REDACTED]"}}');
  });

  it('prints [REDACTED] through util.inspect, also nested and with showHidden', () => {
    expect(inspect(s)).toBe(REDACTED);
    expect(inspect({ a: [s] }, { depth: 5 })).not.toContain(secret);
    expect(inspect(s, { showHidden: true })).not.toContain(secret);
  });

  it('keeps the value out of spreads and Object.keys', () => {
    expect(JSON.stringify({ ...s })).not.toContain(secret);
    expect(Object.keys(s)).toEqual([]);
  });

  it('gives the real value only through reveal()', () => {
    expect(s.reveal()).toBe(secret);
    expect(s).toBeInstanceOf(Sensitive);
  });
});

describe('toShellLine and displayCommand', () => {
  const secret = "p@ss w'rd $(id)";
  const cmd: Command = command(['curl', '-H', sensitive(`Authorization: Bearer ${secret}`), 'https://farm.example/v1/health'], {
    cwd: '/srv/my app',
    env: { XAMAL_TOKEN: sensitive(secret), MODE: 'prod run' },
  });

  it('never contains the secret in the displayed line', () => {
    const line = displayCommand(cmd);
    expect(line).not.toContain(secret);
    expect(line).not.toContain('p@ss');
    expect(line).toBe(`cd '/srv/my app' && XAMAL_TOKEN=${REDACTED} MODE='prod run' curl -H ${REDACTED} https://farm.example/v1/health`);
  });

  it('writes the secret out, quoted, when asked to reveal', () => {
    const line = toShellLine(cmd, { reveal: true });
    expect(line).toContain(shellQuote(secret));
    expect(line).toContain(shellQuote(`Authorization: Bearer ${secret}`));
  });

  it('builds a revealed line that the shell runs with the exact values', () => {
    const dir = realpathSync(tmpdir());
    const c = command(['sh', '-c', 'printf "%s|%s|%s" "$PWD" "$SECRET" "$1"', 'sh', sensitive(secret)], {
      cwd: dir,
      env: { SECRET: sensitive(secret) },
    });
    expect(sh(toShellLine(c, { reveal: true })).toString('utf8')).toBe(`${dir}|${secret}|${secret}`);
  });

  it('reveals argv for executors that take an array', () => {
    expect(revealArgv(cmd)[2]).toBe(`Authorization: Bearer ${secret}`);
  });

  it.each(['BAD-NAME', '1ST', 'A B', '', 'X=Y', 'a;b'])('refuses the environment variable name %j', (name) => {
    expect(() => displayCommand(command(['true'], { env: { [name]: 'v' } }))).toThrow(/invalid environment variable name/);
  });

  it.each(['XAMAL_TOKEN', '_private', 'lower_case1'])('accepts the environment variable name %s', (name) => {
    expect(displayCommand(command(['true'], { env: { [name]: 'v' } }))).toBe(`${name}=v true`);
  });
});

describe('RecordingExecutor', () => {
  it('records every command in order and succeeds with empty output by default', async () => {
    const rec = new RecordingExecutor();
    const a = command(['docker', 'pull', 'img@sha256:abc']);
    const b = command(['docker', 'login', '-p', sensitive('pw'), 'registry']);
    expect(await rec.run(a)).toEqual({ code: 0, stdout: '', stderr: '' });
    await rec.run(b);
    expect(rec.commands).toEqual([a, b]);
    expect(rec.lines()).toEqual(['docker pull img@sha256:abc', `docker login -p ${REDACTED} registry`]);
  });

  it('returns what the responder scripts, falling back to success', async () => {
    const rec = new RecordingExecutor((cmd) => (cmd.argv[0] === 'uname' ? { stdout: 'x86_64\n' } : cmd.argv[0] === 'false' ? { code: 1, stderr: 'nope' } : undefined));
    expect(await rec.run(command(['uname', '-m']))).toEqual({ code: 0, stdout: 'x86_64\n', stderr: '' });
    expect(await rec.run(command(['false']))).toEqual({ code: 1, stdout: '', stderr: 'nope' });
    expect(await rec.run(command(['true']))).toEqual({ code: 0, stdout: '', stderr: '' });
  });
});

describe('LocalExecutor', () => {
  const exec = new LocalExecutor(PATH_ENV);
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('passes arguments without a shell, so $(echo hi) reaches printf literally', async () => {
    expect(await exec.run(command(['printf', '%s', '$(echo hi)']))).toEqual({ code: 0, stdout: '$(echo hi)', stderr: '' });
  });

  it('passes every hostile string through argv unchanged', async () => {
    const res = await exec.run(command(['printf', '%s\\0', ...HOSTILE]));
    expect(res.stdout.split('\0').slice(0, -1)).toEqual(HOSTILE);
  });

  it('resolves with a non-zero exit code and stderr instead of rejecting', async () => {
    expect(await exec.run(command(['sh', '-c', 'echo oops >&2; exit 3']))).toEqual({ code: 3, stdout: '', stderr: 'oops\n' });
  });

  it('reveals Sensitive arguments, environment and stdin to the child only', async () => {
    const res = await exec.run(
      command(['sh', '-c', 'printf "%s %s " "$1" "$TOKEN"; cat', 'sh', sensitive('arg-secret')], {
        env: { TOKEN: sensitive('env-secret') },
        stdin: sensitive('stdin-secret'),
      }),
    );
    expect(res.stdout).toBe('arg-secret env-secret stdin-secret');
  });

  it('runs in the given working directory', async () => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'xamal-exec-')));
    dirs.push(dir);
    expect((await exec.run(command(['pwd'], { cwd: dir }))).stdout).toBe(`${dir}\n`);
  });

  it('reports a missing binary as an external XamalError saying command not found', async () => {
    const err = await exec.run(command(['xamal-no-such-binary-4711', '--version'])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XamalError);
    expect((err as XamalError).code).toBe('external');
    expect((err as XamalError).message).toBe('command not found: xamal-no-such-binary-4711');
  });

  it('kills a command that outlives timeoutMs and rejects saying so', async () => {
    const started = Date.now();
    const err = await exec.run(command(['sleep', '10'], { timeoutMs: 150 })).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(err).toBeInstanceOf(XamalError);
    expect((err as XamalError).code).toBe('external');
    expect((err as XamalError).message).toBe('timed out after 150 ms: sleep 10');
  });

  it('honours the timeout even when a grandchild keeps the output pipe open', async () => {
    const started = Date.now();
    // `; :` keeps sh from exec-ing sleep, so sleep is a grandchild holding stdout
    const err = await exec.run(command(['sh', '-c', 'sleep 3; :'], { timeoutMs: 100 })).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect((err as XamalError).message).toBe("timed out after 100 ms: sh -c 'sleep 3; :'");
  });

  it('redacts secrets in the timeout message', async () => {
    const err = await exec.run(command(['sh', '-c', 'sleep 3; :', 'sh', sensitive('do-not-print')], { timeoutMs: 100 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XamalError);
    expect((err as XamalError).message).not.toContain('do-not-print');
    expect((err as XamalError).message).toContain(REDACTED);
  });

  it('reports a child killed by a signal as 128 + that signal', async () => {
    expect((await exec.run(command(['sh', '-c', 'kill -9 $$']))).code).toBe(137);
    expect((await exec.run(command(['sh', '-c', 'kill -15 $$']))).code).toBe(143);
  });

  it('survives a child that exits without reading a large stdin', async () => {
    const res = await exec.run(command(['true'], { stdin: 'x'.repeat(4 * 1024 * 1024) }));
    expect(res.code).toBe(0);
  });

  it('refuses an empty argv', async () => {
    await expect(exec.run(command([]))).rejects.toMatchObject({ code: 'internal', message: 'empty command' });
  });
});
