import { describe, expect, it } from 'vitest';
import { actionError, flagCommand, noExtraArgs, onlyAction, takeAction } from '../../../cli/args.ts';
import type { Io } from '../../../cli/io.ts';
import { XamalError } from '../../../core/index.ts';

const USAGE = 'xamal thing ACTION';
const io = { out: () => {}, err: () => {}, interrupted: () => new Promise<string>(() => {}) } satisfies Io;

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(XamalError);
    expect((err as XamalError).code).toBe('usage');
    return (err as XamalError).message;
  }
  throw new Error('expected a usage error');
}

describe('flagCommand', () => {
  it('hands run the parsed flags and positionals, and returns its exit code', async () => {
    const cmd = flagCommand({ usage: USAGE, flags: { json: { type: 'boolean', description: 'j' }, name: { type: 'string', short: 'n', description: 'n' } } }, async ({ positionals, values }) => {
      expect(positionals).toEqual(['a', 'b']);
      expect(values).toEqual({ json: true, name: 'x' });
      return 7;
    });
    expect(await cmd.run(['a', '--json', '-n', 'x', 'b'], io)).toBe(7);
  });

  it('rejects an unknown flag with a usage error naming it, without running', async () => {
    let ran = false;
    const cmd = flagCommand({ usage: USAGE, flags: {} }, async () => {
      ran = true;
      return 0;
    });
    await expect(cmd.run(['--nope'], io)).rejects.toThrow(/^unknown flag --nope\nusage: xamal thing ACTION$/);
    expect(ran).toBe(false);
  });

  it('suggests the flag a typo was near (long or short), and nothing for what is near none', async () => {
    const cmd = flagCommand({ usage: USAGE, flags: { hosts: { type: 'string', short: 'h', description: 'h' }, roles: { type: 'string', description: 'r' } } }, async () => 0);
    await expect(cmd.run(['--hostz', 'a'], io)).rejects.toThrow(/^unknown flag --hostz; did you mean "--hosts"\?\n/);
    await expect(cmd.run(['--rolse', 'a'], io)).rejects.toThrow(/^unknown flag --rolse; did you mean "--roles"\?\n/);
    await expect(cmd.run(['--frobnicate'], io)).rejects.toThrow(/^unknown flag --frobnicate\n/);
  });

  it('suggests the action a typo was near', () => {
    expect(() => takeAction(['statsu'], ['status', 'acquire', 'release'], USAGE)).toThrow(/^unknown action "statsu"; did you mean "status"\?\n/);
    expect(() => takeAction(['zzz'], ['status', 'acquire', 'release'], USAGE)).toThrow(/^unknown action "zzz"\n/);
  });
});

describe('action words', () => {
  it('noExtraArgs refuses the first word left over, and passes none', () => {
    expect(usageMessage(() => noExtraArgs(['x', 'y'], USAGE))).toBe(`unexpected argument "x"\nusage: ${USAGE}`);
    expect(() => noExtraArgs([], USAGE)).not.toThrow();
  });

  it('actionError names an unknown action, or what was expected when there is none', () => {
    expect(actionError('bogus', USAGE).message).toBe(`unknown action "bogus"\nusage: ${USAGE}`);
    expect(actionError(undefined, USAGE).message).toBe(`expected an action\nusage: ${USAGE}`);
    expect(actionError(undefined, USAGE, 'print or extract').message).toBe(`expected print or extract\nusage: ${USAGE}`);
  });

  it('takeAction gives the action and the rest, and lists the actions when it is missing', () => {
    expect(takeAction(['extract', 'NAME'], ['print', 'extract'], USAGE)).toEqual(['extract', ['NAME']]);
    expect(usageMessage(() => takeAction([], ['status', 'acquire', 'release'], USAGE))).toBe(`expected status, acquire or release\nusage: ${USAGE}`);
    expect(usageMessage(() => takeAction([], ['details'], USAGE))).toBe(`expected details\nusage: ${USAGE}`);
    expect(usageMessage(() => takeAction(['bogus'], ['details'], USAGE))).toBe(`unknown action "bogus"\nusage: ${USAGE}`);
  });

  it('onlyAction also refuses words after the action', () => {
    expect(onlyAction(['status'], ['status', 'release'], USAGE)).toBe('status');
    expect(usageMessage(() => onlyAction(['status', 'now'], ['status', 'release'], USAGE))).toBe(`unexpected argument "now"\nusage: ${USAGE}`);
  });
});
