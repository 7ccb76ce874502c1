import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { toShellLine, type Command } from '../../core/index.ts';

/**
 * Test hosts: Debian machines booted with real systemd under systemd-nspawn, each in its own network
 * namespace on a private bridge, running sshd and Caddy. Everything here is pure: names, addresses,
 * directories and the commands that create and remove them, as data.
 */

export const HOST_SUITES = ['bullseye', 'bookworm', 'trixie'] as const;
export type HostSuite = (typeof HOST_SUITES)[number];

export const SUITE_RELEASE: Record<HostSuite, string> = { bullseye: '11', bookworm: '12', trixie: '13' };

/** Bump when the rootfs recipe changes in a way that must invalidate cached host roots. */
export const HOST_RECIPE_VERSION = 1;

/** The user deployers log in as (sudo without a password for the few root steps). */
export const DEPLOY_USER = { name: 'deploy', uid: 1000, gid: 1000, home: '/home/deploy' } as const;

/** Debian ships Caddy from 12 on; Debian 11 gets this machine's binary copied in (see rootfs.ts). */
export function suiteHasCaddyPackage(suite: HostSuite): boolean {
  return suite !== 'bullseye';
}

/** Packages on top of minbase: systemd as PID 1, sshd, curl, sudo, Caddy, and tools a deploy uses. */
export function hostPackages(suite: HostSuite): string[] {
  return [
    'systemd',
    'systemd-sysv',
    'dbus',
    'openssh-server',
    'curl',
    'ca-certificates',
    'sudo',
    'iproute2',
    'procps',
    ...(suiteHasCaddyPackage(suite) ? ['caddy'] : []),
  ];
}

/** Units a test host must not start: consoles (no terminal), timers, and checks meant for real disks. */
export const MASKED_UNITS = [
  'console-getty.service',
  'getty@.service',
  'apt-daily.timer',
  'apt-daily-upgrade.timer',
  'dpkg-db-backup.timer',
  'e2scrub_all.timer',
  'e2scrub_reap.service',
  'fstrim.timer',
  'systemd-pstore.service',
];

/** sshd settings for every host: key-only logins, its own ed25519 host key, many parallel starts. */
export const SSHD_CONFIG = [
  'HostKey /etc/ssh/ssh_host_ed25519_key',
  'PasswordAuthentication no',
  'KbdInteractiveAuthentication no',
  'PermitRootLogin prohibit-password',
  'MaxStartups 100:30:200',
  'MaxSessions 100',
  'UseDNS no',
  '',
].join('\n');

export interface HostRootfsPlan {
  suite: HostSuite;
  packages: string[];
  key: string;
  /** Directory name under `<cache>/hosts/`: the read-only lower layer every host of this suite boots from. */
  dirName: string;
  debootstrap: (dir: string) => Command;
  /** Run inside the new root with chroot (native arch only). */
  chrootSteps: (dir: string) => Command[];
}

/** `caddyVersion` is this machine's Caddy package version: Debian 11 roots carry its binary. */
export function hostRootfsPlan(suite: HostSuite, mirror: string, caddyVersion: string): HostRootfsPlan {
  const packages = hostPackages(suite);
  const key = createHash('sha256')
    .update(JSON.stringify({ v: HOST_RECIPE_VERSION, suite, packages, masked: MASKED_UNITS, sshd: SSHD_CONFIG, user: DEPLOY_USER, caddy: suiteHasCaddyPackage(suite) ? 'package' : caddyVersion }))
    .digest('hex')
    .slice(0, 16);
  const inRoot = (dir: string, argv: string[], label: string): Command => ({ argv: ['chroot', dir, ...argv], label, timeoutMs: 120_000 });
  return {
    suite,
    packages,
    key,
    dirName: `${suite}-x86_64-host-${key}`,
    debootstrap: (dir) => ({
      argv: ['debootstrap', '--variant=minbase', `--include=${packages.join(',')}`, suite, dir, mirror],
      label: `debootstrap ${suite} host`,
      timeoutMs: 900_000,
    }),
    chrootSteps: (dir) => [
      ...(suiteHasCaddyPackage(suite) ? [] : [inRoot(dir, ['useradd', '--system', '--user-group', '--home-dir', '/var/lib/caddy', '--create-home', '--shell', '/usr/sbin/nologin', 'caddy'], 'add caddy user')]),
      inRoot(dir, ['useradd', '--create-home', '--uid', String(DEPLOY_USER.uid), '--shell', '/bin/bash', DEPLOY_USER.name], 'add deploy user'),
      inRoot(dir, ['systemctl', 'mask', ...MASKED_UNITS], 'mask units'),
      // Caddy driven through its admin API, config kept across restarts (`--resume`), never a Caddyfile.
      inRoot(dir, ['sh', '-c', 'systemctl disable caddy.service 2>/dev/null; systemctl enable caddy-api.service'], 'enable caddy-api'),
    ],
  };
}

