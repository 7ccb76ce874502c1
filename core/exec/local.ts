import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { XamalError } from '../errors/index.ts';
import { displayCommand, revealArgv, type Command } from './command.ts';
import { deadline } from './deadline.ts';
import type { CommandResult, Executor } from './executor.ts';
import { revealArg } from './sensitive.ts';

/** The environment commands start from: the system PATH and the C locale, nothing inherited. */
export const SYSTEM_ENV: Readonly<Record<string, string>> = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };

/** Runs commands on this machine with spawn (argv, never a shell string). */
export class LocalExecutor implements Executor {
  constructor(private readonly baseEnv: NodeJS.ProcessEnv = SYSTEM_ENV) {}

  run(cmd: Command): Promise<CommandResult> {
    const [file, ...args] = revealArgv(cmd);
    if (!file) return Promise.reject(new XamalError('internal', 'empty command'));
    const env = { ...this.baseEnv, ...Object.fromEntries(Object.entries(cmd.env ?? {}).map(([k, v]) => [k, revealArg(v)])) };
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, { cwd: cmd.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const limit = deadline(cmd.timeoutMs, () => {
        child.kill('SIGKILL');
        // A grandchild (`sh -c 'sleep 99'`) may still hold our pipes open, and 'close' waits for
        // them; stop reading so the timeout is honoured when the child itself has exited.
        child.stdout.destroy();
        child.stderr.destroy();
      });
      // A child that exits without reading its stdin makes our write fail with EPIPE; its exit code
      // (resolved below) is the answer, so the write error must not crash the process.
      child.stdin.on('error', () => {});
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e: NodeJS.ErrnoException) => {
        limit.clear();
        const what = e.code === 'ENOENT' ? `command not found: ${file}` : `could not run ${displayCommand(cmd)}: ${e.message}`;
        reject(new XamalError('external', what, { cause: e }));
      });
      child.on('close', (code, signal) => {
        limit.clear();
        if (limit.expired()) {
          reject(new XamalError('external', `timed out after ${cmd.timeoutMs} ms: ${displayCommand(cmd)}`));
          return;
        }
        resolve({ code: code ?? (signal ? 128 + (constants.signals[signal] ?? 15) : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
      });
      child.stdin.end(cmd.stdin === undefined ? undefined : revealArg(cmd.stdin));
    });
  }
}

/** A running command whose stdout is consumed as a stream; `done` rejects on a non-zero exit. */
export interface StreamingProcess {
  stdout: import('node:stream').Readable;
  done: Promise<void>;
}

function describeExit(cmd: Command, code: number | null, signal: NodeJS.Signals | null, stderr: string): XamalError {
  return new XamalError('external', `${cmd.label ?? displayCommand(cmd)} failed (${signal ? `signal ${signal}` : `exit ${code}`}): ${stderr.trim().split('\n').slice(-8).join('\n')}`);
}

/** Starts a command and hands back its stdout as a stream (e.g. `zstd -dc` feeding `docker import`). */
export function spawnStreaming(cmd: Command, stdin?: import('node:stream').Readable): StreamingProcess {
  const [file, ...args] = revealArgv(cmd);
  const child = spawn(file!, args, { cwd: cmd.cwd, stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  if (stdin) stdin.pipe(child.stdin!);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => {
    if (stderr.length < 65536) stderr += b.toString('utf8');
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e) => reject(new XamalError('external', `could not run ${cmd.label ?? file}: ${e.message}`, { cause: e })));
    child.on('close', (code, signal) => (code === 0 ? resolve() : reject(describeExit(cmd, code, signal, stderr))));
  });
  return { stdout: child.stdout!, done };
}

/** `a | b | … > file`: runs a pipeline of commands with the last one's stdout written to `outFile`. */
export async function runPipelineToFile(cmds: readonly Command[], outFile: string): Promise<void> {
  const { createWriteStream } = await import('node:fs');
  const { pipeline } = await import('node:stream/promises');
  let prev: StreamingProcess | undefined;
  const procs: StreamingProcess[] = [];
  for (const cmd of cmds) {
    prev = spawnStreaming(cmd, prev?.stdout);
    procs.push(prev);
  }
  await Promise.all([pipeline(prev!.stdout, createWriteStream(outFile)), ...procs.map((p) => p.done)]);
}
