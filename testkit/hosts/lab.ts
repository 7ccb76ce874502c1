import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, readlink, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { runChecked, XamalError, type Command, type CommandResult, type Executor } from '../../core/index.ts';
import { withFileLock } from '../../localservices/fs-lock.ts';
import { isAlive, processStartTime, sleep, terminate, writePidRecord, type PidRecord } from '../../localservices/process.ts';
import {
  DEPLOY_USER,
  forwardRule,
  hostDownCommands,
  hostFiles,
  hostCgroups,
  hostUpCommands,
  inNetns,
  LAB_NET_PREFIX,
  labDownCommands,
  labUpCommands,
  nspawnCommand,
  planLab,
  sshCommand,
  SUITE_RELEASE,
  type HostSuite,
  type LabHostPlan,
  type LabPlan,
} from './plan.ts';
import { ensureHostRootfs, type RootfsDeps } from './rootfs.ts';

/** A booted test host: what a deployer needs to reach it, and the fingerprint it must verify. */
export interface LabHost {
  name: string;
  suite: HostSuite;
  /** Debian release number: '11', '12', '13'. */
  release: string;
  address: string;
  port: number;
  user: string;
  netns: string;
  /** `SHA256:<base64>` as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** `ssh-ed25519 AAAA…` */
  hostPublicKey: string;
}

export interface Lab {
  id: string;
  /** This machine's address on the lab bridge: what hosts reach it at (e.g. a farm API listening there). */
  gateway: string;
  hosts: LabHost[];
  /** The client key every host's `deploy` and `root` accept. */
  privateKeyPath: string;
  /** known_hosts with every host's key, for clients that verify (all of them should). */
  knownHostsPath: string;
  /** Runs a command on a host over OpenSSH (as `deploy` unless `user` is given). */
  ssh(host: LabHost, cmd: Command, user?: string): Promise<CommandResult>;
  /** Runs a command on this machine inside the host's network namespace (its loopback). */
  netns(host: LabHost, cmd: Command): Promise<CommandResult>;
  /**
   * Makes `names` resolve to the host's loopback for commands run with `netns` (`ip netns exec`
   * bind-mounts /etc/netns/<ns>/hosts over /etc/hosts): clients that take SNI from the URL (wrk).
   */
  aliasInNetns(host: LabHost, names: string[]): Promise<void>;
  /** Powers one host off (clean systemd shutdown) and waits for it; `down` still cleans up after it. */
  poweroff(host: LabHost): Promise<void>;
  down(): Promise<void>;
}

export interface LabDeps extends RootfsDeps {
  /** `<runDir>/labs`: one directory per lab, with its state file. */
  labsDir: string;
}

export interface LabOptions {
  /** One suite per host (1–10 hosts). */
  suites: HostSuite[];
  /** Power the hosts off when this process dies (default true: a crashed test leaves nothing running). */
  tied?: boolean;
  /** How long a host may take to reach `running` (default 60 s). */
  bootTimeoutMs?: number;
  /**
   * Most CPU each host may use, in cores (e.g. 0.3), like a small VM of its own: hosts then do not
   * compete for this machine's cores beyond their share (benchmarks of fan-out). Default: no cap.
   */
  cpus?: number;
}

/** What a lab created, written before each step so a crashed run can be undone by `reapStaleLabs`. */
interface LabState {
  plan: LabPlan;
  owner: PidRecord;
  forwardRule: boolean;
  nspawn: Record<string, PidRecord>;
  cgroups: Record<string, string[]>;
  /** Each container's PID 1 (nspawn's child): killing it ends the container's whole PID namespace. */
  leaders: Record<string, PidRecord>;
}

async function saveState(s: LabState): Promise<void> {
  await mkdir(dirname(s.plan.statePath), { recursive: true });
  await writeFile(`${s.plan.statePath}.tmp`, JSON.stringify(s, null, 2));
  await rename(`${s.plan.statePath}.tmp`, s.plan.statePath);
}

