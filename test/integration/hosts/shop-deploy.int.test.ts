import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servicesConfig } from '../../../localservices/index.ts';
import { xamalCli } from '../../../testkit/cli.ts';
import { commitFiles } from '../../../testkit/example-repo.ts';
import { upTestNetns, type TestNetns } from '../../../testkit/egress/netns.ts';
import { startTestFarm, type TestFarm } from '../../../testkit/farm.ts';
import { caddyRootCa, labDeployYml, labDeps, labProject, upLab, type Lab } from '../../../testkit/hosts/index.ts';
import { loadReport, startLoad } from '../../../testkit/hosts/load.ts';
import { cliEntry, services, testPrefix } from '../../../testkit/integration.ts';
import { serveShopHashRepo, shopBuildEnv, shopRepo, writeNpmRegistryStandin } from '../../../testkit/shop-example.ts';
import { hostArch } from '../../../builder/images/context.ts';

/**
 * Issue 20 item 9, last part: examples/shop built by the farm for Debian 12 and deployed to a Debian
 * 12 test host with `xamal setup` + `xamal deploy`. Its release_command (`bin/shop eval
 * Shop.Release.migrate`) writes its DETS store in the app's state directory (`STATE_DIRECTORY`,
 * /var/lib/xamal/shop, which the sandboxed unit may write too); a second version deployed under load
 * through Caddy fails no request and its release_command applies nothing new; `xamal remove` keeps
 * the data.
 */

const TOKEN = 'c'.repeat(40);
const STATE = '/var/lib/xamal/shop';

