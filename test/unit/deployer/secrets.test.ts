import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger, LocalExecutor, RecordingExecutor, sensitive, SYSTEM_ENV, ValidationError, XamalError } from '../../../core/index.ts';
import { validateDeployConfig } from '../../../deployer/config/load.ts';
import { loadSecrets, parseDotenv, releaseEnv, secretsFiles, Secrets } from '../../../deployer/secrets.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'xamal-secrets-'));
  await mkdir(join(root, '.xamal'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const write = (name: string, text: string) => writeFile(join(root, '.xamal', name), text);
const load = (destination?: string, env: Record<string, string> = {}) =>
  loadSecrets({ root, secretsPath: '.xamal/secrets', destination, env: { ...SYSTEM_ENV, ...env }, executor: new LocalExecutor({ ...SYSTEM_ENV, ...env }) });
const reveal = (s: Secrets) => Object.fromEntries(s.names().map((n) => [n, s.require(n).reveal()]));

async function failure(p: Promise<unknown>): Promise<XamalError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof XamalError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('secrets files', () => {
  it('reads secrets-common then secrets, or secrets.<destination> instead, later files winning', async () => {
    expect(secretsFiles('.xamal/secrets', undefined)).toEqual(['.xamal/secrets-common', '.xamal/secrets']);
    expect(secretsFiles('.xamal/secrets', 'staging')).toEqual(['.xamal/secrets-common', '.xamal/secrets.staging']);
    await write('secrets-common', 'SHARED=common\nDB=common-db\n');
    await write('secrets', 'DB=default-db\n');
    await write('secrets.staging', 'DB=staging-db\n');
    expect(reveal(await load())).toEqual({ SHARED: 'common', DB: 'default-db' });
    const staging = await load('staging');
    expect(reveal(staging)).toEqual({ SHARED: 'common', DB: 'staging-db' });
    expect(staging.files).toEqual(['.xamal/secrets-common', '.xamal/secrets.staging']);
  });

  it('expands $VAR and ${VAR} from earlier lines, then the environment; single quotes stay literal', async () => {
    await write(
      'secrets',
      [
        '# comment',
        'export USER_NAME=app',
        'PASSWORD="p@ss word"',
        'URL=postgres://${USER_NAME}:$PASSWORD@$DB_HOST/db  # trailing comment',
        "LITERAL='$PASSWORD and ${X}'",
        'ESCAPED="cost: \\$5\\nnext line"',
        'MULTI="line1',
        'line2"',
        'EMPTY=',
      ].join('\n'),
    );
    expect(reveal(await load(undefined, { DB_HOST: 'db.internal' }))).toEqual({
      USER_NAME: 'app',
      PASSWORD: 'p@ss word',
      URL: 'postgres://app:p@ss word@db.internal/db',
      LITERAL: '$PASSWORD and ${X}',
      ESCAPED: 'cost: $5\nnext line',
      MULTI: 'line1\nline2',
      EMPTY: '',
    });
  });

  it('substitutes $(command) output, run with sh -c, seeing earlier secrets and the environment', async () => {
    await write('secrets', 'TOKEN=abc123\nFROM_CMD=$(printf "%s-%s" "$TOKEN" "$FROM_ENV")\nNESTED="x$(echo $(echo inner))y"\n');
    expect(reveal(await load(undefined, { FROM_ENV: 'env' }))).toEqual({ TOKEN: 'abc123', FROM_CMD: 'abc123-env', NESTED: 'xinnery' });
  });

  it('runs substitutions as sh -c with the command text as one argument, never splicing values into it', async () => {
    await write('secrets', 'A=$(op read "op://vault/item")\n');
    const exec = new RecordingExecutor(() => ({ stdout: 'value\n' }));
    const s = await loadSecrets({ root, secretsPath: '.xamal/secrets', destination: undefined, env: {}, executor: exec });
    expect(exec.commands.map((c) => c.argv)).toEqual([['sh', '-c', 'op read "op://vault/item"']]);
    expect(s.require('A').reveal()).toBe('value');
  });

  it('lists every unset variable and failed command at once, with file and line, and no secret value', async () => {
    await write('secrets-common', 'KNOWN=hunter2-very-secret\n');
    await write('secrets', 'A=$MISSING_ONE\nB=ok\nC=$(echo "leaked hunter2-very-secret" >&2; exit 3)\nD=${MISSING_TWO}\nnot a line\n');
    const err = await failure(load());
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message.split('\n')).toEqual([
      'invalid secrets',
      '.xamal/secrets:5: expected NAME=value',
      '.xamal/secrets:1: A: variable MISSING_ONE is not set (neither earlier in the secrets nor in the environment)',
      '.xamal/secrets:3: C: $(echo "leaked hunter2-very-secret" >&2; exit 3) exited 3: leaked [REDACTED]',
      '.xamal/secrets:4: D: variable MISSING_TWO is not set (neither earlier in the secrets nor in the environment)',
    ].map((l) => l.replace('echo "leaked hunter2-very-secret"', 'echo "leaked [REDACTED]"')));
    expect(err.message).not.toContain('hunter2-very-secret');
  });

  it('has no secrets and says so when no file exists', async () => {
    const s = await load();
    expect(s.names()).toEqual([]);
    expect(() => s.require('X')).toThrow('secret X not found (no secrets file exists)');
  });

  it('prints values as [REDACTED] in strings, JSON, inspection and logs', async () => {
    await write('secrets', 'DB_PASSWORD=correct-horse-battery\n');
    const s = await load();
    const lines: string[] = [];
    const logger = createLogger({ destination: new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) }) });
    logger.info({ secrets: s, value: s.require('DB_PASSWORD'), all: s.asEnv(), nested: { x: s.get('DB_PASSWORD') } }, 'secrets loaded');
    const shown = [String(s.require('DB_PASSWORD')), JSON.stringify(s), JSON.stringify(s.asEnv()), (await import('node:util')).inspect(s, { depth: 5 }), ...lines].join('\n');
    expect(shown).toContain('[REDACTED]');
    expect(shown).not.toContain('correct-horse-battery');
    expect(s.redact('connect with correct-horse-battery now')).toBe('connect with [REDACTED] now');
  });
});

