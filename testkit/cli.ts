import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../localservices/config.ts';
import { cliBaseEnv } from './config.ts';

/**
 * Runs the real `xamal` CLI (bin/xamal.mjs, a fresh process) in a project directory whose HOME is
 * the project itself; resolves with exit code and output. For integration tests and benchmarks.
 */
export function xamalCli(cwd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'xamal.mjs'), ...args], { cwd, env: { ...cliBaseEnv(), HOME: cwd, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
}
