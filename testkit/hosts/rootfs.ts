import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { runChecked, type Executor } from '../../core/index.ts';
import { withFileLock } from '../../localservices/fs-lock.ts';
import { hostRootfsPlan, ROOTFS_REMOVE, rootfsFiles, suiteHasCaddyPackage, type HostSuite } from './plan.ts';

export interface RootfsDeps {
  exec: Executor;
  cacheDir: string;
  mirror: string;
  say: (line: string) => void;
}

/** Debian packages this machine needs to build and boot test hosts. */
export const LAB_PACKAGES = ['debootstrap', 'systemd-container', 'openssh-client', 'iproute2', 'iptables', 'caddy', 'curl', 'wrk', 'util-linux'] as const;

/** This machine's Caddy package version: Debian 11 roots carry this machine's binary. */
export async function caddyVersion(exec: Executor): Promise<string> {
  const r = await runChecked(exec, { argv: ['dpkg-query', '-W', '-f=${Version}', 'caddy'], label: 'caddy version' });
  return r.stdout.trim();
}

/** Where Debian 11 roots keep this machine's Caddy with the libraries and loader it was linked against. */
const PRIVATE_CADDY = 'usr/lib/xamal-caddy';

/**
 * Debian 11 has no Caddy package and Debian's binary needs glibc 2.34: it is copied in with its own
 * loader and libraries (what `ldd` lists) and started through a wrapper, standing in for the static
 * build users install from Caddy's own repository.
 */
async function installPrivateCaddy(root: string): Promise<void> {
  const dir = join(root, PRIVATE_CADDY);
  await mkdir(dir, { recursive: true });
  for (const lib of ['/lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/libc.so.6', '/lib/x86_64-linux-gnu/libzstd.so.1']) {
    await copyFile(lib, join(dir, basename(lib)));
  }
  await copyFile('/usr/bin/caddy', join(dir, 'caddy'));
  await chmod(join(dir, 'caddy'), 0o755);
  await chmod(join(dir, 'ld-linux-x86-64.so.2'), 0o755);
  const p = `/${PRIVATE_CADDY}`;
  await writeFile(join(root, 'usr/bin/caddy'), `#!/bin/sh\nexec ${p}/ld-linux-x86-64.so.2 --library-path ${p} ${p}/caddy "$@"\n`, { mode: 0o755 });
  await copyFile('/lib/systemd/system/caddy-api.service', join(root, 'lib/systemd/system/caddy-api.service'));
}

/**
 * The read-only root every host of `suite` boots from (as an overlay's lower layer), built once with
 * debootstrap and kept under `<cache>/hosts/` (outside the checkout, so fresh clones reuse it).
 * Built in a work directory and renamed into place: a cached root is always complete.
 */
export async function ensureHostRootfs(deps: RootfsDeps, suite: HostSuite): Promise<string> {
  const plan = hostRootfsPlan(suite, deps.mirror, await caddyVersion(deps.exec));
  const final = join(deps.cacheDir, 'hosts', plan.dirName);
  if (existsSync(final)) return final;
  return withFileLock(join(deps.cacheDir, 'hosts', `${plan.dirName}.lock`), `test host root ${suite}`, async () => {
    if (existsSync(final)) return final;
    await mkdir(join(deps.cacheDir, 'work'), { recursive: true });
    const work = await mkdtemp(join(deps.cacheDir, 'work', `host-${suite}-`));
    const root = join(work, 'root');
    try {
      const t0 = Date.now();
      deps.say(`test host ${suite}: debootstrap (${plan.packages.join(', ')})`);
      await runChecked(deps.exec, plan.debootstrap(root));
      if (!suiteHasCaddyPackage(suite)) await installPrivateCaddy(root);
      for (const step of plan.chrootSteps(root)) await runChecked(deps.exec, step);
      for (const p of ROOTFS_REMOVE) await rm(join(root, p), { recursive: true, force: true });
      for (const f of rootfsFiles()) {
        await writeFile(join(root, f.path), f.content);
        await chmod(join(root, f.path), f.mode);
      }
      await mkdir(join(root, 'var/lib/apt/lists/partial'), { recursive: true });
      await rename(root, final);
      deps.say(`test host ${suite}: root ready in ${Math.round((Date.now() - t0) / 1000)} s`);
      return final;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}
