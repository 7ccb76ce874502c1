import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BuildAssetsSchema, BuildEnvSchema, BuildSecretsSchema, openSecrets, redactSecrets, sealSecrets, secretsKeyFrom } from '../../../../core/contracts/build-settings.ts';
import { buildJobId, BuildJobSchema } from '../../../../core/contracts/build-job.ts';
import { isXamalError } from '../../../../core/index.ts';

const key = randomBytes(32);
const secrets = { HEX_API_KEY: 'hexkey-0123456789', GIT_TOKEN: 'ghp_abcdefgh' };

describe('build secrets: sealed in the job, opened by the worker, cut from what the build prints', () => {
  it('seals to text holding no value, and opens with the same key only, naming the setting otherwise', () => {
    const sealed = sealSecrets(key, secrets);
    expect(sealed).toMatch(/^v1\./);
    for (const v of Object.values(secrets)) expect(sealed).not.toContain(v);
    expect(opened(sealed)).toEqual(secrets);
    expect(sealSecrets(key, secrets)).not.toBe(sealed);
    const other = (() => { try { openSecrets(randomBytes(32), sealed); } catch (e) { return e; } })();
    expect(isXamalError(other) && other.message).toBe("this build's secrets were sealed with another key (or altered): the API and every worker of a farm must share XAMAL_BUILD_SECRETS_KEY");
    expect(() => openSecrets(undefined, sealed)).toThrow(/worker has no key to open them/);
    expect(() => openSecrets(key, sealed.slice(0, -2) + 'AA')).toThrow(/sealed with another key \(or altered\)/);
    expect(() => secretsKeyFrom('abc')).toThrow(/XAMAL_BUILD_SECRETS_KEY: expected 64 hex characters/);
  });

  it('cuts every value from text, the longest first', () => {
    expect(redactSecrets('token=ghp_abcdefgh key=hexkey-0123456789 again ghp_abcdefgh', secrets)).toBe('token=[secret GIT_TOKEN] key=[secret HEX_API_KEY] again [secret GIT_TOKEN]');
    expect(redactSecrets('x-abcd-abcdef', { A: 'abcd', B: 'abcd-abcdef' })).toBe('x-[secret B]');
    expect(redactSecrets('nothing', undefined)).toBe('nothing');
  });

  it('refuses names the farm sets itself, short values and too many, naming the field', () => {
    for (const name of ['HOME', 'PATH', 'MIX_ENV', 'https_proxy', 'XAMAL_X']) expect(BuildEnvSchema.safeParse({ [name]: 'v' }).success).toBe(false);
    expect(BuildEnvSchema.safeParse({ 'BAD-NAME': 'v' }).success).toBe(false);
    expect(BuildEnvSchema.parse({ NODE_ENV: 'production' })).toEqual({ NODE_ENV: 'production' });
    const short = BuildSecretsSchema.safeParse({ K: 'abc' });
    expect(short.error?.issues[0]).toMatchObject({ path: ['K'], message: expect.stringContaining('at least 4 characters') });
    expect(BuildSecretsSchema.safeParse(Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`S${i}`, 'value']))).success).toBe(false);
  });

  it('a job\'s ID depends on its environment, never on its secrets', () => {
    const job = (over: object) => BuildJobSchema.parse({ app: 'shop', source: { kind: 'git', url: 'file:///r', commit: 'c'.repeat(40) }, target: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', ...over });
    expect(buildJobId(job({ sealedSecrets: sealSecrets(key, secrets) }))).toBe(buildJobId(job({})));
    expect(buildJobId(job({ env: { A: '1', B: '2' } }))).toBe(buildJobId(job({ env: { B: '2', A: '1' } })));
    expect(buildJobId(job({ env: { A: '1' } }))).not.toBe(buildJobId(job({})));
  });

  it('assets inputs are path patterns under the project root, kept sorted once each; a job\'s ID depends on them, not on their order', () => {
    expect(BuildAssetsSchema.parse({ inputs: ['lib/**/*.heex', 'assets/**', 'assets/**'] })).toEqual({ inputs: ['assets/**', 'lib/**/*.heex'] });
    const problem = (inputs: unknown) => BuildAssetsSchema.safeParse({ inputs }).error?.issues[0];
    for (const bad of ['/etc/**', '../x', 'assets/../../x', 'assets//js', './assets', 'assets/'])
      expect(problem([bad]), bad).toMatchObject({ path: ['inputs', 0], message: 'expected a path relative to the project root, without empty, "." or ".." parts' });
    expect(problem(['assets/{js,css}'])).toMatchObject({ path: ['inputs', 0], message: expect.stringContaining('expected a path pattern of letters, digits') });
    expect(problem([])).toMatchObject({ message: expect.stringContaining('expected at least one path pattern') });
    expect(BuildAssetsSchema.safeParse({ inputs: ['assets/**'], outputs: 'x' }).success).toBe(false);
    const job = (over: object) => BuildJobSchema.parse({ app: 'shop', source: { kind: 'git', url: 'file:///r', commit: 'c'.repeat(40) }, target: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', ...over });
    expect(buildJobId(job({ assets: { inputs: ['a/**', 'b/**'] } }))).toBe(buildJobId(job({ assets: { inputs: ['b/**', 'a/**'] } })));
    expect(buildJobId(job({ assets: { inputs: ['a/**'] } }))).not.toBe(buildJobId(job({})));
  });
});

function opened(sealed: string) {
  return openSecrets(key, sealed);
}
