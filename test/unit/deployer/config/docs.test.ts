import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { docSections, docText, EXAMPLES_DIR, parseExample } from '../../../../deployer/config/docs.ts';
import { DeployFileSchema } from '../../../../deployer/config/schema.ts';

const ENV = { SSH_PRIVATE_KEY: '-----BEGIN OPENSSH PRIVATE KEY-----' };
const TOP_LEVEL = Object.keys(DeployFileSchema.in.shape);

describe('documented examples', () => {
  const sections = docSections();

  it('has a section for every part of deploy.yml, overview first', () => {
    expect(sections[0]!.name).toBe('overview');
    expect(sections.map((s) => s.name).sort()).toEqual(
      ['aliases', 'boot', 'builder', 'caddy', 'env', 'farm', 'health_check', 'hooks', 'overview', 'packages', 'release', 'rollout', 'secrets', 'servers', 'ssh'].sort(),
    );
    for (const s of sections) expect(s.summary, s.name).toMatch(/^[A-Z].+: .+/);
  });

  it.each(docSections().map((s) => s.name))('validates the %s example against the schema', (name) => {
    const { raw, config } = parseExample(name, ENV);
    expect(Object.keys(raw).length).toBeGreaterThan(0);
    for (const key of Object.keys(raw)) expect(TOP_LEVEL).toContain(key);
    expect(config.service).toBeTruthy();
  });

  it('documents every top-level key in some example', () => {
    const documented = new Set(docSections().flatMap((s) => Object.keys(parse(readFileSync(`${EXAMPLES_DIR}${s.name}.yml`, 'utf8')) as object)));
    expect(TOP_LEVEL.filter((k) => !documented.has(k))).toEqual([]);
  });

  it('every key shown in an example takes effect (the example is not the defaults)', () => {
    expect(parseExample('servers', ENV).config.roles.map((r) => r.name)).toEqual(['web', 'jobs']);
    expect(parseExample('ssh', ENV).config.ssh.proxy).toEqual({ user: 'deploy', host: 'bastion.example.com', port: undefined });
    expect(parseExample('boot', ENV).config.boot).toEqual({ limit: { percent: 25 }, wait: 2 });
    expect(parseExample('rollout', ENV).config.rollout).toEqual({ watchS: 60, intervalS: 3, failures: 3, max5xxPercent: 5, minRequests: 50 });
    expect(parseExample('farm', ENV).config.farm?.target).toEqual({ otp: '27', elixir: '1.18', distro: 'debian12' });
    expect(parseExample('farm', ENV).config.farm?.publicKeys).toEqual(['ed25519:E04TLiElgloJUfASIuQ2alelYfpbwkpIlhzB0aNsBtw=', 'ed25519:SL4y4RcqzVySln9BVUDUn91ikZZf4L2uEhcCrYRky8Y=']);
  });

  it('refuses section names that are not plain words', () => {
    expect(() => docText('../load')).toThrow(/no docs section "..\/load"; sections: aliases, boot/);
  });
});