/** Octets of 10.213.X.0/24 already on an interface of this machine. */
async function usedOctets(exec: Executor): Promise<Set<number>> {
  const r = await runChecked(exec, { argv: ['ip', '-4', '-o', 'addr', 'show'], label: 'list addresses' });
  const used = new Set<number>();
  const re = new RegExp(`inet ${LAB_NET_PREFIX.replace('.', '\\.')}\\.(\\d+)\\.`, 'g');
  for (const m of r.stdout.matchAll(re)) used.add(Number(m[1]));
  return used;
}

/** FORWARD drops by default (Docker with br_netfilter): host-to-host traffic needs a rule. */
async function forwardDrops(exec: Executor): Promise<boolean> {
  const r = await exec.run({ argv: ['iptables', '-S', 'FORWARD'], label: 'read FORWARD policy', timeoutMs: 10_000 });
  return r.code === 0 && /^-P FORWARD DROP/m.test(r.stdout);
}

/** `SHA256:<base64 without padding>` of an OpenSSH public key line, as `ssh-keygen -lf` prints it. */
export function publicKeyFingerprint(line: string): string {
  const blob = line.trim().split(/\s+/)[1];
  if (!blob) throw new TypeError('not an OpenSSH public key line');
  return `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

async function keygen(exec: Executor, path: string, comment: string): Promise<{ private: string; public: string }> {
  await runChecked(exec, { argv: ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path], label: 'ssh-keygen' });
  return { private: await readFile(path, 'utf8'), public: await readFile(`${path}.pub`, 'utf8') };
}

/** cgroup hierarchies systemd uses on this machine: the unified one alone, or `name=systemd` + unified (hybrid). */
function cgroupHierarchies(): string[] {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return ['/sys/fs/cgroup'];
  return ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified'].filter((d) => existsSync(join(d, 'cgroup.procs')));
}

/**
 * The cgroup that caps a host's CPU at `cpus` cores (100 ms periods): the v1 `cpu` hierarchy's
 * `cfs_quota_us`, or cgroup v2's `cpu.max` (then the cpu controller is enabled for xamal-lab).
 */
async function cpuCapCgroup(name: string, cpus: number): Promise<string> {
  if (!(cpus > 0 && cpus <= 64)) throw new XamalError('validation', `cpus: expected a number of cores above 0, got ${cpus}`);
  const quota = String(Math.max(1_000, Math.round(cpus * 100_000)));
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    const parent = '/sys/fs/cgroup/xamal-lab';
    await mkdir(join(parent, name), { recursive: true });
    await writeFile('/sys/fs/cgroup/cgroup.subtree_control', '+cpu').catch(() => undefined);
    await writeFile(join(parent, 'cgroup.subtree_control'), '+cpu');
    await writeFile(join(parent, name, 'cpu.max'), `${quota} 100000`);
    return join(parent, name);
  }
  const dir = join('/sys/fs/cgroup/cpu', 'xamal-lab', name);
  if (!existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')) throw new XamalError('unsupported', 'cpus: this machine has no cgroup cpu controller (neither /sys/fs/cgroup/cpu nor cgroup v2 cpu.max)');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'cpu.cfs_period_us'), '100000');
  await writeFile(join(dir, 'cpu.cfs_quota_us'), quota);
  return dir;
}

/** Removes a cgroup and everything the guest's systemd created under it, deepest first. */
async function removeCgroup(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await removeCgroup(join(dir, e.name));
  await rmdir(dir).catch(() => undefined);
}

function startNspawn(h: LabHostPlan, tied: boolean, cgroups: string[]): PidRecord {
  const cmd = nspawnCommand(h, tied, cgroups);
  const out = openSync(h.log, 'a');
  try {
    const [file, ...args] = cmd.argv as string[];
    const child = spawn(file!, args, { stdio: ['ignore', out, out], detached: !tied });
    if (!child.pid) throw new XamalError('external', `could not start systemd-nspawn for ${h.name}`);
    child.on('error', () => {});
    if (!tied) child.unref();
    // setpriv execs nspawn in place: the pid is nspawn's.
    return { pid: child.pid, startTime: processStartTime(child.pid) ?? '', argv: cmd.argv as string[] };
  } finally {
    closeSync(out);
  }
}

/** nspawn's child: the container's PID 1 (appears a few ms after nspawn starts). */
async function containerLeader(nspawn: PidRecord): Promise<PidRecord | undefined> {
  for (let i = 0; i < 100 && isAlive(nspawn); i++) {
    const children = await readFile(`/proc/${nspawn.pid}/task/${nspawn.pid}/children`, 'utf8').catch(() => '');
    const pid = Number(children.trim().split(/\s+/)[0]);
    const startTime = pid > 1 ? processStartTime(pid) : undefined;
    if (startTime) return { pid, startTime, argv: [] };
    await sleep(20);
  }
  return undefined;
}

/** Waits for sshd, then for systemd to finish booting; `running` or an error with the failed units. */
async function waitRunning(run: (cmd: Command) => Promise<CommandResult>, h: LabHostPlan, nspawn: PidRecord, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!isAlive(nspawn)) {
      const log = await readFile(h.log, 'utf8').catch(() => '');
      throw new XamalError('external', `test host ${h.name} exited while booting:\n${log.trim().split('\n').slice(-10).join('\n')}`);
    }
    const r = await run({ argv: ['systemctl', 'is-system-running', '--wait'], label: `is ${h.name} running`, timeoutMs: Math.max(1_000, deadline - Date.now()) }).catch((e: Error) => ({ code: 255, stdout: '', stderr: e.message }));
    const state = r.stdout.trim();
    if (state === 'running') return;
    if (r.code !== 255 && state !== '' && state !== 'starting' && state !== 'initializing') {
      const failed = await run({ argv: ['systemctl', '--failed', '--no-legend', '--plain'], label: 'failed units' }).catch(() => undefined);
      throw new XamalError('external', `test host ${h.name} booted ${state}: ${failed?.stdout.trim() || 'no failed unit listed'}`);
    }
    last = r.stderr.trim();
    await sleep(100);
  }
  const jobs = await run({ argv: ['sh', '-c', 'systemctl is-system-running; systemctl list-jobs --no-legend --plain | head -20'], label: 'pending jobs', timeoutMs: 5_000 }).catch(() => undefined);
  throw new XamalError('unavailable', `test host ${h.name} not running after ${timeoutMs} ms${last ? ` (${last})` : ''}${jobs ? `; state and pending jobs:\n${jobs.stdout.trim()}` : ''}`);
}

/** The processes of a container (those in the PID namespace of its init), for diagnostics. */
async function guestProcesses(leader: number): Promise<string> {
  const ns = await readlink(`/proc/${leader}/ns/pid`).catch(() => '');
  const out: string[] = [];
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid) || !ns || (await readlink(`/proc/${pid}/ns/pid`).catch(() => '')) !== ns) continue;
    const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ').trim();
    out.push(cmd.slice(0, 80));
  }
  return out.join(' | ') || 'none';
}

/** Best-effort teardown of everything a state file records, in reverse order; returns what failed. */
async function teardown(exec: Executor, s: LabState): Promise<string[]> {
  const problems: string[] = [];
  await Promise.all(
    Object.entries(s.nspawn).map(async ([name, rec]) => {
      // SIGTERM to nspawn = clean poweroff of the guest's systemd. A container whose nspawn is gone
      // (killed) keeps running: its PID 1 is killed, which ends every process in its namespace.
      const how = await terminate(rec, 15_000, async () => {
        // Still running after the grace period: say what the guest is stuck on before it is killed.
        const leader = s.leaders[name];
        if (leader) problems.push(`${name} stuck powering off: ${await guestProcesses(leader.pid)}`);
      });
      const leader = s.leaders[name];
      if (leader && isAlive(leader)) {
        try {
          process.kill(leader.pid, 'SIGKILL');
        } catch {
          /* gone meanwhile */
        }
        for (let i = 0; i < 100 && isAlive(leader); i++) await sleep(50);
        if (isAlive(leader)) problems.push(`${name}: container init ${leader.pid} survived SIGKILL`);
      }
      if (how === 'killed') problems.push(`${name}: did not power off in 15 s, killed`);
    }),
  );
  for (const h of s.plan.hosts) {
    for (const cmd of hostDownCommands(h)) await exec.run(cmd).catch(() => undefined);
    await rm(join('/etc/netns', h.netns), { recursive: true, force: true });
    for (const dir of s.cgroups?.[h.name] ?? []) {
      await removeCgroup(dir);
      await rmdir(dirname(dir)).catch(() => undefined); // the shared parent, once no lab uses it
    }
  }
  if (s.forwardRule) await exec.run(forwardRule(s.plan, '-D')).catch(() => undefined);
  for (const cmd of labDownCommands(s.plan)) await exec.run(cmd).catch(() => undefined);
  // Anything still there is a leak: report it.
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  for (const h of s.plan.hosts) if (mounts.includes(` ${h.root} `)) problems.push(`${h.root} still mounted`);
  if (mounts.includes(` ${s.plan.tmpfs} `)) problems.push(`${s.plan.tmpfs} still mounted`);
  else await rm(s.plan.dir, { recursive: true, force: true });
  return problems;
}

/** Tears down labs whose owner process is gone (a crashed run). */
export async function reapStaleLabs(deps: Pick<LabDeps, 'exec' | 'labsDir'>, all = false): Promise<string[]> {
  const reaped: string[] = [];
  for (const id of await readdir(deps.labsDir).catch(() => [] as string[])) {
    const path = join(deps.labsDir, id, 'state.json');
    let s: LabState;
    try {
      s = JSON.parse(await readFile(path, 'utf8')) as LabState;
    } catch {
      continue;
    }
    if (!all && isAlive(s.owner)) continue;
    await teardown(deps.exec, s);
    reaped.push(id);
  }
  return reaped;
}

/**
 * Boots test hosts in parallel: network namespace + veth on a private bridge, overlay of the cached
 * root on a tmpfs, per-host ed25519 host key and the lab's client key, systemd via nspawn. Resolves
 * once every host's systemd reports `running`. On failure everything created is torn down.
 */
export async function upLab(deps: LabDeps, opts: LabOptions): Promise<Lab> {
  const tied = opts.tied ?? true;
  await reapStaleLabs(deps);
  const lowers = new Map<HostSuite, string>();
  for (const suite of new Set(opts.suites)) lowers.set(suite, await ensureHostRootfs(deps, suite));

  const owner: PidRecord = { pid: process.pid, startTime: processStartTime(process.pid) ?? '', argv: [] };
  // Address allocation and bridge creation under one lock: two labs never share a subnet.
  const state = await withFileLock(join(deps.labsDir, 'allocate.lock'), 'test host network allocation', async () => {
    const used = await usedOctets(deps.exec);
    const octet = Array.from({ length: 254 }, (_, i) => i + 1).find((o) => !used.has(o));
    if (octet === undefined) throw new XamalError('unavailable', `no free ${LAB_NET_PREFIX}.X.0/24 subnet for a test lab`);
    const plan = planLab({ id: randomBytes(2).toString('hex'), octet, suites: opts.suites, labsDir: deps.labsDir });
    const s: LabState = { plan, owner, forwardRule: false, nspawn: {}, cgroups: {}, leaders: {} };
    await mkdir(plan.tmpfs, { recursive: true });
    await saveState(s);
    for (const cmd of labUpCommands(plan)) await runChecked(deps.exec, cmd);
    return s;
  });
  const plan = state.plan;
  try {
    if (await forwardDrops(deps.exec)) {
      state.forwardRule = true;
      await saveState(state);
      await runChecked(deps.exec, forwardRule(plan, '-I'));
    }
    const client = await keygen(deps.exec, plan.clientKey, `xamal-lab-${plan.id}`);
    const keys = new Map<string, { private: string; public: string }>();
    await Promise.all(
      plan.hosts.map(async (h) => {
        await mkdir(h.root, { recursive: true });
        await mkdir(h.upper, { recursive: true });
        await mkdir(h.work, { recursive: true });
        keys.set(h.name, await keygen(deps.exec, h.hostKey, h.name));
        for (const cmd of hostUpCommands(plan, h, lowers.get(h.suite)!)) await runChecked(deps.exec, cmd);
        for (const f of hostFiles(h, keys.get(h.name)!, client.public)) {
          const path = join(h.root, f.path);
          await mkdir(dirname(path), { recursive: true });
          await writeFile(path, f.content);
          await chmod(path, f.mode);
          if (f.uid !== undefined) {
            await chown(dirname(path), f.uid, f.gid ?? f.uid);
            await chown(path, f.uid, f.gid ?? f.uid);
          }
        }
        await chmod(join(h.root, 'root/.ssh'), 0o700);
        await chmod(join(h.root, DEPLOY_USER.home.slice(1), '.ssh'), 0o700);
      }),
    );
    await writeFile(plan.knownHosts, plan.hosts.map((h) => `${h.address} ${keys.get(h.name)!.public.trim()}\n`).join(''));
    const hierarchies = cgroupHierarchies();
    for (const h of plan.hosts) {
      state.cgroups[h.name] = hostCgroups(h, hierarchies);
      await saveState(state);
      for (const dir of state.cgroups[h.name]!) await mkdir(dir, { recursive: true });
      if (opts.cpus !== undefined) {
        const cap = await cpuCapCgroup(h.name, opts.cpus);
        // On cgroup v2 the cap is the host's unified cgroup itself; on v1 one more hierarchy to join.
        if (!state.cgroups[h.name]!.includes(cap)) state.cgroups[h.name]!.push(cap);
        await saveState(state);
      }
      state.nspawn[h.name] = startNspawn(h, tied, state.cgroups[h.name]!);
      await writePidRecord(h.pidFile, state.nspawn[h.name]!);
    }
    await saveState(state);
    await Promise.all(
      plan.hosts.map(async (h) => {
        const leader = await containerLeader(state.nspawn[h.name]!);
        if (leader) state.leaders[h.name] = leader;
      }),
    );
    await saveState(state);

    const hosts: LabHost[] = plan.hosts.map((h) => {
      const pub = keys.get(h.name)!.public.trim();
      return { name: h.name, suite: h.suite, release: SUITE_RELEASE[h.suite], address: h.address, port: 22, user: DEPLOY_USER.name, netns: h.netns, hostKeyFingerprint: publicKeyFingerprint(pub), hostPublicKey: pub };
    });
    const ssh = (host: LabHost, cmd: Command, user = DEPLOY_USER.name) => deps.exec.run(sshCommand(plan, { address: host.address, user }, cmd));
    await Promise.all(plan.hosts.map((h, i) => waitRunning((cmd) => ssh(hosts[i]!, cmd), h, state.nspawn[h.name]!, opts.bootTimeoutMs ?? 60_000)));

    let downed = false;
    return {
      id: plan.id,
      gateway: plan.gateway,
      hosts,
      privateKeyPath: plan.clientKey,
      knownHostsPath: plan.knownHosts,
      ssh,
      netns: (host, cmd) => deps.exec.run(inNetns(host, cmd)),
      aliasInNetns: async (host, names) => {
        const dir = join('/etc/netns', host.netns);
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'hosts'), `127.0.0.1 localhost ${names.join(' ')}\n`);
      },
      poweroff: async (host) => {
        const rec = state.nspawn[host.name];
        if (rec) await terminate(rec, 20_000);
      },
      down: async () => {
        if (downed) return;
        downed = true;
        const problems = await teardown(deps.exec, state);
        if (problems.length) throw new XamalError('external', `test lab ${plan.id} teardown left: ${problems.join('; ')}`);
      },
    };
  } catch (err) {
    await teardown(deps.exec, state);
    throw err;
  }
}