/** Files written into the root after the chroot steps (paths relative to the root). */
export function rootfsFiles(): { path: string; content: string; mode: number }[] {
  return [
    { path: 'etc/ssh/sshd_config.d/xamal-lab.conf', content: SSHD_CONFIG, mode: 0o644 },
    { path: 'etc/sudoers.d/deploy', content: `${DEPLOY_USER.name} ALL=(ALL) NOPASSWD:ALL\n`, mode: 0o440 },
    // No DNS: a test host reaches nothing but its bridge.
    { path: 'etc/resolv.conf', content: '', mode: 0o644 },
  ];
}

/** Paths removed from the root: shared host keys (each host gets its own), caches, docs, heavy dotfiles. */
export const ROOTFS_REMOVE = [
  'etc/ssh/ssh_host_rsa_key',
  'etc/ssh/ssh_host_rsa_key.pub',
  'etc/ssh/ssh_host_ecdsa_key',
  'etc/ssh/ssh_host_ecdsa_key.pub',
  'etc/ssh/ssh_host_ed25519_key',
  'etc/ssh/ssh_host_ed25519_key.pub',
  'var/lib/apt/lists',
  'var/cache/apt',
  'usr/share/doc',
  'usr/share/man',
  'usr/share/locale',
  'home/deploy/.bashrc',
  'home/deploy/.profile',
  'home/deploy/.bash_logout',
];

// ---------------------------------------------------------------------------------------------

export interface LabHostPlan {
  index: number;
  name: string;
  suite: HostSuite;
  netns: string;
  /** veth end on the bridge (this machine's side). */
  vethHost: string;
  /** veth end moved into the namespace and renamed eth0. */
  vethGuest: string;
  address: string;
  dir: string;
  root: string;
  upper: string;
  work: string;
  log: string;
  pidFile: string;
  hostKey: string;
}

export interface LabPlan {
  id: string;
  dir: string;
  bridge: string;
  subnet: string;
  gateway: string;
  /** tmpfs holding every host's overlay upper and work dirs: nothing of a run survives it. */
  tmpfs: string;
  statePath: string;
  clientKey: string;
  knownHosts: string;
  hosts: LabHostPlan[];
}

export interface LabRequest {
  /** 4 lowercase hex characters: names every link, namespace and machine of this lab. */
  id: string;
  /** The third octet of 10.213.X.0/24. */
  octet: number;
  suites: HostSuite[];
  labsDir: string;
}

export const LAB_NET_PREFIX = '10.213';

export function planLab(req: LabRequest): LabPlan {
  if (!/^[0-9a-f]{4}$/.test(req.id)) throw new TypeError(`lab id must be 4 hex characters, got ${JSON.stringify(req.id)}`);
  if (req.suites.length < 1 || req.suites.length > 10) throw new RangeError(`a lab has 1 to 10 hosts, got ${req.suites.length}`);
  if (!Number.isInteger(req.octet) || req.octet < 1 || req.octet > 254) throw new RangeError(`octet must be 1..254, got ${req.octet}`);
  const dir = join(req.labsDir, req.id);
  const tmpfs = join(dir, 'tmp');
  const net = `${LAB_NET_PREFIX}.${req.octet}`;
  return {
    id: req.id,
    dir,
    bridge: `xb${req.id}`,
    subnet: `${net}.0/24`,
    gateway: `${net}.1`,
    tmpfs,
    statePath: join(dir, 'state.json'),
    clientKey: join(dir, 'id_ed25519'),
    knownHosts: join(dir, 'known_hosts'),
    hosts: req.suites.map((suite, i) => {
      const index = i + 1;
      const name = `xh${req.id}-${index}`;
      const hdir = join(dir, 'hosts', name);
      return {
        index,
        name,
        suite,
        netns: name,
        vethHost: `xv${req.id}h${index}`,
        vethGuest: `xv${req.id}g${index}`,
        address: `${net}.${10 + index}`,
        dir: hdir,
        root: join(hdir, 'root'),
        upper: join(tmpfs, name, 'upper'),
        work: join(tmpfs, name, 'work'),
        log: join(hdir, 'nspawn.log'),
        pidFile: join(hdir, 'nspawn.pid'),
        hostKey: join(hdir, 'ssh_host_ed25519_key'),
      };
    }),
  };
}

