import { describe, expect, it } from 'vitest';
import { DEFAULT_DEPS_ALLOW, listensOn, parseAllowList, proxyConfig, proxyEnv, proxyFilter } from '../../../builder/egress.ts';

const matches = (filter: string, url: string) => filter.trim().split('\n').some((re) => new RegExp(re).test(url));

describe('the egress allow list (XAMAL_DEPS_ALLOW)', () => {
  it('reads host[:port] entries, port 443 by default, case-folded', () => {
    expect(parseAllowList(' Hex.pm , 10.20.0.5:80,git.example.com:8443,')).toEqual([
      { host: 'hex.pm', port: 443 },
      { host: '10.20.0.5', port: 80 },
      { host: 'git.example.com', port: 8443 },
    ]);
  });

  it("allows Hex and GitHub/GitLab over https by default, and plain http only to Debian's archive (apt checks its signatures)", () => {
    const hosts = parseAllowList(DEFAULT_DEPS_ALLOW).map((e) => `${e.host}:${e.port}`);
    expect(hosts).toEqual(expect.arrayContaining(['hex.pm:443', 'repo.hex.pm:443', 'builds.hex.pm:443', 'github.com:443', 'codeload.github.com:443', 'gitlab.com:443']));
    expect(hosts.filter((h) => !h.endsWith(':443'))).toEqual(['deb.debian.org:80']);
  });

  it.each([
    ['127.0.0.1:16379', 'loopback'],
    ['localhost:5000', 'loopback'],
    ['api.localhost', 'loopback'],
    ['0.0.0.0', 'loopback'],
    ['169.254.169.254:80', 'link-local'],
  ])('never allows %s (%s): the farm\'s own services and metadata endpoints stay unreachable', (entry, why) => {
    expect(() => parseAllowList(entry)).toThrow(new RegExp(`XAMAL_DEPS_ALLOW: "${entry.replace(/\./g, '\\.')}" is never allowed \\(.*${why}`));
  });

  it.each(['http://hex.pm', 'hex.pm:0', 'hex.pm:70000', '-x.example', 'a b', '[::1]:80', 'host:port:9'])('refuses %j with the field and what was expected', (entry) => {
    expect(() => parseAllowList(entry)).toThrow(/XAMAL_DEPS_ALLOW: /);
  });
});

describe('the proxy filter', () => {
  const filter = proxyFilter(parseAllowList('hex.pm,10.20.0.5:80,git.example.com:8080'));

  it('lets through exactly the allowed hosts and ports, for plain HTTP and for CONNECT', () => {
    expect(matches(filter, 'hex.pm:443')).toBe(true);
    expect(matches(filter, 'http://10.20.0.5/app.git/info/refs')).toBe(true);
    expect(matches(filter, 'http://10.20.0.5:80/app.git/info/refs')).toBe(true);
    expect(matches(filter, 'http://git.example.com:8080/x')).toBe(true);
    expect(matches(filter, 'git.example.com:8080')).toBe(true);
  });

  it('refuses other hosts, other ports, look-alike names and the farm\'s loopback', () => {
    for (const url of ['hex.pm:22', 'http://hex.pm/', 'evilhex.pm:443', 'hex.pm.evil.com:443', 'hexxpm:443', 'http://10.20.0.5:8080/', 'http://10.20.0.50/', 'http://127.0.0.1:16379/', '127.0.0.1:5000', 'http://10.20.0.5.evil/']) {
      expect(matches(filter, url), url).toBe(false);
    }
  });

  it('is a default-deny tinyproxy listening on loopback only, filtering whole URLs', () => {
    const conf = proxyConfig({ port: 40123, filterPath: '/run/x/allow.filter' });
    expect(conf.split('\n')).toEqual(expect.arrayContaining(['Port 40123', 'Listen 127.0.0.1', 'FilterDefaultDeny Yes', 'FilterURLs On', 'FilterType ere', 'Filter "/run/x/allow.filter"']));
  });

  it('points Mix, Hex, git and curl at the proxy port on the container\'s own loopback', () => {
    expect(proxyEnv()).toMatchObject({ http_proxy: 'http://127.0.0.1:3128', HTTPS_PROXY: 'http://127.0.0.1:3128', HEX_HTTPS_PROXY: 'http://127.0.0.1:3128', no_proxy: '' });
  });
});

describe('waiting for the in-namespace forwarder', () => {
  const table = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:0C38 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 150370 1',
    '   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 150371 1',
  ].join('\n');

  it('sees a socket listening on 127.0.0.1:3128 in /proc/<pid>/net/tcp, and not an established one on another port', () => {
    expect(listensOn(table, 3128)).toBe(true);
    expect(listensOn(table, 8080)).toBe(false);
    expect(listensOn('', 3128)).toBe(false);
  });
});
