import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostArch } from '../../../builder/images/context.ts';
import { servicesConfig } from '../../../localservices/index.ts';
import { xamalCli } from '../../../testkit/cli.ts';
import { helloRepo } from '../../../testkit/example-repo.ts';
import { startTestFarm, type TestFarm } from '../../../testkit/farm.ts';
import { caddyRootCa, labDeployYml, labDeps, upLab, type Lab } from '../../../testkit/hosts/index.ts';
import { startLoad } from '../../../testkit/hosts/load.ts';
import { cliEntry, services, testPrefix } from '../../../testkit/integration.ts';

/**
 * Issue 20 item 4's acceptance: `xamal build --source .` from a repository with no remote (the code
 * only on this machine, as in CI before a push) builds on a real farm (API + BullMQ worker), and
 * `xamal deploy` of that commit puts it on a Debian 12 test host, served through Caddy.
 */

const TOKEN = 'f'.repeat(40);

describe('a commit that exists only here: xamal build --source, then xamal deploy', () => {
  let lab: Lab;
  let farm: TestFarm;
  let tmp: string;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-source-deploy-'));
    lab = await upLab(labDeps(), { suites: ['bookworm'] });
    farm = await startTestFarm({ services: services(), prefix: testPrefix('source-deploy'), host: lab.gateway, token: TOKEN, workDir: tmp, cacheDir: join(servicesConfig().cacheDir, 'test-builds') });
  }, 900_000);

  afterAll(async () => {
    await farm?.close();
    await lab?.down();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('builds the uploaded commit for the host and deploys it there; Caddy answers with that version', { timeout: 600_000 }, async () => {
    const project = join(tmp, 'project');
    // A repository made here, with no remote: its own commit (a file of this run), the deploy config beside the code.
    const { commit } = await helloRepo(project, { 'lib/hello/local_only.ex': `defmodule Hello.LocalOnly do\n  def run, do: "${testPrefix('local')}"\nend\n` });
    expect(execFileSync('git', ['-C', project, 'remote'], { encoding: 'utf8' }).trim()).toBe('');
    // The deploy project is the repository itself (config/ and .xamal/ uncommitted: `git archive` packs the commit only).
    await mkdir(join(project, 'config'), { recursive: true });
    await mkdir(join(project, '.xamal'), { recursive: true });
    await writeFile(join(project, 'config', 'deploy.yml'), labDeployYml(lab, { service: 'hello', appPort: 4000, farmUrl: farm.url, extra: { env: { clear: { MIX_ENV: 'prod' } } } }));
    await writeFile(join(project, '.xamal', 'secrets'), `XAMAL_FARM_TOKEN=${TOKEN}\n`);
    const env = { XAMAL_FARM_TOKEN: TOKEN };
    const tuple = `linux-${hostArch()}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`;

    const built = await xamalCli(project, ['build', '--farm', farm.url, '--app', 'hello', '--source', project, '--target', tuple, '--json'], env, cliEntry());
    expect(built.code, built.stdout + built.stderr).toBe(0);
    const out = JSON.parse(built.stdout) as { builds: { tuple: string; state: string; download: string }[] };
    expect(out.builds.map((b) => [b.tuple, b.state]), built.stdout).toEqual([[tuple, 'completed']]);
    expect(out.builds[0]!.download).toContain(`/v1/artifacts/hello/${commit}/${tuple}/download`);

    const setup = await xamalCli(project, ['setup'], {}, cliEntry());
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    const deploy = await xamalCli(project, ['deploy', '--version', commit], {}, cliEntry());
    expect(deploy.code, deploy.stdout + deploy.stderr).toBe(0);

    const h = lab.hosts[0]!;
    const run = startLoad({ target: { url: `https://${h.address}/up`, servername: 'hello.lab.test', ca: await caddyRootCa(lab, h) }, keepAliveClients: 0, closeClients: 1, maxRequests: 1, maxDurationMs: 5_000 });
    const answer = (await run.stop()).records[0]!;
    expect(answer).toMatchObject({ status: 200, version: commit });
  });
});
