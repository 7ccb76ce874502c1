import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { DEPLOY_YML_STUB, initPlan, phoenixProject } from '../../../../deployer/config/init.ts';
import { validateDeployConfig } from '../../../../deployer/config/load.ts';
import { parseDotenv } from '../../../../deployer/secrets.ts';

const MIX_EXS = `defmodule ShopFront.MixProject do
  use Mix.Project

  def project do
    [app: :shop_front, version: "0.1.0", elixir: "~> 1.15", deps: deps()]
  end
end
`;
const KEY = 'k'.repeat(60) + '+/==';

describe('xamal init --phoenix', () => {
  it('writes a deploy.yml a Phoenix release serves with: endpoint on, its host, health at /, migrations before the switch', () => {
    const plan = initPlan(undefined, undefined, phoenixProject(MIX_EXS, KEY));
    const yml = plan.find((f) => f.path === 'config/deploy.yml')!.content;
    const config = validateDeployConfig(parse(yml));
    expect(config.service).toBe('shop-front');
    expect(config.release.name).toBe('shop_front');
    expect(config.env.clear).toMatchObject({ PHX_SERVER: 'true', PHX_HOST: 'shop-front.example.com' });
    expect(config.env.secret.map((x) => x.name)).toEqual(['SECRET_KEY_BASE', 'DATABASE_URL']);
    expect(config.caddy.hosts).toEqual(['shop-front.example.com']);
    expect(config.healthCheck.path).toBe('/');
    expect(config.releaseCommand).toBe('bin/shop_front eval "ShopFront.Release.migrate()"');
  });

  it('keeps the SECRET_KEY_BASE it made in .xamal/secrets (0600), leaves DATABASE_URL to fill in', () => {
    const secrets = initPlan(undefined, undefined, phoenixProject(MIX_EXS, KEY)).find((f) => f.path === '.xamal/secrets')!;
    expect(secrets.mode).toBe(0o600);
    const { entries, issues } = parseDotenv(secrets.content, '.xamal/secrets');
    expect(issues).toEqual([]);
    expect(entries.map((e) => [e.name, e.parts])).toEqual([['SECRET_KEY_BASE', [{ text: KEY }]]]);
  });

  it('refuses a mix.exs without an app name or MixProject module, naming what it lacks', () => {
    expect(() => phoenixProject('defmodule Shop.MixProject do\nend\n', KEY)).toThrow('mix.exs: expected `app: :name` in project/0 and a `defmodule <App>.MixProject` (found no app, module Shop)');
    expect(() => phoenixProject('[app: :shop]', KEY)).toThrow(/found app shop, no MixProject module/);
  });

  it('without --phoenix writes the generic stub', () => {
    expect(initPlan().find((f) => f.path === 'config/deploy.yml')!.content).toBe(DEPLOY_YML_STUB);
  });
});
