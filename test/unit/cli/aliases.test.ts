import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expandAlias, splitWords } from '../../../cli/aliases.ts';
import { parseFlags } from '../../../cli/args.ts';
import { APP_FLAGS } from '../../../cli/commands/app.ts';
import type { Io } from '../../../cli/io.ts';
import { main } from '../../../cli/main.ts';
import { COMMANDS, findCommand } from '../../../cli/table.ts';
import { parseExample } from '../../../deployer/config/docs.ts';
import { validateDeployConfig } from '../../../deployer/config/load.ts';
import { COMMAND_WORDS } from '../../../deployer/config/schema.ts';
import type { Terminal } from '../../../deployer/remote.ts';

describe('alias words', () => {
  it('splits as a shell does: blanks separate, quotes group, backslashes escape, nothing expands', () => {
    expect(splitWords(`app exec --interactive "bin/my_app remote"`)).toEqual(['app', 'exec', '--interactive', 'bin/my_app remote']);
    expect(splitWords(`app exec "bin/my_app eval 'MyApp.Release.migrate()'"`)).toEqual(['app', 'exec', "bin/my_app eval 'MyApp.Release.migrate()'"]);
    expect(splitWords(`  a  'b  c'd "e \\"f\\" $HOME \\x" g\\ h ''`)).toEqual(['a', 'b  cd', 'e "f" $HOME \\x', 'g h', '']);
  });

  it('refuses an unterminated quote, naming it', () => {
    expect(() => splitWords(`app exec "bin/x remote`)).toThrow('unterminated double quote in "app exec \\"bin/x remote"');
    expect(() => splitWords(`app exec 'x`)).toThrow(/unterminated single quote/);
  });

  it('expands an alias into its words followed by the extra arguments; a deploy.yml alias replaces the built-in console', () => {
    const config = { release: { name: 'shop', mixEnv: 'prod' } };
    expect(expandAlias(['migrate', '-d', 'staging'], { migrate: 'app exec "bin/shop eval Migrate.run"' }, config)?.argv).toEqual(['app', 'exec', 'bin/shop eval Migrate.run', '-d', 'staging']);
    expect(expandAlias(['console', '--hosts', 'web2'], {}, config)?.argv).toEqual(['app', 'exec', '--interactive', 'bin/shop remote', '--hosts', 'web2']);
    expect(expandAlias(['console'], { console: 'app exec -i "bin/shop remote --x"' }, config)?.argv).toEqual(['app', 'exec', '-i', 'bin/shop remote --x']);
    expect(expandAlias(['deplyo'], { migrate: 'app exec x' }, config)).toBeUndefined();
  });
});

describe('aliases at config load', () => {
  const base = { service: 'shop', servers: ['web1'] };

  it('refuses an alias named like a command, naming the alias', () => {
    expect(() => validateDeployConfig({ ...base, aliases: { deploy: 'app exec x', fine: 'app details' } })).toThrow(/aliases\/deploy: alias "deploy" is named like the xamal command "deploy"; give it another name/);
  });

  it('lets an alias named console replace the built-in one', () => {
    expect(validateDeployConfig({ ...base, aliases: { console: 'app exec -i "bin/shop remote"' } }).aliases).toEqual({ console: 'app exec -i "bin/shop remote"' });
  });

  it('reserves exactly the first words of the command table (and help), never a built-in alias', () => {
    const words = new Set([...COMMANDS.filter((c) => !c.alias).map((c) => c.words[0]!), 'help']);
    expect([...COMMAND_WORDS].sort()).toEqual([...words].sort());
    expect(COMMAND_WORDS).not.toContain('console');
  });

  it("the docs example's aliases expand to commands whose flags exist", () => {
    const { config } = parseExample('aliases', {});
    expect(Object.keys(config.aliases).length).toBeGreaterThan(0);
    for (const name of Object.keys(config.aliases)) {
      const argv = expandAlias([name], config.aliases, config)!.argv;
      const found = findCommand(argv);
      expect(found?.entry.words, name).toEqual(['app']);
      expect(() => parseFlags(found!.rest, APP_FLAGS, 'usage'), name).not.toThrow();
    }
  });
});

describe('xamal <alias> through the CLI', () => {
  let root: string;
  const startDir = process.cwd();
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'xamal-aliases-'));
    process.chdir(root);
    await mkdir(join(root, 'config'));
    await writeFile(
      join(root, 'config/deploy.yml'),
      ['service: shop', 'servers: [web1.example.com, web2.example.com]', 'aliases:', '  settings: config --json', '  nothing: frobnicate now', '  loop: console', ''].join('\n'),
    );
    await writeFile(join(root, 'config/deploy.staging.yml'), 'aliases:\n  staged: config\n');
  });
  afterEach(async () => {
    process.chdir(startDir);
    await rm(root, { recursive: true, force: true });
  });

  async function run(argv: string[], terminal?: Terminal) {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { out: (t) => void out.push(t), err: (t) => void err.push(t), interrupted: () => new Promise<string>(() => {}), ...(terminal ? { terminal: () => terminal } : {}) };
    const code = await main(argv, io, { debug: false });
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  }

  it('runs the command an alias stands for, with the extra arguments after its words', async () => {
    const r = await run(['settings']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ service: 'shop', aliases: { settings: 'config --json' } });
  });

  it('finds an alias of the destination named by -d among the extra arguments', async () => {
    const r = await run(['staged', '-d', 'staging', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ destination: 'staging', service: 'shop' });
  });

  it('an alias expanding to no command is an error naming the alias; so is one naming another alias', async () => {
    const r = await run(['nothing']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('xamal: alias "nothing" expands to "frobnicate now", which is not a xamal command');
    const loop = await run(['loop']);
    expect(loop.stderr).toBe('xamal: alias "loop" expands to "console", which is not a xamal command (an alias stands for a command, not another alias)');
  });

  it('an unknown word that is no alias either is an unknown command, suggesting a near alias', async () => {
    const r = await run(['setings']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^xamal: unknown command "setings"; did you mean "settings"\?/);
  });

  it('a built-in command reads no deploy.yml: a broken one does not stop `version`', async () => {
    await writeFile(join(root, 'config/deploy.yml'), 'service: [broken\n');
    expect((await run(['version'])).code).toBe(0);
    expect((await run(['settings'])).stderr).toMatch(/^xamal: invalid configuration/);
  });

  it('console is app exec -i "bin/<release> remote" on the primary host; --hosts naming two hosts is a usage error', async () => {
    const r = await run(['console', '--hosts', 'web*', '--dry-run'], {} as Terminal);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('xamal: --interactive runs on one host; --hosts selects 2 (web1.example.com, web2.example.com)');
  });

  it('app exec -i refuses --json and any action but exec', async () => {
    expect((await run(['app', 'exec', '-i', '--json', 'x'], {} as Terminal)).stderr).toMatch(/^xamal: --interactive: cannot be combined with --json/);
    expect((await run(['app', 'details', '-i'], {} as Terminal)).stderr).toMatch(/^xamal: --interactive: only with exec/);
  });
});
