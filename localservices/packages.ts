import { execFile } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { XamalError } from '../core/errors/index.ts';
import { childEnv } from './config.ts';

const run = promisify(execFile);

/** Debian packages from `wanted` that are not installed. */
export async function missingPackages(wanted: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const pkg of new Set(wanted)) {
    const status = await run('dpkg-query', ['-W', '-f=${Status}', pkg]).then(
      (r) => r.stdout,
      () => '',
    );
    if (!/install ok installed/.test(status)) missing.push(pkg);
  }
  return missing;
}

const POLICY_RC = '/usr/sbin/policy-rc.d';

function aptListsEmpty(): boolean {
  try {
    return !readdirSync('/var/lib/apt/lists').some((f) => f.endsWith('_Packages') || f.endsWith('_Packages.lz4'));
  } catch {
    return true;
  }
}

/**
 * Installs missing Debian packages (idempotent). Services are never started by the packages'
 * maintainer scripts: a policy-rc.d that denies starts is put in place for the install when none exists.
 */
export function ensurePackages(wanted: readonly string[], log: (line: string) => void = () => {}): Promise<string[]> {
  // One install at a time in this process; apt's own lock (waited on, below) covers other processes.
  const next = queue.then(() => installMissing(wanted, log));
  queue = next.catch(() => undefined);
  return next;
}

let queue: Promise<unknown> = Promise.resolve();
const LOCK_WAIT = ['-o', 'DPkg::Lock::Timeout=300'];

async function installMissing(wanted: readonly string[], log: (line: string) => void): Promise<string[]> {
  const missing = await missingPackages(wanted);
  if (missing.length === 0) return [];
  if (process.getuid?.() !== 0) {
    throw new XamalError('unavailable', `missing Debian packages: ${missing.join(' ')} — install them as root: apt-get install -y ${missing.join(' ')}`);
  }
  const env = childEnv({ DEBIAN_FRONTEND: 'noninteractive' });
  const addedPolicy = !existsSync(POLICY_RC);
  if (addedPolicy) writeFileSync(POLICY_RC, '#!/bin/sh\n# written by xamal for the duration of an install\nexit 101\n', { mode: 0o755 });
  try {
    if (aptListsEmpty()) {
      log('apt-get update');
      await run('apt-get', [...LOCK_WAIT, 'update'], { env, maxBuffer: 64 << 20 });
    }
    log(`apt-get install ${missing.join(' ')}`);
    const install = () => run('apt-get', [...LOCK_WAIT, 'install', '-y', '--no-install-recommends', ...missing], { env, maxBuffer: 64 << 20 });
    await install().catch(async () => {
      // Stale package lists are the usual cause; refresh once and retry.
      await run('apt-get', [...LOCK_WAIT, 'update'], { env, maxBuffer: 64 << 20 });
      return install();
    });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? String(err);
    throw new XamalError('unavailable', `apt-get install ${missing.join(' ')} failed:\n${stderr.trim().split('\n').slice(-10).join('\n')}`, { cause: err });
  } finally {
    if (addedPolicy) rmSync(POLICY_RC, { force: true });
  }
  const still = await missingPackages(missing);
  if (still.length) throw new XamalError('unavailable', `packages still missing after install: ${still.join(' ')}`);
  return missing;
}
