import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { XamalError } from '../errors/index.ts';
import { displayCommand, revealArgv, type Command } from './command.ts';
import type { CommandResult, Executor } from './executor.ts';
import { revealArg } from './sensitive.ts';

/** Runs commands on this machine with spawn (argv, never a shell string). */
export class LocalExecutor implements Executor {
  constructor(private readonly baseEnv: NodeJS.ProcessEnv = {}) {}

  run(cmd: Command): Promise<CommandResult> {
    const [file, ...args] = revealArgv(cmd);
    if (!file) return Promise.reject(new XamalError('internal', 'empty command'));
    const env = { ...this.baseEnv, ...Object.fromEntries(Object.entries(cmd.env ?? {}).map(([k, v]) => [k, revealArg(v)])) };
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, { cwd: cmd.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = cmd.timeoutMs
        ? setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, cmd.timeoutMs)
        : undefined;
      // A child that exits without reading its stdin makes our write fail with EPIPE; its exit code
      // (resolved below) is the answer, so the write error must not crash the process.
      child.stdin.on('error', () => {});
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const what = e.code === 'ENOENT' ? `command not found: ${file}` : `could not run ${displayCommand(cmd)}: ${e.message}`;
        reject(new XamalError('external', what, { cause: e }));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (timedOut) {
          reject(new XamalError('external', `timed out after ${cmd.timeoutMs} ms: ${displayCommand(cmd)}`));
          return;
        }
        resolve({ code: code ?? (signal ? 128 + (constants.signals[signal] ?? 15) : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
      });
      child.stdin.end(cmd.stdin === undefined ? undefined : revealArg(cmd.stdin));
    });
  }
}