describe('releaseEnv', () => {
  const config = validateDeployConfig({
    service: 'app',
    servers: { web: ['a.example.com', { 'b.example.com': 'canary' }], jobs: { hosts: ['c.example.com'], env: { secret: ['JOBS_KEY'] }, tags: ['eu'] } },
    env: { clear: { MODE: 'base', DB_URL: 'clear-first' }, secret: ['DB_URL:PROD_DB_URL', 'SKB'], tags: { canary: { MODE: 'canary' }, eu: { clear: { REGION: 'eu' } } } },
  });
  const secrets = new Secrets(
    new Map(Object.entries({ PROD_DB_URL: 'postgres://prod', SKB: 'skb', JOBS_KEY: 'jk' }).map(([k, v]) => [k, sensitive(v)])),
    ['.xamal/secrets'],
  );

  it('layers top-level env, the role, then the host tags; aliases read their source secret', () => {
    const canary = releaseEnv(config, secrets, 'web', ['canary']);
    expect(canary.clear).toEqual({ MODE: 'canary' });
    expect(Object.fromEntries(Object.entries(canary.secret).map(([k, v]) => [k, v.reveal()]))).toEqual({ DB_URL: 'postgres://prod', SKB: 'skb' });
    const jobs = releaseEnv(config, secrets, 'jobs');
    expect(jobs.clear).toEqual({ MODE: 'base', REGION: 'eu' });
    expect(Object.keys(jobs.secret).sort()).toEqual(['DB_URL', 'JOBS_KEY', 'SKB']);
  });

  it('reports every missing secret with where it is asked for', () => {
    expect(() => releaseEnv(config, new Secrets(new Map(), ['.xamal/secrets']), 'jobs')).toThrow(
      'missing secrets\nenv/secret/DB_URL: secret PROD_DB_URL not found (read .xamal/secrets)\nenv/secret/SKB: secret SKB not found (read .xamal/secrets)\nservers/jobs/env/secret/JOBS_KEY: secret JOBS_KEY not found (read .xamal/secrets)',
    );
  });
});

describe('parseDotenv', () => {
  it('splits values into text, variables and commands', () => {
    expect(parseDotenv('A=x${B}y$C-$(cmd (nested))z\\$D', 'f').entries).toEqual([
      { name: 'A', line: 1, parts: [{ text: 'x' }, { variable: 'B' }, { text: 'y' }, { variable: 'C' }, { text: '-' }, { command: 'cmd (nested)' }, { text: 'z$D' }] },
    ]);
  });

  it('reports unterminated quotes and commands', () => {
    expect(parseDotenv('A="open\nB=1', 'f').issues).toEqual([{ path: 'f:1', message: 'unterminated double-quoted value of A' }]);
    expect(parseDotenv('A=$(echo', 'f').issues).toEqual([{ path: 'f:1', message: 'unterminated $(command)' }]);
  });
});
