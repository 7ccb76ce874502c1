import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { accessLogFile, accessLoggerId, countAccessLogCommand, parseAccessLogCount, planAccessLog } from '../../../../deployer/commands/access-log.ts';
import { appSite, proxyHandler } from '../../../../deployer/commands/caddy.ts';
import { tryDurationS } from '../../../../deployer/commands/rollout.ts';
import { appLayout } from '../../../../deployer/commands/layout.ts';
import { validateDeployConfig } from '../../../../deployer/config/load.ts';

const input = { app: 'shop', hosts: ['shop.example.com'], server: 'xamal', port: '443', on: true };
const withRoute = { apps: { http: { servers: { xamal: { listen: [':443'], routes: [{ '@id': 'xamal-shop' }, { '@id': 'xamal-blog' }] } } } } };

/** A Caddy 2.6.2 access log line (its shape, FACTS.md#caddy). */
const line = (status: number, uri = '/x') =>
  JSON.stringify({ level: 'info', ts: 1796471323.96, logger: 'http.log.access.xamal-shop', msg: 'handled request', request: { remote_ip: '10.0.0.1', proto: 'HTTP/1.1', method: 'GET', host: 'shop.example.com', uri, headers: { 'User-Agent': ['curl'] } }, user_id: '', duration: 0.0005, size: 2, status, resp_headers: { 'Content-Type': ['text/plain'] } });

describe("the app's Caddy access log (rollout.max_5xx_percent)", () => {
  it('maps the app\'s host names (bare and with the port) to its logger with unmapped hosts skipped, writes it to its own JSON file and keeps it out of the default log; nothing more once it is there', () => {
    const plan = planAccessLog(withRoute, input);
    expect(plan.requests).toEqual([
      { method: 'PUT', path: '/config/apps/http/servers/xamal/logs', body: { logger_names: { 'shop.example.com': 'xamal-shop', 'shop.example.com:443': 'xamal-shop' }, skip_unmapped_hosts: true }, label: 'app access log: host names' },
      { method: 'PUT', path: '/config/logging', body: { logs: { 'xamal-shop': { writer: { output: 'file', filename: '/var/log/caddy/xamal-shop.access.log', roll_size_mb: 20, roll_keep: 1 }, encoder: { format: 'json' }, include: ['http.log.access.xamal-shop'] } } }, label: 'app access log: file' },
      { method: 'PUT', path: '/config/logging/logs/default', body: { exclude: ['http.log.access.xamal-shop'] }, label: 'app access log: not in the default log' },
    ]);
    // Applied (as Caddy would), the plan is empty.
    const applied = {
      ...withRoute,
      apps: { http: { servers: { xamal: { ...withRoute.apps.http.servers.xamal, logs: plan.requests[0]!.body } } } },
      logging: { logs: { 'xamal-shop': (plan.requests[1]!.body as { logs: Record<string, unknown> }).logs['xamal-shop'], default: { exclude: [accessLoggerId('shop')] } } },
    };
    expect(planAccessLog(applied, input).requests).toEqual([]);
    // As Caddy answers it: every object's keys sorted.
    const sorted = (v: unknown): unknown => (Array.isArray(v) ? v.map(sorted) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, sorted(x)])) : v);
    expect(planAccessLog(sorted(applied), input).requests).toEqual([]);
  });

  it("keeps another app's host names and default-log exclusions, and takes only its own away when max_5xx_percent is unset", () => {
    const other = { ...withRoute, apps: { http: { servers: { xamal: { ...withRoute.apps.http.servers.xamal, logs: { logger_names: { 'blog.example.com': 'xamal-blog' }, skip_unmapped_hosts: true } } } } }, logging: { logs: { default: { exclude: ['http.log.access.xamal-blog'] } } } };
    const on = planAccessLog(other, input);
    expect(on.requests[0]).toMatchObject({ method: 'PATCH', path: '/config/apps/http/servers/xamal/logs', body: { logger_names: { 'blog.example.com': 'xamal-blog', 'shop.example.com': 'xamal-shop' } } });
    expect(on.requests[2]).toMatchObject({ method: 'PATCH', path: '/config/logging/logs/default/exclude', body: ['http.log.access.xamal-blog', 'http.log.access.xamal-shop'] });
    const both = { ...other, apps: { http: { servers: { xamal: { ...other.apps.http.servers.xamal, logs: { logger_names: { 'blog.example.com': 'xamal-blog', 'shop.example.com': 'xamal-shop' }, skip_unmapped_hosts: true } } } } }, logging: { logs: { 'xamal-shop': {}, default: { exclude: ['http.log.access.xamal-blog', 'http.log.access.xamal-shop'] } } } };
    expect(planAccessLog(both, { ...input, on: false }).requests).toEqual([
      { method: 'PATCH', path: '/config/apps/http/servers/xamal/logs/logger_names', body: { 'blog.example.com': 'xamal-blog' }, label: 'app access log off: host names' },
      { method: 'DELETE', path: '/config/logging/logs/xamal-shop', label: 'app access log off: file' },
      { method: 'PATCH', path: '/config/logging/logs/default/exclude', body: ['http.log.access.xamal-blog'], label: 'app access log off: default log' },
    ]);
    expect(planAccessLog(withRoute, { ...input, on: false }).requests).toEqual([]);
  });

  describe('counting answers from a byte offset (the real script, run here with sh and awk)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xamal-access-'));
    const file = join(dir, 'shop.log');
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const count = (offset: number, max?: number) => {
      const argv = [...countAccessLogCommand('shop', offset, max).argv] as string[];
      argv[argv.indexOf(accessLogFile('shop'))] = file;
      return parseAccessLogCount(execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }));
    };

    it('counts whole lines from the offset, 5xx apart, and says where the next read starts; a line not yet finished waits for the next read', () => {
      expect(count(0)).toEqual({ next: 0, answers: 0, errors5xx: 0, size: 0 });
      writeFileSync(file, `${line(200)}\n${line(500)}\n${line(404, '/a\\",\\"status\\":503')}\n`);
      const first = count(0)!;
      expect(first).toMatchObject({ answers: 3, errors5xx: 1 });
      expect(first.next).toBe(first.size);
      const half = `${line(503)}\n${line(502)}`;
      appendFileSync(file, half.slice(0, half.length - 40));
      const second = count(first.next)!;
      expect(second).toMatchObject({ answers: 1, errors5xx: 1 });
      appendFileSync(file, `${half.slice(half.length - 40)}\n`);
      expect(count(second.next)).toMatchObject({ answers: 1, errors5xx: 1 });
    });

    it('reads at most max bytes a time, and starts again at 0 when the file is smaller than the offset (rolled)', () => {
      writeFileSync(file, `${line(200)}\n`.repeat(10));
      const part = count(0, 1000)!;
      expect(part.answers).toBeLessThan(10);
      expect(part.answers).toBeGreaterThan(0);
      expect(count(part.next)!.answers).toBe(10 - part.answers);
      writeFileSync(file, `${line(500)}\n`);
      expect(count(100_000)).toMatchObject({ answers: 1, errors5xx: 1 });
    });

    it('a missing file counts nothing, and output that is not four numbers is no count', () => {
      rmSync(file, { force: true });
      expect(count(123)).toEqual({ next: 0, answers: 0, errors5xx: 0, size: 0 });
      expect(parseAccessLogCount('sh: stat: not found')).toBeUndefined();
      expect(parseAccessLogCount('1 2 3')).toBeUndefined();
    });
  });
});

