import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../localservices/config.ts';
import { flagCommand } from '../../../cli/args.ts';
import { commandHelpText, flagLabel, hIsHelp, shellWords, usageWords, wrapText, type FlagTable } from '../../../cli/help.ts';
import type { CliCommand, Io } from '../../../cli/io.ts';
import { main } from '../../../cli/main.ts';
import { COMMANDS, helpText } from '../../../cli/table.ts';
import { isXamalError } from '../../../core/index.ts';

function memoryIo(columns?: number) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => void out.push(t), err: (t) => void err.push(t), interrupted: () => new Promise<string>(() => {}), columns };
  return { io, stdout: () => out.join('\n'), stderr: () => err.join('\n') };
}

async function run(argv: string[], columns?: number) {
  const m = memoryIo(columns);
  const code = await main(argv, m.io, { debug: false });
  return { code, stdout: m.stdout(), stderr: m.stderr() };
}

/** Every command of the table with its module loaded. */
const loaded: { name: string; cmd: CliCommand; summary: string }[] = await Promise.all(COMMANDS.flatMap((e) => (e.load ? [e.load] : []).map(async (load) => ({ name: e.words.join(' '), cmd: await load(), summary: e.summary }))));

/** What is wrong with a flag table, as help would show it: each problem a sentence. */
function flagTableProblems(flags: FlagTable): string[] {
  const problems: string[] = [];
  const shorts = new Map<string, string>();
  for (const [name, f] of Object.entries(flags)) {
    if (!f.description?.trim()) problems.push(`--${name} has no description`);
    if (f.type === 'string' && !f.valueName) problems.push(`--${name} takes a value but names none (valueName)`);
    if (f.type === 'boolean' && f.valueName) problems.push(`--${name} takes no value but names one`);
    if (f.short !== undefined && !/^[a-zA-Z]$/.test(f.short)) problems.push(`--${name}: short form -${f.short} is not one letter`);
    if (f.short && shorts.has(f.short)) problems.push(`-${f.short} is both --${shorts.get(f.short)} and --${name}`);
    if (f.short) shorts.set(f.short, name);
  }
  return problems;
}

/** Help lines longer than `width`, but for a word (a target tuple) longer than any line could hold, alone on its line. */
const overlong = (text: string, width: number) => text.split('\n').filter((l) => l.length > width && /\S\s+\S/.test(l.trim()));

/** Kamal's commands that act on hosts: there -h is --hosts; everywhere else it is help. */
const HOST_COMMANDS = ['deploy', 'redeploy', 'rollback', 'prune', 'app', 'setup', 'server bootstrap', 'server exec', 'lock', 'audit', 'caddy', 'remove', 'details', 'canary'];

describe('the flag tables help reads', () => {
  it('give every flag of every command a description, a value name when it takes a value, and distinct one-letter short forms', () => {
    const problems = loaded.flatMap(({ name, cmd }) => flagTableProblems(cmd.help.flags).map((p) => `xamal ${name}: ${p}`));
    expect(problems).toEqual([]);
  });

  it('are what each command parses: an unknown flag is refused as a usage error by every command, so no parse table lacks a description', async () => {
    for (const { name, cmd } of loaded) {
      const err = await cmd.run(['--zz-not-a-flag'], memoryIo().io).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isXamalError(err) && err.code === 'usage' ? err.message.split('\n')[0] : `xamal ${name}: ${String(err)}`).toBe('unknown flag --zz-not-a-flag');
    }
  });

  it('catch a flag without a description (the check above can fail), before anything runs', async () => {
    expect(flagTableProblems({ 'skip-hooks': { type: 'boolean', short: 'H', description: '' }, since: { type: 'string', description: 'from when' } })).toEqual([
      '--skip-hooks has no description',
      '--since takes a value but names none (valueName)',
    ]);
    let ran = false;
    const cmd = flagCommand({ usage: 'xamal zz', flags: { 'skip-hooks': { type: 'boolean', short: 'H', description: ' ' } } }, async () => {
      ran = true;
      return 0;
    });
    await expect(cmd.run([], memoryIo().io)).rejects.toThrow('flag --skip-hooks has no description for --help');
    expect(ran).toBe(false);
  });
});

