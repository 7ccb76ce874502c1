import { describe, expect, it } from 'vitest';
import { commandName, RecordingExecutor, runChecked, isXamalError } from '../../../../core/index.ts';

describe('runChecked', () => {
  it('resolves with the result of a command that exits 0', async () => {
    const exec = new RecordingExecutor(() => ({ stdout: 'ok\n' }));
    expect(await runChecked(exec, { argv: ['true'] })).toEqual({ code: 0, stdout: 'ok\n', stderr: '' });
  });

  it('throws an external error with the label, exit code and the last 15 lines of stderr', async () => {
    const stderr = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join('\n');
    const exec = new RecordingExecutor(() => ({ code: 2, stderr: `${stderr}\n`, stdout: 'ignored' }));
    const err = await runChecked(exec, { argv: ['tar', '-x'], label: 'unpack source' }).catch((e: unknown) => e);
    expect(isXamalError(err) && err.code).toBe('external');
    expect((err as Error).message).toBe(`unpack source failed (exit 2):\n${stderr.split('\n').slice(-15).join('\n')}`);
  });

  it('falls back to stdout when stderr is empty, to the program without a label, and takes another name when given', async () => {
    const exec = new RecordingExecutor(() => ({ code: 1, stdout: 'E: no space\n' }));
    await expect(runChecked(exec, { argv: ['cp', 'a', 'b'] })).rejects.toThrow(/^cp failed \(exit 1\):\nE: no space$/);
    await expect(runChecked(exec, { argv: ['cp'], label: 'save cache' }, 'web1: save cache')).rejects.toThrow(/^web1: save cache failed \(exit 1\)/);
    expect(commandName({ argv: ['git', 'fetch'] })).toBe('git');
    expect(commandName({ argv: ['git'], label: 'git fetch' })).toBe('git fetch');
  });
});