describe('examples/shop deployed: migrations in the state directory, a second version under load', () => {
  let tmp: string;
  let lab: Lab;
  let netns: TestNetns;
  let farm: TestFarm;
  let env: Record<string, string>;
  let repoDir: string;
  let project: string;
  let v1: string;

  const xamal = (args: string[]) => xamalCli(project, args, {}, cliEntry());

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-shop-deploy-'));
    await chmod(tmp, 0o755);
    const www = join(tmp, 'www');
    await mkdir(www, { recursive: true });
    lab = await upLab(labDeps(), { suites: ['bookworm'] });
    netns = await upTestNetns('shopdep', www);
    const base = `http://${netns.allowed}`;
    await writeNpmRegistryStandin(www, base, hostArch());
    env = shopBuildEnv(base, await serveShopHashRepo(join(tmp, 'repos'), www));
    repoDir = join(tmp, 'repos', 'shop');
    v1 = (await shopRepo(repoDir)).commit;
    farm = await startTestFarm({
      services: services(),
      prefix: testPrefix('shop-deploy'),
      host: lab.gateway,
      token: TOKEN,
      workDir: tmp,
      cacheDir: join(servicesConfig().cacheDir, 'test-builds'),
      depsAllow: [{ host: netns.allowed, port: 80 }],
    });
    project = join(tmp, 'project');
    await labProject(project, {
      'config/deploy.yml': labDeployYml(lab, {
        service: 'shop',
        appPort: 4100,
        farmUrl: farm.url,
        extra: { release: { name: 'shop' }, release_command: 'bin/shop eval Shop.Release.migrate', env: { clear: { CART_TTL_SECONDS: '3600' } } },
      }),
      '.xamal/secrets': `XAMAL_FARM_TOKEN=${TOKEN}\n`,
    });
  }, 1_200_000);

  afterAll(async () => {
    await farm?.close();
    await netns?.close();
    await lab?.down();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('setup makes the state directory; deploy migrates there; v2 under load fails 0 requests and migrates nothing; remove keeps the data', { timeout: 1_200_000 }, async () => {
    const h = lab.hosts[0]!;
    let t = Date.now();
    await farm.build('shop', { url: `file://${repoDir}`, commit: v1 }, 'bookworm', { env });
    process.stderr.write(`[shop-deploy] v1 build ${Math.round((Date.now() - t) / 1000)}s\n`);

    const setup = await xamal(['setup']);
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    expect(setup.stdout + setup.stderr).toContain(`created ${STATE}`);
    const dir = await lab.ssh(h, { argv: ['stat', '-c', '%U %a', '--', STATE], label: 'stat state dir' }, 'root');
    expect(dir.stdout.trim()).toBe('xamal-shop 700');

    t = Date.now();
    const first = await xamal(['deploy', '--version', v1]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    process.stderr.write(`[shop-deploy] v1 deploy ${Math.round((Date.now() - t) / 1000)}s\n`);

    // /up through Caddy: the revision deployed and the store's schema (the app refuses a store behind its code).
    const target = { url: `https://${h.address}/up`, servername: 'shop.lab.test', ca: await caddyRootCa(lab, h) };
    const once = startLoad({ target, keepAliveClients: 0, closeClients: 1, maxRequests: 1, maxDurationMs: 5_000, version: ({ body }) => body });
    const up = JSON.parse((await once.stop()).records[0]!.version ?? '{}') as Record<string, unknown>;
    expect(up).toMatchObject({ status: 'ok', revision: v1, nif: true, schema: 5 });
    const store = await lab.ssh(h, { argv: ['sh', '-c', 'stat -c "%U %n" -- "$1"/*.dets', 'sh', STATE], label: 'the store' }, 'root');
    expect(store.stdout).toMatch(new RegExp(`^xamal-shop ${STATE}/meta\\.dets$`, 'm'));

    // v2: one module changed, built, then deployed under load through Caddy.
    const release = join(repoDir, 'lib', 'shop', 'migrations', 'm.ex');
    const source = await readFile(release, 'utf8');
    const v2 = await commitFiles(repoDir, 'v2', { 'lib/shop/migrations/m.ex': source.replace('They run without starting the app.', 'They run without starting the app (v2).') });
    t = Date.now();
    await farm.build('shop', { url: `file://${repoDir}`, commit: v2 }, 'bookworm', { env });
    process.stderr.write(`[shop-deploy] v2 build ${Math.round((Date.now() - t) / 1000)}s\n`);

    const load = startLoad({ target, keepAliveClients: 2, closeClients: 2, maxRequests: 20_000, maxDurationMs: 300_000, intervalMs: 40 });
    let second;
    try {
      load.mark('v2', v2);
      second = await xamal(['deploy', '--version', v2]);
    } finally {
      const run = await load.stop();
      const report = loadReport(run.records, run.marks);
      process.stderr.write(`[shop-deploy] v2 under load: ${JSON.stringify({ total: report.total, failed: report.failed, non2xx: report.non2xx, errors: report.errors, versions: report.versions })}\n`);
      expect(report.failed).toBe(0);
      expect(report.versions[v2]).toBeGreaterThan(0);
    }
    expect(second.code, second.stdout + second.stderr).toBe(0);

    // What each release_command applied, read through `app exec` (which gets STATE_DIRECTORY too).
    const log = await xamal(['app', 'exec', 'cat "$STATE_DIRECTORY/migrations.log"']);
    expect(log.code, log.stdout + log.stderr).toBe(0);
    const lines = (log.stdout.match(/schema \d+, applied \S+/g) ?? []);
    expect(lines).toEqual(['schema 5, applied 1,2,3,4,5', 'schema 5, applied none']);

    const removed = await xamal(['remove', '-y']);
    expect(removed.code, removed.stdout + removed.stderr).toBe(0);
    expect(removed.stdout).toContain(`kept ${STATE} (the app's data)`);
    expect(removed.stdout).toContain('removed user xamal-shop');
    const kept = await lab.ssh(h, { argv: ['stat', '-c', '%U %a %n', '--', STATE, `${STATE}/meta.dets`], label: 'stat kept data' }, 'root');
    expect(kept.stdout.trim().split('\n').map((l) => l.split(' ')[0])).toEqual(['root', 'root']);
    expect(kept.stdout).toContain(`root 700 ${STATE}\n`);
  });
});