describe('xamal COMMAND --help', () => {
  it('prints usage, summary, each flag with short and long form, value name, default and description, and examples', async () => {
    const r = await run(['audit', '--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^Usage: xamal audit \[-n LINES\] \[-d DESTINATION\]/);
    expect(r.stdout).toContain("\n\nPrint the last lines of each host's audit log");
    expect(r.stdout).toMatch(/\n {2}-n, --lines LINES +The last LINES entries of each host's audit log\s+\[default: 50\]\n/);
    expect(r.stdout).toMatch(/\n {2}-h, --hosts HOSTS +Only these hosts .*\n.*\[repeatable\]\n/);
    expect(r.stdout).toMatch(/\n {6}--dry-run +Change nothing/);
    expect(r.stdout).toMatch(/\n {6}--help +Print this help \(-h is --hosts here\)\n/);
    expect(r.stdout).toMatch(/\nExamples:\n {2}The last 50 entries of each host's audit log:\n {4}xamal audit\n/);
    // The command's own flags first, then those most commands share.
    expect(r.stdout.indexOf('-n, --lines')).toBeLessThan(r.stdout.indexOf('-d, --destination'));
  });

  it('lists every flag of every command', async () => {
    for (const { name, cmd } of loaded) {
      const text = (await run([...name.split(' '), '--help'])).stdout;
      for (const [long, f] of Object.entries(cmd.help.flags)) expect(text, `xamal ${name} --help`).toContain(flagLabel(long, f).trim());
    }
  });

  it('is the same as xamal help COMMAND', async () => {
    expect((await run(['help', 'farm', 'up'])).stdout).toBe((await run(['farm', 'up', '--help'])).stdout);
    expect((await run(['help', 'deploy'])).stdout).toMatch(/^Usage: xamal deploy /);
  });

  it.each([80, 60, 50])('wraps every command’s help and the list to %i columns', async (columns) => {
    for (const { name } of loaded) {
      const r = await run([...name.split(' '), '--help'], columns);
      expect(overlong(r.stdout, columns), `xamal ${name} --help`).toEqual([]);
    }
    expect(overlong((await run(['--help'], columns)).stdout, columns)).toEqual([]);
  });

  it('wraps to 80 columns without a terminal, and never narrower than 40', async () => {
    const wide = (await run(['build', '--help'])).stdout.split('\n');
    expect(Math.max(...wide.map((l) => l.length))).toBeLessThanOrEqual(80);
    expect(Math.max(...wide.map((l) => l.length))).toBeGreaterThan(60);
    expect(overlong((await run(['build', '--help'], 10)).stdout, 40)).toEqual([]);
  });

  it('aligns the command list: every summary starts in one column, continuation lines under it', () => {
    const lines = helpText([], 80).split('Commands:\n')[1]!.split('\n\n')[0]!.split('\n');
    const column = lines[0]!.indexOf('Deploy:');
    expect(column).toBeGreaterThan(2);
    for (const l of lines) expect(l.slice(0, column).trim() === '' || l[column - 1] === ' ', l).toBe(true);
    for (const l of lines) expect(l.slice(column, column + 1), l).not.toBe(' ');
  });

  it('shows a group’s commands for xamal GROUP --help, and refuses an unknown command after help with a suggestion', async () => {
    const group = await run(['farm', '-h']);
    expect(group.code).toBe(0);
    expect(group.stdout).toContain('  farm worker  ');
    expect(group.stdout).not.toContain('  deploy  ');
    const bad = await run(['help', 'deplyo']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.split('\n')[0]).toBe('xamal: unknown command "deplyo"; did you mean "deploy"?');
  });
});

describe('-h', () => {
  it('is --hosts on the commands that act on hosts, and help on every other command', () => {
    for (const { name, cmd } of loaded) expect(hIsHelp(cmd.help.flags), `xamal ${name}`).toBe(!HOST_COMMANDS.includes(name));
  });

  it.each(['build', 'farm images', 'init', 'config', 'docs', 'secrets', 'target parse', 'host probe', 'version', 'build logs'])('prints the help of xamal %s', async (name) => {
    const words = name.split(' ');
    const r = await run([...words, '-h']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: xamal ${words.join(' ')}`));
    expect(r.stdout).toMatch(/\n {2}-h, --help +Print this help\n/);
  });

  it('asks a host command for hosts, and says that --help is the help there', async () => {
    const r = await run(['deploy', '-h']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('xamal: --hosts (-h) expects a value: HOSTS (-h is --hosts here; --help prints the help)');
    expect((await run(['deploy', '-h', 'web1', '--help'])).stdout).toMatch(/^Usage: xamal deploy /);
  });

  it('leaves a --help after the command server exec runs, and after --, to that command', async () => {
    const exec = await run(['server', 'exec', 'uname', '--help', '--dry-run', '-c', '/nonexistent/deploy.yml']);
    expect(exec.stdout).not.toMatch(/^Usage:/);
    expect(exec.code).not.toBe(0);
    expect((await run(['server', 'exec', '--help'])).stdout).toMatch(/^Usage: xamal server exec /);
    const afterDashes = await run(['target', 'parse', '--', '--help']);
    expect(afterDashes.stdout).not.toMatch(/^Usage:/);
  });
});

/** The files and packages `file` loads before it runs (static imports, followed; `import()` left out: loaded on demand). */
function staticClosure(file: string, seen = new Set<string>(), packages = new Set<string>()): { files: Set<string>; packages: Set<string> } {
  if (seen.has(file)) return { files: seen, packages };
  seen.add(file);
  const source = readFileSync(join(PROJECT_ROOT, file), 'utf8');
  for (const m of source.matchAll(/^\s*(?:import|export)\s(?:[^;]*?\sfrom\s)?['"]([^'"]+)['"]/gm)) {
    const spec = m[1]!;
    if (/^(?:import|export)\s+type\s/.test(m[0].trim())) continue;
    if (spec.startsWith('.')) staticClosure(relative(PROJECT_ROOT, resolve(dirname(join(PROJECT_ROOT, file)), spec)), seen, packages);
    else if (!spec.startsWith('node:')) packages.add(spec);
  }
  return { files: seen, packages };
}

describe('xamal --help loads no command', () => {
  it('the exit point and the table import no part of the farm, the builder or the deployer, and none of their packages', () => {
    const { files, packages } = staticClosure('cli/main.ts');
    expect([...files].filter((f) => !/^(cli\/[a-z-]+\.ts|core\/|package\.json)/.test(f) || f.startsWith('cli/commands/'))).toEqual([]);
    expect([...packages].filter((p) => /bullmq|ioredis|dockerode|fastify|ssh2|@aws-sdk|tar-stream/.test(p))).toEqual([]);
  });
});

describe('wrapping', () => {
  it('breaks at spaces within the width, with a hanging indent, keeping a word too long whole', () => {
    expect(wrapText('aaa bbb ccc ddd', 9, '- ', '  ')).toEqual(['- aaa bbb', '  ccc ddd']);
    expect(wrapText('short averyveryverylongword end', 10)).toEqual(['short', 'averyveryverylongword', 'end']);
    expect(wrapText('one\ntwo three', 20, '', '  ')).toEqual(['one', '  two three']);
  });

  it('keeps a usage line’s bracketed groups and an example’s quoted parts and flag values whole', () => {
    expect(usageWords('xamal lock acquire -m MESSAGE [--lock-wait SECONDS] (--git URL (--commit SHA | --ref REF))')).toEqual([
      'xamal', 'lock', 'acquire', '-m', 'MESSAGE', '[--lock-wait SECONDS]', '(--git URL (--commit SHA | --ref REF))',
    ]);
    expect(shellWords(`xamal app exec -r web 'bin/shop eval "X.y()"' --json`)).toEqual(['xamal', 'app', 'exec', '-r web', `'bin/shop eval "X.y()"'`, '--json']);
  });

  it('continues a long example as a shell would (a backslash at the end of each line but the last)', () => {
    const text = commandHelpText('Summary', { usage: 'xamal zz', flags: {}, examples: [['xamal zz --alpha one --beta two --gamma three --delta four', 'Does it']] }, 40);
    expect(text.split('Examples:\n')[1]).toBe('  Does it:\n    xamal zz --alpha one --beta two \\\n      --gamma three --delta four');
  });
});