describe("Caddy's try_duration", () => {
  it('is 5 s without a watch; with one it covers the checks that fail a health-failing version plus its rollback (the defaults: 27 s), at most 60 s', () => {
    expect(tryDurationS({ watchS: undefined, intervalS: 2, failures: 2 })).toBe(5);
    expect(tryDurationS({ watchS: 60, intervalS: 2, failures: 2 })).toBe(27);
    expect(tryDurationS({ watchS: 40, intervalS: 0.25, failures: 2 })).toBe(17);
    expect(tryDurationS({ watchS: 600, intervalS: 10, failures: 10 })).toBe(60);
  });

  it("the app's route carries it, and the access log only with max_5xx_percent and host names", () => {
    const base = { service: 'shop', servers: ['10.0.0.1'], caddy: { hosts: ['shop.example.com'] } };
    const plain = appSite(validateDeployConfig(base), appLayout('shop', undefined));
    expect(proxyHandler(plain)).toMatchObject({ load_balancing: { try_duration: '5s' } });
    expect(plain.accessLog).toBeUndefined();
    const watched = appSite(validateDeployConfig({ ...base, rollout: { watch: '60s', max_5xx_percent: 5 } }), appLayout('shop', undefined));
    expect(proxyHandler(watched)).toMatchObject({ load_balancing: { try_duration: '27s' } });
    expect(watched.accessLog).toBe(true);
  });
});
