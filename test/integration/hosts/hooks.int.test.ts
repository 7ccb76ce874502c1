import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOOK_NAMES } from '../../../deployer/hooks.ts';
import { xamalCli } from '../../../testkit/cli.ts';
import { helloRepo } from '../../../testkit/example-repo.ts';
import { buildLabArtifacts, labDeployYml, labDeps, labFarmApi, labProject, upLab, type Lab } from '../../../testkit/hosts/index.ts';
import { cliEntry, services } from '../../../testkit/integration.ts';

/**
 * Issue 21 item 3: a real `xamal deploy` to a Debian 12 test host runs all eight hooks at Kamal's
 * moments, each once, with the XAMAL_* facts of the run; `-H` runs none.
 */

const TOKEN = 'h'.repeat(40);
const SECRET = 'skb-hooks-never-printed';

describe('xamal deploy runs every hook at its moment; -H runs none', () => {
  let lab: Lab;
  let tmp: string;
  let api: FastifyInstance;
  let project: string;
  let version: string;
  const log = () => join(project, 'hooks.log');

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-hooks-'));
    lab = await upLab(labDeps(), { suites: ['bookworm'] });
    const src = await helloRepo(join(tmp, 'repo'));
    version = src.commit;
    // The hello artifact the deploy tests keep built across runs (a warm run builds nothing).
    const store = await buildLabArtifacts(services(), tmp, src, [version]);
    let farmUrl: string;
    ({ api, url: farmUrl } = await labFarmApi(lab, store, TOKEN));
    project = join(tmp, 'project');
    await labProject(project, {
      'config/deploy.yml': labDeployYml(lab, { service: 'hooked', appPort: 4000, farmUrl, extra: { env: { clear: { MIX_ENV: 'prod' }, secret: ['SECRET_KEY_BASE'] } } }),
      '.xamal/secrets': `XAMAL_FARM_TOKEN=${TOKEN}\nSECRET_KEY_BASE=${SECRET}\n`,
      // HOME is the project (testkit/cli.ts): the performer is this git user.name.
      '.gitconfig': '[user]\n\tname = Hook Tester\n',
    });
    // Every hook appends one line: its name and the facts it was given.
    await mkdir(join(project, '.xamal/hooks'), { recursive: true });
    for (const name of HOOK_NAMES) {
      const path = join(project, '.xamal/hooks', name);
      await writeFile(path, `#!/bin/sh\necho "${name}|$XAMAL_SERVICE|$XAMAL_VERSION|$XAMAL_HOSTS|$XAMAL_COMMAND|$XAMAL_PERFORMER|$XAMAL_LOCK|\${XAMAL_RUNTIME:+runtime}|$(pwd)" >> ${log()}\n`);
      await chmod(path, 0o755);
    }
    const setup = await xamalCli(project, ['setup'], {}, cliEntry());
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
  }, 1_500_000);

  afterAll(async () => {
    await api?.close();
    await lab?.down();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("writes one marker per hook, in Kamal's order, with the run's XAMAL_* facts; the same deploy with -H writes none", { timeout: 300_000 }, async () => {
    const host = lab.hosts[0]!.address;
    const r = await xamalCli(project, ['deploy', '--version', version], {}, cliEntry());
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = (await readFile(log(), 'utf8')).trim().split('\n');
    const locked = new Set(['pre-deploy', 'pre-app-boot', 'post-app-boot', 'pre-caddy-switch', 'post-caddy-switch']);
    expect(lines).toEqual(HOOK_NAMES.map((n) => `${n}|hooked|${version}|${host}|deploy|Hook Tester|${locked.has(n)}|${n === 'post-deploy' ? 'runtime' : ''}|${project}`));
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    const status = await lab.ssh(lab.hosts[0]!, { argv: ['sh', '-c', 'readlink /opt/xamal/hooked/current'] });
    expect(status.stdout.trim()).toBe(`/opt/xamal/hooked/releases/${version}`);

    await rm(log());
    const skipped = await xamalCli(project, ['deploy', '--version', version, '-H'], {}, cliEntry());
    expect(skipped.code, skipped.stdout + skipped.stderr).toBe(0);
    expect(existsSync(log())).toBe(false);
  });
});
