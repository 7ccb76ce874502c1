import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../localservices/config.ts';
import { cliBaseEnv } from './config.ts';

/** The CLI run from its TypeScript sources (tsx), as `npx xamal` in a checkout. */
export const SOURCE_CLI = join(PROJECT_ROOT, 'bin', 'xamal.mjs');

/**
 * Compiles the CLI into `outdir` (scripts/build-cli.mjs, the package's build step) and resolves with
 * its entry. Integration tests start that one: it is what an installed package runs, and each start
 * costs a fraction of the CPU of compiling the sources again under tsx.
 */
export function buildCli(outdir: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [join(PROJECT_ROOT, 'scripts', 'build-cli.mjs'), outdir], (err, stdout, stderr) =>
      err ? reject(new Error(`scripts/build-cli.mjs failed: ${stderr.trim() || err.message}`)) : resolve(stdout.trim()),
    ),
  );
}

/**
 * Runs the real `xamal` CLI (`entry`: the compiled one or bin/xamal.mjs; a fresh process) in a project
 * directory whose HOME is the project itself; resolves with exit code and output. For integration
 * tests and benchmarks.
 */
export function xamalCli(cwd: string, args: string[], env: Record<string, string> = {}, entry = SOURCE_CLI): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [entry, ...args], { cwd, env: { ...cliBaseEnv(), HOME: cwd, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
}