const ip = (argv: string[], label: string): Command => ({ argv: ['ip', ...argv], label, timeoutMs: 10_000 });

/** Creates the bridge (with this machine's address on it) and mounts the lab's tmpfs. */
export function labUpCommands(p: LabPlan): Command[] {
  return [
    ip(['link', 'add', p.bridge, 'type', 'bridge'], `bridge ${p.bridge}`),
    ip(['addr', 'add', `${p.gateway}/24`, 'dev', p.bridge], `address ${p.gateway}`),
    ip(['link', 'set', p.bridge, 'up'], `bridge ${p.bridge} up`),
    { argv: ['mount', '-t', 'tmpfs', '-o', 'mode=0755,size=4g', 'xamal-lab', p.tmpfs], label: 'mount lab tmpfs', timeoutMs: 10_000 },
  ];
}

/** One host's namespace, veth pair (no default route: the bridge is all it reaches) and overlay root. */
export function hostUpCommands(p: LabPlan, h: LabHostPlan, lower: string): Command[] {
  const inNs = (argv: string[], label: string) => ip(['-n', h.netns, ...argv], label);
  return [
    ip(['netns', 'add', h.netns], `netns ${h.netns}`),
    ip(['link', 'add', h.vethHost, 'type', 'veth', 'peer', 'name', h.vethGuest], `veth ${h.vethHost}`),
    ip(['link', 'set', h.vethGuest, 'netns', h.netns], `veth into ${h.netns}`),
    ip(['link', 'set', h.vethHost, 'master', p.bridge, 'up'], `veth ${h.vethHost} on ${p.bridge}`),
    inNs(['link', 'set', h.vethGuest, 'name', 'eth0'], 'rename eth0'),
    inNs(['addr', 'add', `${h.address}/24`, 'dev', 'eth0'], `address ${h.address}`),
    inNs(['link', 'set', 'eth0', 'up'], 'eth0 up'),
    inNs(['link', 'set', 'lo', 'up'], 'lo up'),
    {
      argv: ['mount', '-t', 'overlay', `xamal-${h.name}`, '-o', `lowerdir=${lower},upperdir=${h.upper},workdir=${h.work}`, h.root],
      label: `overlay root of ${h.name}`,
      timeoutMs: 10_000,
    },
  ];
}

/**
 * Boots the host: systemd as PID 1 inside nspawn, joined to its namespace. `tied`: the container
 * powers off when the process that started it dies (a crashed test leaves nothing running).
 */
export function nspawnCommand(h: LabHostPlan, tied: boolean, cgroups: readonly string[]): Command {
  return {
    argv: [
      // Into the host's own cgroups first: nspawn without a host systemd keeps the cgroup it starts
      // in (`--keep-unit`), and two containers sharing one fight over it (boots and poweroffs hang).
      'sh',
      '-c',
      'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 1; shift; n=$((n-1)); done; exec "$@"',
      'sh',
      String(cgroups.length),
      ...cgroups,
      ...(tied ? ['setpriv', '--pdeathsig', 'SIGTERM'] : []),
      'systemd-nspawn',
      '--quiet',
      `--directory=${h.root}`,
      `--machine=${h.name}`,
      `--network-namespace-path=/run/netns/${h.netns}`,
      '--register=no',
      '--keep-unit',
      '--link-journal=no',
      '--resolv-conf=off',
      '--timezone=off',
      '--console=passive',
      '--boot',
    ],
    label: `boot ${h.name}`,
  };
}

