import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostArch } from '../../../builder/images/context.ts';
import { newKeyPair } from '../../../core/signing.ts';
import { servicesConfig } from '../../../localservices/index.ts';
import { xamalCli } from '../../../testkit/cli.ts';
import { helloRepo } from '../../../testkit/example-repo.ts';
import { startTestFarm, type TestFarm } from '../../../testkit/farm.ts';
import { caddyRootCa, labDeployYml, labDeps, upLab, type Lab } from '../../../testkit/hosts/index.ts';
import { startLoad } from '../../../testkit/hosts/load.ts';
import { testSigningKey } from '../../../testkit/signing.ts';
import { cliEntry, services, testPrefix } from '../../../testkit/integration.ts';

/**
 * Issue 23's acceptance on a real farm and a Debian 12 lab host: every artifact is signed by the
 * farm, and `xamal deploy` verifies it against deploy.yml's pinned key before any host pulls it.
 * A manifest changed in the store, or a key the deploy does not trust, stops the deploy with exit
 * code 12 naming the tuple, and the host keeps serving what it served.
 */

const TOKEN = 'f'.repeat(40);
const APP = 'hello';

describe('signed artifacts: xamal deploy verifies each one before a host pulls it', () => {
  let lab: Lab;
  let farm: TestFarm;
  let tmp: string;
  let project: string;
  let tuple: string;
  let versionA: string;
  let versionB: string;
  /** Version B's manifest.json as the farm stored it (test 2 changes one byte of it; test 3 puts it back). */
  let manifestB: { key: string; text: string };

  const deployYml = (publicKey: string) =>
    labDeployYml(lab, { service: APP, appPort: 4000, farmUrl: farm.url, extra: { env: { clear: { MIX_ENV: 'prod' } }, farm: { url: farm.url, token: 'XAMAL_FARM_TOKEN', public_key: publicKey } } });
  const cli = (args: string[]) => xamalCli(project, args, { XAMAL_FARM_TOKEN: TOKEN }, cliEntry());
  const root = async (script: string) => (await lab.ssh(lab.hosts[0]!, { argv: ['sh', '-c', script] }, 'root')).stdout.trim();
  const served = async () => {
    const h = lab.hosts[0]!;
    const run = startLoad({ target: { url: `https://${h.address}/up`, servername: `${APP}.lab.test`, ca: await caddyRootCa(lab, h) }, keepAliveClients: 0, closeClients: 1, maxRequests: 1, maxDurationMs: 5_000 });
    return (await run.stop()).records[0]!;
  };
  const build = async (commit: string) => {
    const built = await cli(['build', '--farm', farm.url, '--app', APP, '--source', project, '--target', tuple, '--json']);
    expect(built.code, built.stdout + built.stderr).toBe(0);
    const out = JSON.parse(built.stdout) as { builds: { tuple: string; state: string; download: string }[] };
    expect(out.builds.map((b) => [b.tuple, b.state]), built.stdout).toEqual([[tuple, 'completed']]);
    expect(out.builds[0]!.download).toContain(`/v1/artifacts/${APP}/${commit}/${tuple}/download`);
  };

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-verify-deploy-'));
    lab = await upLab(labDeps(), { suites: ['bookworm'] });
    // A fresh prefix: the artifacts are built (and signed) by this run, never found from an older, unsigned build.
    farm = await startTestFarm({ services: services(), prefix: testPrefix('verify-deploy'), host: lab.gateway, token: TOKEN, workDir: tmp, cacheDir: join(servicesConfig().cacheDir, 'test-builds') });
    project = join(tmp, 'project');
    tuple = `linux-${hostArch()}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`;
    ({ commit: versionA } = await helloRepo(project, { 'lib/hello/run_a.ex': `defmodule Hello.RunA do\n  def run, do: "${testPrefix('a')}"\nend\n` }));
    await mkdir(join(project, 'config'), { recursive: true });
    await mkdir(join(project, '.xamal'), { recursive: true });
    await writeFile(join(project, 'config', 'deploy.yml'), deployYml(testSigningKey().publicKey));
    await writeFile(join(project, '.xamal', 'secrets'), `XAMAL_FARM_TOKEN=${TOKEN}\n`);
  }, 900_000);

  afterAll(async () => {
    await farm?.close();
    await lab?.down();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("with deploy.yml pinning the farm's public key, xamal deploy of the built commit succeeds and Caddy serves it", { timeout: 600_000 }, async () => {
    await build(versionA);
    const setup = await cli(['setup']);
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    const deploy = await cli(['deploy', '--version', versionA]);
    expect(deploy.code, deploy.stdout + deploy.stderr).toBe(0);
    expect(await served()).toMatchObject({ status: 200, version: versionA });
  });

  it('one byte of a stored manifest.json changed: xamal verify exits 12 saying it differs from what was signed, xamal deploy exits 12 naming the tuple, and the host still serves the old version', { timeout: 600_000 }, async () => {
    // A second commit of the same repository, built by the farm (signed as every artifact is).
    await writeFile(join(project, 'lib/hello/run_b.ex'), `defmodule Hello.RunB do\n  def run, do: "${testPrefix('b')}"\nend\n`);
    execFileSync('git', ['-C', project, 'add', 'lib/hello/run_b.ex']);
    execFileSync('git', ['-C', project, '-c', 'user.name=xamal test', '-c', 'user.email=test@xamal.invalid', 'commit', '-q', '-m', 'b']);
    versionB = execFileSync('git', ['-C', project, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    await build(versionB);
    const untouched = await cli(['verify', APP, versionB, tuple]);
    expect(untouched.code, untouched.stdout + untouched.stderr).toBe(0);

    // One digit of builtAt changed in the farm's store (this run's prefix only).
    const key = `artifacts/${APP}/${versionB}/${tuple}/manifest.json`;
    const text = (await farm.store.get(key))!.toString('utf8');
    manifestB = { key, text };
    const at = /"builtAt":\s*"(\d)/.exec(text)!;
    const digitAt = at.index + at[0].length - 1;
    const tampered = text.slice(0, digitAt) + String((Number(text[digitAt]) + 1) % 10) + text.slice(digitAt + 1);
    expect(Buffer.byteLength(tampered)).toBe(Buffer.byteLength(text));
    await farm.store.put(key, tampered, 'application/json');

    const verify = await cli(['verify', APP, versionB, tuple]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(12);
    expect(verify.stdout).toMatch(/^✗ signed manifest: manifest\.json differs from what was signed$/m);
    expect(verify.stdout).toContain(`NOT verified: ${APP} ${versionB} ${tuple}`);

    const deploy = await cli(['deploy', '--version', versionB]);
    expect(deploy.code, deploy.stdout + deploy.stderr).toBe(12);
    expect(deploy.stdout + deploy.stderr).toContain(`artifact ${tuple}:`);
    expect(deploy.stdout + deploy.stderr).toContain('differs from what was signed');
    expect(await root(`readlink /opt/xamal/${APP}/current; test -e /opt/xamal/${APP}/releases/${versionB} && echo present || echo absent`)).toBe(`/opt/xamal/${APP}/releases/${versionA}\nabsent`);
    expect(await served()).toMatchObject({ status: 200, version: versionA });
  });

  it('a deploy.yml pinning another key refuses an untouched artifact with exit 12 naming the unknown key, and the host is unchanged; pinning the farm key again deploys it', { timeout: 300_000 }, async () => {
    // Version B's manifest back as the farm signed it: a release not on the host yet (one already there is never pulled, so never verified again).
    await farm.store.put(manifestB.key, manifestB.text, 'application/json');
    const other = newKeyPair();
    await writeFile(join(project, 'config', 'deploy.yml'), deployYml(other.publicKey));
    const refused = await cli(['deploy', '--version', versionB]);
    expect(refused.code, refused.stdout + refused.stderr).toBe(12);
    expect(refused.stdout + refused.stderr).toContain(`artifact ${tuple}: signature: unknown key: signed by key ${testSigningKey().keyid}, which is not trusted (trusted: ${other.keyid}`);
    expect(await root(`readlink /opt/xamal/${APP}/current; test -e /opt/xamal/${APP}/releases/${versionB} && echo present || echo absent`)).toBe(`/opt/xamal/${APP}/releases/${versionA}\nabsent`);
    expect(await served()).toMatchObject({ status: 200, version: versionA });

    await writeFile(join(project, 'config', 'deploy.yml'), deployYml(testSigningKey().publicKey));
    const deploy = await cli(['deploy', '--version', versionB]);
    expect(deploy.code, deploy.stdout + deploy.stderr).toBe(0);
    expect(await served()).toMatchObject({ status: 200, version: versionB });
  });
});
