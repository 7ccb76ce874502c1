import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deployVerb, type DeployValues } from '../../../../cli/commands/deploy.ts';
import type { Io } from '../../../../cli/io.ts';
import { main } from '../../../../cli/main.ts';
import type { Remote } from '../../../../cli/remote.ts';
import { exitCodeFor, SYSTEM_ENV, type XamalError } from '../../../../core/index.ts';
import { HOOK_NAMES } from '../../../../deployer/hooks.ts';
import type { RecordedStep } from '../../../../deployer/remote.ts';
import { baseConfig, testContext } from '../../../../testkit/deployer/context.ts';

/**
 * The hooks of deploy, redeploy, rollback and app boot, run for real (scripts in .xamal/hooks) around
 * a recording pool: their order, the XAMAL_* facts each gets, and -H / --dry-run running none.
 */

const V = 'a1b2c3d4e5f6';
const startDir = process.cwd();
let root: string;
const markers = () => join(root, 'hooks.log');
const lines = () => (existsSync(markers()) ? readFileSync(markers(), 'utf8').trim().split('\n') : []);

/** Every hook appends its name and facts to hooks.log; `failing` exits 1 instead. */
async function writeHooks(failing?: string) {
  const dir = join(root, '.xamal/hooks');
  await mkdir(dir, { recursive: true });
  for (const name of HOOK_NAMES) {
    const body =
      name === failing
        ? 'echo "refusing" >&2; exit 1'
        : `echo "${name} hosts=$XAMAL_HOSTS cmd=$XAMAL_COMMAND sub=$XAMAL_SUBCOMMAND v=$XAMAL_VERSION lock=$XAMAL_LOCK by=$XAMAL_PERFORMER runtime=\${XAMAL_RUNTIME-none} secret=\${DB_PASSWORD:+yes}" >> "${markers()}"`;
    await writeFile(join(dir, name), `#!/bin/sh\n${body}\n`);
    await chmod(join(dir, name), 0o755);
  }
}

/** A host where blue serves release `old` and every release is present; remembers hooks.log at the first contact. */
function hostsSeen() {
  const seen: { atFirstContact?: string[] } = {};
  const respond = (step: RecordedStep) => {
    seen.atFirstContact ??= lines();
    if (step.kind !== 'run') return undefined;
    const label = step.command.label ?? '';
    if (label.startsWith('slot state')) return { stdout: 'blue active /opt/xamal/shop/releases/old\ngreen inactive /opt/xamal/shop/releases/older\ncurrent /opt/xamal/shop/releases/old\nlive blue\n' };
    if (label.startsWith('health check') || label.startsWith('check https')) return { stdout: '200' };
    return { code: 0 };
  };
  return { seen, respond };
}

function remoteFor(opts: { command: string; config?: unknown; dryRun?: boolean }) {
  const { seen, respond } = hostsSeen();
  const { ctx, pool } = testContext({ command: opts.command, roles: ['web'], env: { ...SYSTEM_ENV }, respond, ...(opts.config ? { config: opts.config } : {}) });
  const remote: Remote = { ctx, recording: opts.dryRun ? pool : undefined, close: async () => {} };
  return { remote, pool, seen };
}

const run = (verb: 'deploy' | 'redeploy' | 'rollback' | 'boot', remote: Remote, values: Partial<DeployValues> = {}, positionals: string[] = []) =>
  deployVerb(verb, positionals, values as DeployValues, remote, () => {});

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'xamal-deploy-hooks-'));
  process.chdir(root);
});
afterEach(async () => {
  process.chdir(startDir);
  await rm(root, { recursive: true, force: true });
});