/** Where a host's cgroups go: one per mounted hierarchy that systemd uses (legacy `name=systemd`, unified). */
export function hostCgroups(h: Pick<LabHostPlan, 'name'>, hierarchies: readonly string[]): string[] {
  return hierarchies.map((root) => join(root, 'xamal-lab', h.name));
}

/** Per-host files written into the overlay before boot (paths relative to the root). */
export function hostFiles(h: LabHostPlan, hostKey: { private: string; public: string }, clientPublicKey: string): { path: string; content: string; mode: number; uid?: number; gid?: number }[] {
  const owner = { uid: DEPLOY_USER.uid, gid: DEPLOY_USER.gid };
  return [
    { path: 'etc/hostname', content: `${h.name}\n`, mode: 0o644 },
    { path: 'etc/hosts', content: `127.0.0.1 localhost\n::1 localhost ip6-localhost\n127.0.1.1 ${h.name}\n`, mode: 0o644 },
    { path: 'etc/ssh/ssh_host_ed25519_key', content: hostKey.private, mode: 0o600 },
    { path: 'etc/ssh/ssh_host_ed25519_key.pub', content: hostKey.public, mode: 0o644 },
    { path: 'root/.ssh/authorized_keys', content: clientPublicKey, mode: 0o600 },
    { path: `${DEPLOY_USER.home.slice(1)}/.ssh/authorized_keys`, content: clientPublicKey, mode: 0o600, ...owner },
  ];
}

/** Teardown, each step on its own (a missing piece is not an error): links, namespaces, mounts. */
export function hostDownCommands(h: LabHostPlan): Command[] {
  return [
    { argv: ['umount', h.root], label: `unmount ${h.name}`, timeoutMs: 10_000 },
    ip(['link', 'del', h.vethHost], `remove ${h.vethHost}`),
    ip(['netns', 'del', h.netns], `remove netns ${h.netns}`),
  ];
}

export function labDownCommands(p: LabPlan): Command[] {
  return [{ argv: ['umount', p.tmpfs], label: 'unmount lab tmpfs', timeoutMs: 10_000 }, ip(['link', 'del', p.bridge], `remove ${p.bridge}`)];
}

/** The firewall rule added only when FORWARD drops by default (Docker's br_netfilter setups). */
export function forwardRule(p: LabPlan, op: '-I' | '-D'): Command {
  return { argv: ['iptables', op, 'FORWARD', '-i', p.bridge, '-o', p.bridge, '-j', 'ACCEPT'], label: `${op === '-I' ? 'allow' : 'remove'} forwarding on ${p.bridge}`, timeoutMs: 10_000 };
}

/** Runs `cmd` on this machine inside a host's network namespace (its loopback: Caddy admin, upstreams). */
export function inNetns(h: Pick<LabHostPlan, 'netns'>, cmd: Command): Command {
  return { ...cmd, argv: ['ip', 'netns', 'exec', h.netns, ...cmd.argv] };
}

export interface SshTarget {
  address: string;
  user: string;
}

/** OpenSSH options the fixture itself uses: its key only, the lab's known_hosts, strict checking, no prompts. */
export function sshOptions(p: Pick<LabPlan, 'clientKey' | 'knownHosts'>): string[] {
  return [
    '-F', '/dev/null',
    '-i', p.clientKey,
    '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${p.knownHosts}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=3',
    '-o', 'LogLevel=ERROR',
  ];
}

/** `cmd` run on a host over OpenSSH, quoted in the one place that quotes (`toShellLine`). */
export function sshCommand(p: Pick<LabPlan, 'clientKey' | 'knownHosts'>, to: SshTarget, cmd: Command): Command {
  return {
    argv: ['ssh', ...sshOptions(p), `${to.user}@${to.address}`, '--', toShellLine(cmd, { reveal: true })],
    label: cmd.label ?? `ssh ${to.address}`,
    ...(cmd.timeoutMs !== undefined ? { timeoutMs: cmd.timeoutMs } : {}),
    ...(cmd.stdin !== undefined ? { stdin: cmd.stdin } : {}),
  };
}
