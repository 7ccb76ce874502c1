import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { qemuArch, runChecked, XamalError, type Arch, type Command, type Executor } from '../core/index.ts';

/**
 * Foreign-arch builds run under qemu-user through binfmt_misc with the F flag (the interpreter is
 * opened at registration, so images need no qemu inside). Debian bookworm's qemu 7.2 crashes OTP's
 * JIT (FACTS.md#emulation), so xamal uses trixie's statically linked qemu-user (10.x), fetched as a .deb from
 * the Debian mirror and kept in the cache directory.
 */
export const QEMU_SUITE = 'trixie';

/** ELF magic and mask per arch, as qemu's qemu-binfmt-conf.sh registers them. */
const ELF_MATCH: Partial<Record<Arch, { magic: string; mask: string }>> = {
  aarch64: {
    magic: '\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00',
    mask: '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff',
  },
  armv7l: {
    magic: '\\x7fELF\\x01\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x28\\x00',
    mask: '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff',
  },
  riscv64: {
    magic: '\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xf3\\x00',
    mask: '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff',
  },
  x86_64: {
    magic: '\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x3e\\x00',
    mask: '\\xff\\xff\\xff\\xff\\xff\\xfe\\xfe\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff',
  },
};

const BINFMT = '/proc/sys/fs/binfmt_misc';

/** Pure: the line written to binfmt_misc's `register` for an arch and interpreter. */
export function binfmtRegistration(arch: Arch, interpreter: string): { name: string; line: string } {
  const m = ELF_MATCH[arch];
  if (!m) throw new XamalError('unsupported', `no binfmt rule for ${arch}`);
  const name = `qemu-${qemuArch(arch)}`;
  return { name, line: `:${name}:M::${m.magic}:${m.mask}:${interpreter}:PF` };
}

export interface EmulationDeps {
  arch: Arch;
  hostArch: Arch;
  cacheDir: string;
  mirror?: string;
  exec: Executor;
  say: (line: string) => void;
}

/** A setup command, as data (downloads get ten minutes). */
const setupCommand = (argv: string[], label: string, cwd?: string): Command => ({ argv, label, timeoutMs: 600_000, ...(cwd ? { cwd } : {}) });

/** Downloads and unpacks trixie's qemu-user once; returns the unpacked root. */
async function qemuRoot(d: EmulationDeps): Promise<string> {
  const base = join(d.cacheDir, 'qemu', QEMU_SUITE);
  const root = join(base, 'root');
  if (existsSync(join(root, 'usr/bin', `qemu-${qemuArch(d.arch)}`))) return root;
  d.say(`emulation: fetching qemu-user from Debian ${QEMU_SUITE}`);
  const apt = join(base, 'apt');
  for (const p of ['lists/partial', 'cache/archives/partial', 'parts', 'dl']) await mkdir(join(apt, p), { recursive: true });
  const mirror = d.mirror ?? 'http://deb.debian.org/debian';
  await writeFile(join(apt, 'sources.list'), `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror} ${QEMU_SUITE} main\n`);
  const opts = [
    '-o', `Dir::Etc::SourceList=${join(apt, 'sources.list')}`,
    '-o', `Dir::Etc::SourceParts=${join(apt, 'parts')}`,
    '-o', `Dir::State::Lists=${join(apt, 'lists')}`,
    '-o', `Dir::Cache=${join(apt, 'cache')}`,
    '-o', 'Debug::NoLocking=true',
    '-o', 'APT::Sandbox::User=root',
  ];
  await runChecked(d.exec, setupCommand(['apt-get', ...opts, 'update'], `apt-get update (${QEMU_SUITE})`));
  const dl = join(apt, 'dl');
  await runChecked(d.exec, setupCommand(['apt-get', ...opts, 'download', 'qemu-user'], 'apt-get download qemu-user', dl));
  const deb = readdirSync(dl).find((f) => f.startsWith('qemu-user_') && f.endsWith('.deb'));
  if (!deb) throw new XamalError('external', 'qemu-user .deb not found after download');
  const tmp = `${root}.${process.pid}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await runChecked(d.exec, setupCommand(['dpkg-deb', '-x', join(dl, deb), tmp], 'unpack qemu-user'));
  await rm(root, { recursive: true, force: true });
  await rename(tmp, root);
  await rm(dl, { recursive: true, force: true });
  return root;
}

/** Makes `arch` binaries runnable on this machine (idempotent). Needs root: binfmt is machine-wide. */
export async function ensureEmulation(d: EmulationDeps): Promise<void> {
  if (d.arch === d.hostArch) return;
  const root = await qemuRoot(d);
  const interpreter = join(root, 'usr/libexec/qemu-binfmt', `${qemuArch(d.arch)}-binfmt-P`);
  if (!existsSync(join(BINFMT, 'register'))) {
    await runChecked(d.exec, setupCommand(['mount', '-t', 'binfmt_misc', 'binfmt_misc', BINFMT], 'mount binfmt_misc'));
  }
  const { name, line } = binfmtRegistration(d.arch, interpreter);
  const entry = join(BINFMT, name);
  if (existsSync(entry)) {
    const text = await readFile(entry, 'utf8');
    const current = /^interpreter (.*)$/m.exec(text)?.[1] ?? '';
    // Ours, or another xamal checkout's (same trixie qemu, another cache directory).
    const ours = current === interpreter || current.endsWith(`/qemu/${QEMU_SUITE}/root/usr/libexec/qemu-binfmt/${qemuArch(d.arch)}-binfmt-P`);
    if (ours && /^enabled/m.test(text) && /^flags:.*F/m.test(text)) return;
    if (!ours) {
      throw new XamalError(
        'conflict',
        `binfmt handler ${name} is registered by something else (interpreter ${current || 'unknown'}); xamal needs trixie's static qemu (bookworm's qemu 7.2 crashes OTP's JIT). Remove it with: echo -1 > ${entry}`,
      );
    }
    await writeFile(entry, '-1');
  }
  d.say(`emulation: registering ${name} -> ${interpreter}`);
  await writeFile(join(BINFMT, 'register'), line);
}
