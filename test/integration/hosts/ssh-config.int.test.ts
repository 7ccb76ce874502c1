import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { appLayout } from '../../../deployer/commands/layout.ts';
import { unitInstance } from '../../../deployer/commands/systemd.ts';
import { xamalCli } from '../../../testkit/cli.ts';
import { cliBaseEnv } from '../../../testkit/config.ts';
import { labDeps, labProject, upLab, type Lab, type LabHost } from '../../../testkit/hosts/index.ts';
import { cliEntry } from '../../../testkit/integration.ts';

/**
 * Issue 21: a deploy.yml naming its host only by a ~/.ssh/config alias (HostName, User, Port,
 * IdentityFile, UserKnownHostsFile from that file, HOME a directory of this test), a second host
 * (Debian 12) reached through the first by the file's ProxyJump, and `xamal app
 * logs` --grep/--since/-f against a slot unit's journal on a Debian 11 host (the oldest journalctl
 * and grep the logs commands must work with). The unit is a small shell loop standing in for a
 * release: what is tested is how xamal reaches the host and reads the journal, not a deploy.
 */

const SERVICE = 'logsdemo';
const layout = appLayout(SERVICE, undefined);
const UNIT = unitInstance(layout.app, 'web', 'blue');
const SAY = '/run/xamal-logsdemo-say';

// Prints three request lines, then whatever the test drops into SAY, as it comes.
const UNIT_FILE = `[Unit]
Description=xamal ssh-config test stand-in
[Service]
ExecStart=/bin/sh -c 'echo "GET /alpha 200"; echo "GET /beta 500 ERRMARK"; echo "GET /gamma 200"; while :; do if [ -f ${SAY} ]; then cat ${SAY}; rm -f ${SAY}; fi; sleep 0.2; done'
`;

describe('~/.ssh/config aliases (and ProxyJump), and app logs on a Debian 11 host', () => {
  let lab: Lab;
  let host: LabHost;
  let inner: LabHost;
  let tmp: string;
  let project: string;
  let home: string;
  const xamal = (args: string[]) => xamalCli(project, args, { HOME: home }, cliEntry());

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-sshcfg-'));
    lab = await upLab(labDeps(), { suites: ['bullseye', 'bookworm'] });
    [host, inner] = lab.hosts as [LabHost, LabHost];
    home = join(tmp, 'home');
    await mkdir(join(home, '.ssh'), { recursive: true, mode: 0o700 });
    await copyFile(lab.privateKeyPath, join(home, '.ssh', 'lab_key'));
    await copyFile(lab.knownHostsPath, join(home, '.ssh', 'lab_known_hosts'));
    // Only the file knows where "labbox" is, who logs in, with which key and against which known_hosts.
    await writeFile(
      join(home, '.ssh', 'config'),
      `Host labbox\n  HostName ${host.address}\n  User ${host.user}\n  Port ${host.port}\n  IdentityFile ~/.ssh/lab_key\n  UserKnownHostsFile ~/.ssh/lab_known_hosts\n\n` +
        // Reached only through labbox (ProxyJump, itself an alias of this file).
        `Host innerbox\n  HostName ${inner.address}\n  User ${inner.user}\n  ProxyJump labbox\n  IdentityFile ~/.ssh/lab_key\n  UserKnownHostsFile ~/.ssh/lab_known_hosts\n\n` +
        `Host *\n  User nobody-here\n`,
    );
    project = join(tmp, 'project');
    await labProject(project, { 'config/deploy.yml': stringify({ service: SERVICE, servers: { web: ['labbox'] }, ssh: { connect_timeout: 5, log_level: 'info' } }) });
    // The stand-in slot: blue is live, its unit running.
    const setup = await lab.ssh(
      host,
      {
        argv: ['sh', '-c', 'mkdir -p "$1" && echo blue > "$1/web.live" && printf "%s" "$3" > "/etc/systemd/system/$2" && systemctl daemon-reload && systemctl start "$4"', 'sh', layout.slots, UNIT.replace('@blue', '@'), UNIT_FILE, UNIT],
      },
      'root',
    );
    expect(setup.code, setup.stderr).toBe(0);
  }, 300_000);

  afterAll(async () => {
    await lab?.down();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('reaches a host named only by its alias, as the User, with the key and known_hosts the file names (log_level info says so)', async () => {
    const r = await xamal(['server', 'exec', '--', 'id', '-un']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toEqual(['labbox:', `  ${host.user}`]);
    // ssh.log_level info: one line per connection, naming where the alias led.
    expect(r.stderr).toContain(`ssh: connected to labbox as ${host.user}@${host.address}:${host.port}`);
    const details = await xamal(['app', 'details']);
    expect(details.code, details.stderr).toBe(0);
    expect(details.stdout).toContain('web: live blue');
  });

  it('reaches a host through the ProxyJump the file gives it (the jump host an alias too)', async () => {
    const jumped = join(tmp, 'jumped');
    await labProject(jumped, { 'config/deploy.yml': stringify({ service: SERVICE, servers: { web: ['innerbox'] }, ssh: { connect_timeout: 5, log_level: 'info' } }) });
    const r = await xamalCli(jumped, ['server', 'exec', '--', 'echo $SSH_CONNECTION'], { HOME: home }, cliEntry());
    expect(r.code, r.stderr).toBe(0);
    // sshd on innerbox saw the connection come from labbox.
    expect(r.stdout.trimEnd().split('\n')[1]!.trim().split(' ')[0]).toBe(host.address);
    expect(r.stderr).toContain(`ssh: connected to innerbox as ${inner.user}@${inner.address}:${inner.port} through ${host.user}@${host.address}:${host.port}`);
  });

  it('app logs --grep X --since 10m shows only the matching lines', async () => {
    const r = await xamal(['app', 'logs', '--grep', 'ERRMARK', '--since', '10m']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toEqual(['labbox:', '  GET /beta 500 ERRMARK']);
    const none = await xamal(['app', 'logs', '-g', 'no-such-line-anywhere', '--since', '10m']);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).not.toContain('GET /');
  });

  it('app logs -f shows a line logged after it started, and ends cleanly on SIGINT, stopping journalctl on the host', { timeout: 60_000 }, async () => {
    const child = spawn(process.execPath, [cliEntry(), 'app', 'logs', '-f'], { cwd: project, env: { ...cliBaseEnv(), HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const until = async (what: () => boolean, ms: number, label: string) => {
      const end = Date.now() + ms;
      while (!what()) {
        if (Date.now() > end) throw new Error(`${label}: not within ${ms} ms; stdout: ${out}\nstderr: ${err}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      await until(() => out.includes('GET /gamma 200'), 20_000, 'the last lines before following');
      const marker = `live-line-${Date.now()}`;
      const said = await lab.ssh(host, { argv: ['sh', '-c', 'printf "%s\\n" "$1" > "$2.tmp" && mv "$2.tmp" "$2"', 'sh', marker, SAY] }, 'root');
      expect(said.code, said.stderr).toBe(0);
      await until(() => out.includes(marker), 15_000, 'the line logged after the start');
      const t0 = Date.now();
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      child.kill('SIGKILL');
    }
    // One host: lines come unprefixed.
    expect(out.split('\n').filter(Boolean).every((l) => !l.startsWith('labbox: '))).toBe(true);
    // Nothing keeps reading the journal on the host once xamal is gone.
    let left = '';
    for (let i = 0; i < 30; i++) {
      left = (await lab.ssh(host, { argv: ['sh', '-c', 'ps -eo pid,args | grep "[j]ournalctl" || true'] }, 'root')).stdout.trim();
      if (!left) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(left).toBe('');
  });
});
