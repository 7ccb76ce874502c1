import { command, type Command } from '../../core/index.ts';

/** Debian packages on a host: what is installed, and installing only what is missing. */

/** Prints `<package> <status>` per package; unknown packages go to stderr (exit 1, output still parsed). */
export function packageStatusCommand(packages: readonly string[]): Command {
  return command(['dpkg-query', '-W', '-f=${Package} ${db:Status-Status}\\n', '--', ...packages], { label: 'check packages' });
}

/** The packages of `wanted` that `packageStatusCommand` did not report as installed. */
export function missingPackages(wanted: readonly string[], stdout: string): string[] {
  const installed = new Set(
    stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([, status]) => status === 'installed')
      .map(([name]) => name!.replace(/:.*$/, '')),
  );
  return wanted.filter((p) => !installed.has(p));
}

/** Root step: refresh the package lists (a fresh host may have none). */
export function aptUpdateCommand(): Command {
  return command(['apt-get', 'update', '-q'], { env: { DEBIAN_FRONTEND: 'noninteractive' }, label: 'apt-get update', timeoutMs: 300_000 });
}

/** Root step: installs `packages` without prompts or recommended extras. */
export function aptInstallCommand(packages: readonly string[]): Command {
  return command(['apt-get', 'install', '-y', '-q', '--no-install-recommends', '--', ...packages], {
    env: { DEBIAN_FRONTEND: 'noninteractive' },
    label: `install ${packages.join(' ')}`,
    timeoutMs: 900_000,
  });
}
