import { spawn as spawnChild } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn as spawnPty, type IPty } from '@lydell/node-pty';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { xamalCli } from '../../../testkit/cli.ts';
import { cliBaseEnv } from '../../../testkit/config.ts';
import { helloRepo } from '../../../testkit/example-repo.ts';
import { buildLabArtifacts, labDeployYml, labDeps, labFarmApi, labProject, upLab, type Lab } from '../../../testkit/hosts/index.ts';
import { cliEntry, services } from '../../../testkit/integration.ts';

/**
 * Issue 21, item 3: `xamal console` (the release's remote IEx shell on the running node) driven
 * through a real pty, and `app exec -i` with piped stdin, against the hello example deployed to one
 * Debian 12 test host.
 */

const TOKEN = 'f'.repeat(40);

/** A terminal's text without escape sequences (IEx colours its results) and carriage returns. */
const plain = (raw: string) => raw.replace(/\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][A-Za-z0-9]|[=>NOMDEc78])/g, '').replace(/\r/g, '');

/** The compiled CLI in a pty of its own, its output collected; `waitFor` polls it (bounded). */
function ptyCli(cwd: string, args: string[]) {
  const term: IPty = spawnPty(process.execPath, [cliEntry(), ...args], { name: 'xterm-256color', cols: 120, rows: 40, cwd, env: { ...cliBaseEnv(), HOME: cwd, TERM: 'xterm-256color' } });
  let out = '';
  term.onData((d) => (out += d));
  const exited = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
  const waitFor = async (re: RegExp, from: number, ms = 30_000): Promise<string> => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const m = re.exec(plain(out.slice(from)));
      if (m) return m[0];
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no ${re} within ${ms} ms; the terminal showed: ${JSON.stringify(out.slice(from))}`);
  };
  return { term, exited, waitFor, mark: () => out.length, output: () => out };
}

/** The compiled CLI with stdin, stdout and stderr as pipes (no terminal at all). */
function pipedCli(cwd: string, args: string[], stdin: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawnChild(process.execPath, [cliEntry(), ...args], { cwd, env: { ...cliBaseEnv(), HOME: cwd }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    child.stdin.end(stdin);
  });
}

describe('xamal console and app exec -i on a Debian 12 test host', () => {
  let lab: Lab;
  let tmp: string;
  let api: FastifyInstance;
  let project: string;
  let v1: string;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-console-'));
    lab = await upLab(labDeps(), { suites: ['bookworm'] });
    const src = await helloRepo(join(tmp, 'repo'));
    v1 = src.commit;
    // The store and commit the other hosts tests use: a warm run finds the artifact built.
    const store = await buildLabArtifacts(services(), tmp, src, [v1]);
    let farmUrl: string;
    ({ api, url: farmUrl } = await labFarmApi(lab, store, TOKEN));
    project = join(tmp, 'project');
    await labProject(project, {
      'config/deploy.yml': labDeployYml(lab, { service: 'hello', appPort: 4000, farmUrl, extra: { env: { clear: { MIX_ENV: 'prod' } }, aliases: { run: 'app exec --interactive' } } }),
      '.xamal/secrets': `XAMAL_FARM_TOKEN=${TOKEN}\n`,
    });
    const setup = await xamalCli(project, ['setup'], {}, cliEntry());
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    const deploy = await xamalCli(project, ['deploy', '--version', v1], {}, cliEntry());
    expect(deploy.code, deploy.stdout + deploy.stderr).toBe(0);
  }, 1_500_000);

  afterAll(async () => {
    await api?.close();
    await lab?.down();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  /** `xamal console` in a pty: 42 from an expression, the live slot's node, the window size, Ctrl-G q. */
  const consoleSession = async () => {
    const h = lab.hosts[0]!;
    const live = (await lab.ssh(h, { argv: ['cat', '/opt/xamal/hello/slots/web.live'] }, 'root')).stdout.trim();
    const t0 = performance.now();
    const c = ptyCli(project, ['console']);
    try {
      await c.waitFor(/iex\([^)]*\)\d+> $/, 0, 60_000);
      const opened = performance.now() - t0;
      let at = c.mark();
      c.term.write('Enum.sum([1,2,3]) * 7\r');
      expect(await c.waitFor(/\n42\n/, at)).toBe('\n42\n');
      at = c.mark();
      c.term.write('node()\r');
      expect(await c.waitFor(/:"[^"]+@[^"]+"/, at)).toMatch(new RegExp(`^:"hello-web-${live}@`));
      c.term.resize(100, 30);
      // The resize reaches xamal as SIGWINCH, which must be handled before the next keys are read.
      await new Promise((r) => setTimeout(r, 500));
      at = c.mark();
      // io.columns asks the shell's own terminal: the remote pty, resized through SSH.
      c.term.write(':io.columns()\r');
      expect(await c.waitFor(/\{:ok, \d+\}/, at)).toBe('{:ok, 100}');
      c.term.write('\x07');
      await c.waitFor(/--> $/, at);
      c.term.write('q\r');
      expect(await c.exited).toBe(0);
      console.log(`console: remote IEx prompt on ${live} after ${opened.toFixed(0)} ms (xamal start, SSH, sudo, runuser, iex --remsh)`);
    } finally {
      c.term.kill();
    }
    const unit = await lab.ssh(h, { argv: ['systemctl', 'is-active', `xamal-hello-web@${live}.service`] }, 'root');
    expect(unit.stdout.trim()).toBe('active');
    return live;
  };

  it('xamal console opens IEx on the running node: an expression typed gives 42, a resize reaches it, Ctrl-G q leaves with exit 0 and the app still running', { timeout: 120_000 }, async () => {
    await consoleSession();
  });

  it("after the live slot switches (app boot: the other slot started, the old one stopped, with the epmd it started), console reaches the new live node through the slot's own epmd", { timeout: 300_000 }, async () => {
    const before = (await lab.ssh(lab.hosts[0]!, { argv: ['cat', '/opt/xamal/hello/slots/web.live'] }, 'root')).stdout.trim();
    const boot = await xamalCli(project, ['app', 'boot'], {}, cliEntry());
    expect(boot.code, boot.stdout + boot.stderr).toBe(0);
    const after = await consoleSession();
    expect(after).not.toBe(before);
  });

  it('app exec -i with piped stdin (no terminal): the command reads it, runs as the app user in the live release, and its exit status is xamal\'s; an alias with extra words does the same', { timeout: 120_000 }, async () => {
    const line = 'read x; echo "got $x as $(id -un) in $(pwd)"; exit 7';
    const direct = await pipedCli(project, ['app', 'exec', '-i', line], 'hello\n');
    expect(direct.stdout, direct.stderr).toBe(`got hello as xamal-hello in /opt/xamal/hello/releases/${v1}\n`);
    expect(direct.code).toBe(7);
    const viaAlias = await pipedCli(project, ['run', 'cat; echo; echo done'], 'piped through\n');
    expect(viaAlias.stdout, viaAlias.stderr).toBe('piped through\n\ndone\n');
    expect(viaAlias.code).toBe(0);
  });
});
