import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { terminalIo, type CliCommand, type SignalSource } from '../../../cli/io.ts';
import { main } from '../../../cli/main.ts';
import { COMMANDS, type CommandEntry } from '../../../cli/table.ts';
import { XamalError } from '../../../core/index.ts';
import { fakeTerminal } from '../../../testkit/terminal.ts';

/** A process's signals: listeners as Node keeps them, and the kills asked for. */
function fakeProcess() {
  const kills: string[] = [];
  const emitter = new EventEmitter();
  // An EventEmitter listens and counts as the process does; kill only records.
  const proc = Object.assign(emitter, { pid: 4242, kills, kill: (_pid: number, s: string) => void kills.push(s) });
  return proc as unknown as SignalSource & { emit(signal: string, arg?: unknown): boolean; kills: string[] };
}

/** One terminal that both stdout and stderr print to (the usual interactive case). */
function shared(columns = 80) {
  const term = fakeTerminal(columns);
  const stdout = { write: (t: string) => term.write(t), isTTY: true as const, columns };
  const proc = fakeProcess();
  return { term, proc, io: terminalIo(stdout, term, proc) };
}

describe('progress on a terminal, with lines printed while it shows', () => {
  it('prints a line said mid-progress once, intact, above the frame, and keeps redrawing the frame below it', () => {
    const { term, io } = shared();
    const p = io.progress!();
    p.update('web1', 'web1: pulling');
    p.update('web2', 'web2: pulling');
    io.err('pre-deploy hook: migrations ran');
    p.update('web1', 'web1: booting');
    io.out('web1: 1.4.2 (linux-x86_64) blue→green');
    p.update('web2', 'web2: healthy');
    expect(term.lines()).toEqual(['pre-deploy hook: migrations ran', 'web1: 1.4.2 (linux-x86_64) blue→green', 'web1: booting', 'web2: healthy']);
  });

  it('erases the frame before the line and draws it again after: the exact bytes', () => {
    const writes: string[] = [];
    const stderr = { write: (t: string) => writes.push(t), isTTY: true, columns: 80 };
    const io = terminalIo({ write: () => true, isTTY: false }, stderr, fakeProcess());
    const p = io.progress!();
    p.update('a', 'a: queued');
    p.update('b', 'b: queued');
    writes.length = 0;
    io.err('warning: slow host');
    expect(writes.join('')).toBe('\x1b[2A\r\x1b[J' + 'warning: slow host\n' + '\r\x1b[2Ka: queued\n\r\x1b[2Kb: queued\n');
  });

  it('leaves stdout alone when it is not the terminal (piped): the line is not on the screen and the frame is not touched', () => {
    const term = fakeTerminal();
    const piped: string[] = [];
    const io = terminalIo({ write: (t: string) => piped.push(t), isTTY: false }, term, fakeProcess());
    const p = io.progress!();
    p.update('a', 'a: compile');
    io.out('{"builds": []}');
    p.update('a', 'a: done');
    expect(piped).toEqual(['{"builds": []}\n']);
    expect(term.lines()).toEqual(['a: done']);
  });

  it('cuts a frame line wider than the terminal, so redrawing leaves no half line behind', () => {
    const { term, io } = shared(40);
    const p = io.progress!();
    const long = `[########........] linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3: active (compile)`;
    p.update('t', long);
    p.update('u', 'u: queued');
    p.update('t', long.replace('compile', 'release'));
    io.err('a line');
    expect(term.lines()).toEqual(['a line', `${long.slice(0, 38)}…`, 'u: queued']);
  });

  it('after end leaves the last frame and prints later lines below it', () => {
    const { term, io } = shared();
    const p = io.progress!();
    p.update('a', 'a: done');
    p.end();
    io.out('a: ok');
    expect(term.lines()).toEqual(['a: done', 'a: ok']);
  });

  it('prints plain lines, no escape codes, when stderr is not a terminal', () => {
    const err: string[] = [];
    const io = terminalIo({ write: () => true, isTTY: false }, { write: (t: string) => err.push(t), isTTY: false }, fakeProcess());
    const p = io.progress!();
    p.update('a', 'a: queued');
    io.err('said');
    p.update('a', 'a: done');
    expect(err.join('')).toBe('a: queued\nsaid\na: done\n');
  });
});

describe('no frame is left behind', () => {
  /** Adds a test command to the table; returns what removes it. */
  const addCommand = (word: string, run: CliCommand['run']) => {
    const entry: CommandEntry = { words: ['zz-test', word], synopsis: `zz-test ${word}`, summary: 'test only', load: async () => ({ help: { usage: `xamal zz-test ${word}`, flags: {} }, run }) };
    COMMANDS.push(entry);
    return () => void COMMANDS.splice(COMMANDS.indexOf(entry), 1);
  };

  it('after a command fails mid-progress: the error is the last line and no bar remains', async () => {
    const { term, io } = shared();
    const remove = addCommand('fails', async (_args, cmdIo) => {
      const p = cmdIo.progress!();
      p.update('web1', 'web1: [####....] booting');
      p.update('web2', 'web2: [##......] pulling');
      cmdIo.err('web2: retrying the download');
      throw new XamalError('external', 'web2: health check failed');
    });
    try {
      expect(await main(['zz-test', 'fails'], io, { debug: false })).toBe(8);
    } finally {
      remove();
    }
    expect(term.lines()).toEqual(['web2: retrying the download', 'xamal: web2: health check failed']);
  });

  it('on Ctrl-C: the frame is erased, then the signal ends the process as it would have (nobody else listens)', () => {
    const { term, io, proc } = shared();
    const p = io.progress!();
    p.update('a', 'a: [#.......] compile');
    io.err('said before');
    proc.emit('SIGINT', 'SIGINT');
    expect(term.lines()).toEqual(['said before']);
    expect(proc.kills).toEqual(['SIGINT']);
  });

  it('on Ctrl-C a command that waits for it: the frame is erased and the command is left to stop', async () => {
    const { term, io, proc } = shared();
    const stopped = io.interrupted();
    io.progress!().update('a', 'a: serving');
    proc.emit('SIGINT', 'SIGINT');
    expect(await stopped).toBe('SIGINT');
    expect(term.lines()).toEqual([]);
    expect(proc.kills).toEqual([]);
  });

  it('when the process exits with a frame still live', () => {
    const { term, io, proc } = shared();
    io.progress!().update('a', 'a: pulling');
    proc.emit('exit', 0);
    expect(term.lines()).toEqual([]);
  });
});
