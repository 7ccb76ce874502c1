import { describe, expect, it } from 'vitest';
import { displayCommand, sensitive } from '../../../../core/index.ts';
import { hostCgroups, hostRootfsPlan, hostUpCommands, nspawnCommand, planLab, sshCommand } from '../../../../testkit/hosts/plan.ts';
import { publicKeyFingerprint } from '../../../../testkit/hosts/lab.ts';

const plan = () => planLab({ id: 'ab12', octet: 7, suites: ['bullseye', 'bookworm', 'trixie'], labsDir: '/run/x/labs' });

describe('test lab plan', () => {
  it('names every host, link and namespace after the lab id and gives each its own address on 10.213.X.0/24', () => {
    const p = plan();
    expect(p.bridge).toBe('xbab12');
    expect(p.gateway).toBe('10.213.7.1');
    expect(p.hosts.map((h) => [h.name, h.address, h.vethHost, h.suite])).toEqual([
      ['xhab12-1', '10.213.7.11', 'xvab12h1', 'bullseye'],
      ['xhab12-2', '10.213.7.12', 'xvab12h2', 'bookworm'],
      ['xhab12-3', '10.213.7.13', 'xvab12h3', 'trixie'],
    ]);
    // Linux interface names are at most 15 bytes.
    for (const h of p.hosts) expect(Math.max(h.vethHost.length, h.vethGuest.length, p.bridge.length)).toBeLessThanOrEqual(15);
  });

  it('refuses a bad lab id, host count or octet', () => {
    expect(() => planLab({ id: '../x', octet: 7, suites: ['bookworm'], labsDir: '/l' })).toThrow(/4 hex/);
    expect(() => planLab({ id: 'ab12', octet: 7, suites: [], labsDir: '/l' })).toThrow(/1 to 10/);
    expect(() => planLab({ id: 'ab12', octet: 7, suites: Array(11).fill('bookworm'), labsDir: '/l' })).toThrow(/1 to 10/);
    expect(() => planLab({ id: 'ab12', octet: 255, suites: ['bookworm'], labsDir: '/l' })).toThrow(/octet/);
  });

  it('puts the host in its namespace with only a bridge address (no default route) and an overlay root', () => {
    const p = plan();
    const lines = hostUpCommands(p, p.hosts[0]!, '/cache/root').map(displayCommand);
    expect(lines).toContain('ip -n xhab12-1 addr add 10.213.7.11/24 dev eth0');
    expect(lines.some((l) => / route /.test(l))).toBe(false);
    expect(lines.at(-1)).toBe(`mount -t overlay xamal-xhab12-1 -o lowerdir=/cache/root,upperdir=${p.hosts[0]!.upper},workdir=${p.hosts[0]!.work} ${p.hosts[0]!.root}`);
  });

  it('boots with systemd in the host namespace, in its own cgroups, powered off when its owner dies if tied', () => {
    const h = plan().hosts[1]!;
    const cgroups = hostCgroups(h, ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified']);
    expect(cgroups).toEqual(['/sys/fs/cgroup/systemd/xamal-lab/xhab12-2', '/sys/fs/cgroup/unified/xamal-lab/xhab12-2']);
    const argv = nspawnCommand(h, true, cgroups).argv as string[];
    expect(argv.slice(4, 7)).toEqual(['2', ...cgroups]);
    expect(argv).toContain('--network-namespace-path=/run/netns/xhab12-2');
    expect(argv).toContain('--boot');
    expect(argv.join(' ')).toContain('setpriv --pdeathsig SIGTERM systemd-nspawn');
    expect((nspawnCommand(h, false, cgroups).argv as string[]).includes('setpriv')).toBe(false);
  });

  it('keys a cached root by suite, packages and recipe; Debian 11 also by the Caddy copied in', () => {
    const a = hostRootfsPlan('bullseye', 'http://m/debian', '2.6.2-5');
    expect(a.packages).not.toContain('caddy');
    expect(hostRootfsPlan('bullseye', 'http://m/debian', '2.6.2-6').key).not.toBe(a.key);
    const b = hostRootfsPlan('bookworm', 'http://m/debian', '2.6.2-5');
    expect(b.packages).toEqual(expect.arrayContaining(['systemd', 'openssh-server', 'caddy', 'sudo', 'curl']));
    expect(hostRootfsPlan('bookworm', 'http://m/debian', '9.9.9').key).toBe(b.key);
    expect(displayCommand(b.debootstrap('/w/root'))).toMatch(/^debootstrap --variant=minbase --include=\S+ bookworm \/w\/root http:\/\/m\/debian$/);
  });

  it('quotes the remote command once for OpenSSH, with strict host key checking against the lab known_hosts', () => {
    const cmd = sshCommand({ clientKey: '/k', knownHosts: '/kh' }, { address: '10.213.7.11', user: 'deploy' }, { argv: ['echo', "it's $HOME", sensitive('s3cret')] });
    const argv = cmd.argv as string[];
    expect(argv).toEqual(expect.arrayContaining(['StrictHostKeyChecking=yes', 'UserKnownHostsFile=/kh', 'deploy@10.213.7.11']));
    expect(argv.at(-1)).toBe(`echo 'it'\\''s $HOME' s3cret`);
    expect(argv.at(-2)).toBe('--');
  });

  it('computes an OpenSSH host key fingerprint the way ssh-keygen -lf prints it', () => {
    // `ssh-keygen -lf` of this key: 256 SHA256:XrWaF0soH353KkOzJAp5BrWIs0FTnQTICK//mSTTJDY test (ED25519)
    const line = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFsdj7Bd6hVrDyaUKETI05F8WubUXvP52kHaZYIHTb4P test';
    expect(publicKeyFingerprint(line)).toBe('SHA256:XrWaF0soH353KkOzJAp5BrWIs0FTnQTICK//mSTTJDY');
    expect(() => publicKeyFingerprint('garbage')).toThrow(/public key/);
  });
});