describe('the hooks of a deploy', () => {
  it("run in Kamal's order, each once, with the command's facts; pre-connect and pre-build before any host is contacted", async () => {
    await writeHooks();
    const { remote, seen } = remoteFor({ command: 'deploy' });
    const r = await run('deploy', remote, { version: V });
    expect(r.outcomes.every((o) => o.ok)).toBe(true);
    const facts = `cmd=deploy sub= v=${V}`;
    expect(lines().map((l) => l.replace(/runtime=\d+/, 'runtime=N'))).toEqual([
      `pre-connect hosts=web1,web2 ${facts} lock=false by=Ada runtime=none secret=yes`,
      `pre-build hosts=web1,web2 ${facts} lock=false by=Ada runtime=none secret=`,
      `pre-deploy hosts=web1,web2 ${facts} lock=true by=Ada runtime=none secret=yes`,
      `pre-app-boot hosts=web1,web2 ${facts} lock=true by=Ada runtime=none secret=`,
      `post-app-boot hosts=web1,web2 ${facts} lock=true by=Ada runtime=none secret=`,
      `pre-caddy-switch hosts=web1,web2 ${facts} lock=true by=Ada runtime=none secret=`,
      `post-caddy-switch hosts=web1,web2 ${facts} lock=true by=Ada runtime=none secret=`,
      `post-deploy hosts=web1,web2 ${facts} lock=false by=Ada runtime=N secret=yes`,
    ]);
    // The first host contact is the lock: pre-connect and pre-build ran before it, pre-deploy after.
    expect(seen.atFirstContact?.map((l) => l.split(' ')[0])).toEqual(['pre-connect', 'pre-build']);
  });

  it('with boot.limit, run the boot and switch hooks once per group with that group\'s hosts; redeploy is the same', async () => {
    await writeHooks();
    const { remote } = remoteFor({ command: 'redeploy', config: { ...baseConfig, boot: { limit: 1 } } });
    await run('redeploy', remote, { version: V });
    expect(lines().map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual([
      'pre-connect hosts=web1,web2 cmd=redeploy',
      'pre-build hosts=web1,web2 cmd=redeploy',
      'pre-deploy hosts=web1,web2 cmd=redeploy',
      ...['web1', 'web2'].flatMap((h) => ['pre-app-boot', 'post-app-boot', 'pre-caddy-switch', 'post-caddy-switch'].map((n) => `${n} hosts=${h} cmd=redeploy`)),
      'post-deploy hosts=web1,web2 cmd=redeploy',
    ]);
  });

  it('rollback runs every hook but pre-build; app boot only pre-connect and the boot and switch hooks, as Kamal', async () => {
    await writeHooks();
    await run('rollback', remoteFor({ command: 'rollback' }).remote, {}, ['older']);
    expect(lines().map((l) => l.split(' ').filter((w) => /^[a-z-]+$|^cmd=|^sub=|^v=/.test(w)).join(' '))).toEqual(
      ['pre-connect', 'pre-deploy', 'pre-app-boot', 'post-app-boot', 'pre-caddy-switch', 'post-caddy-switch', 'post-deploy'].map((n) => `${n} cmd=rollback sub= v=older`),
    );
    await rm(markers());
    const boot = remoteFor({ command: 'app boot' });
    const r = await run('boot', boot.remote);
    expect(r.version).toBe('old');
    // The version is read from the hosts after pre-connect, which runs before any contact.
    expect(lines().map((l) => l.split(' ').filter((w) => /^[a-z-]+$|^cmd=|^sub=|^v=/.test(w)).join(' '))).toEqual([
      'pre-connect cmd=app sub=boot v=',
      ...['pre-app-boot', 'post-app-boot', 'pre-caddy-switch', 'post-caddy-switch'].map((n) => `${n} cmd=app sub=boot v=old`),
    ]);
    expect(boot.seen.atFirstContact).toEqual(['pre-connect hosts=web1,web2 cmd=app sub=boot v= lock=false by=Ada runtime=none secret=yes']);
  });

  it('-H (--skip-hooks) and --dry-run run none, and the deploy still happens', async () => {
    await writeHooks();
    const skipped = remoteFor({ command: 'deploy' });
    const r = await run('deploy', skipped.remote, { version: V, 'skip-hooks': true });
    expect(r.outcomes.every((o) => o.ok)).toBe(true);
    expect(skipped.pool.steps.some((s) => s.kind === 'run' && s.command.label === 'mark web-green live')).toBe(true);
    await run('deploy', remoteFor({ command: 'deploy', dryRun: true }).remote, { version: V });
    await run('rollback', remoteFor({ command: 'rollback' }).remote, { 'skip-hooks': true }, ['older']);
    await run('boot', remoteFor({ command: 'app boot' }).remote, { 'skip-hooks': true });
    expect(existsSync(markers())).toBe(false);
  });

  it('a failing pre-app-boot aborts with exit code 11 naming the hook: nothing boots or switches, post-deploy does not run, the lock is released', async () => {
    await writeHooks('pre-app-boot');
    const { remote, pool } = remoteFor({ command: 'deploy' });
    const err = (await run('deploy', remote, { version: V }).then(() => undefined, (e: unknown) => e)) as XamalError;
    expect(err.code).toBe('hook_failed');
    expect(exitCodeFor(err.code)).toBe(11);
    expect(err.message).toBe('hook pre-app-boot failed (exit 1):\nrefusing\nnothing was switched');
    expect(lines().map((l) => l.split(' ')[0])).toEqual(['pre-connect', 'pre-build', 'pre-deploy']);
    const labels = pool.steps.flatMap((s) => (s.kind === 'run' ? [s.command.label ?? ''] : []));
    expect(labels.some((l) => /^(start|stop|mark|check https)/.test(l))).toBe(false);
    expect(labels.slice(labels.indexOf('acquire lock') + 1)).toContain('release lock');
  });
});

describe('-H on the command line', () => {
  const out: string[] = [];
  const io: Io = { out: (t) => void out.push(t), err: (t) => void out.push(t), interrupted: () => new Promise<string>(() => {}) };

  it('deploy, redeploy, rollback and app boot take -H and --skip-hooks', async () => {
    await mkdir(join(root, 'config'));
    await writeFile(join(root, 'config/deploy.yml'), ['service: shop', 'servers: [web1.example.com]', 'ssh:', '  user: deploy', ''].join('\n'));
    await writeHooks('pre-connect');
    expect(await main(['deploy', '-H', '--dry-run', '--version', V], io, { debug: false }), out.join('\n')).toBe(0);
    expect(await main(['redeploy', '--skip-hooks', '--version', V, '--dry-run'], io, { debug: false }), out.join('\n')).toBe(0);
    expect(await main(['app', 'boot', '-H', '--version', V, '--dry-run'], io, { debug: false }), out.join('\n')).toBe(0);
    expect(await main(['rollback', V, '-H', '--dry-run'], io, { debug: false }), out.join('\n')).toBe(0);
  });
});
