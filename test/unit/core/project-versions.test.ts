import { describe, expect, it } from 'vitest';
import { mixElixirRequirement, parseElixirRequirement, parseToolVersions, ValidationError } from '../../../core/index.ts';

describe('.tool-versions (asdf, mise)', () => {
  it('takes the first version of the erlang and elixir lines, dropping the -otp-NN of a precompiled Elixir, ignoring comments and other tools', () => {
    expect(parseToolVersions('# pinned\nnodejs 20.11.0\nerlang 27.3.4.1 26.2.5\nelixir 1.18.3-otp-27   # for CI\n')).toEqual({ erlang: '27.3.4.1', elixir: '1.18.3' });
    expect(parseToolVersions('elixir 1.14.0\n')).toEqual({ elixir: '1.14.0' });
    expect(parseToolVersions('')).toEqual({});
  });

  it('refuses ref:, path: and system versions, naming the file and line', () => {
    for (const line of ['erlang ref:OTP-27', 'elixir path:/opt/elixir', 'erlang system', 'elixir']) {
      try {
        parseToolVersions(`nodejs 20\n${line}\n`, 'app/.tool-versions');
        expect.unreachable(line);
      } catch (err) {
        expect(err).toBeInstanceOf(ValidationError);
        expect((err as ValidationError).issues[0]!.path).toBe('app/.tool-versions:2');
      }
    }
  });
});

describe("mix.exs's elixir: requirement", () => {
  it('reads the string literal of the project definition', () => {
    const mix = 'defmodule Hello.MixProject do\n  def project do\n    [app: :hello, version: "0.1.0", elixir: "~> 1.15", deps: deps()]\n  end\nend\n';
    expect(mixElixirRequirement(mix)).toBe('~> 1.15');
    expect(mixElixirRequirement('[\n  app: :x,\n  elixir: ">= 1.14.0 and < 1.18.0",\n]')).toBe('>= 1.14.0 and < 1.18.0');
    expect(mixElixirRequirement('[app: :x, my_elixir: "1.0"]')).toBeUndefined();
    expect(mixElixirRequirement('[app: :x]')).toBeUndefined();
  });
});

describe("Elixir's requirement grammar", () => {
  const allows = (req: string, v: string) => parseElixirRequirement(req).allows(v);

  it('~> with two parts allows up to the next major, with three parts up to the next minor', () => {
    expect([allows('~> 1.15', '1.15.0'), allows('~> 1.15', '1.18.3'), allows('~> 1.15', '1.14.9'), allows('~> 1.15', '2.0.0')]).toEqual([true, true, false, false]);
    expect([allows('~> 1.14.2', '1.14.2'), allows('~> 1.14.2', '1.14.9'), allows('~> 1.14.2', '1.15.0'), allows('~> 1.14.2', '1.14.1')]).toEqual([true, true, false, false]);
  });

  it('and binds tighter than or; a bare version means ==', () => {
    expect(allows('>= 1.14.0 and < 1.18.0', '1.17.3')).toBe(true);
    expect(allows('>= 1.14.0 and < 1.18.0', '1.18.3')).toBe(false);
    expect(allows('== 1.10.3 or >= 1.18.0 and < 1.19.0', '1.10.3')).toBe(true);
    expect(allows('== 1.10.3 or >= 1.18.0 and < 1.19.0', '1.18.3')).toBe(true);
    expect(allows('== 1.10.3 or >= 1.18.0 and < 1.19.0', '1.14.0')).toBe(false);
    expect(allows('1.14.0', '1.14.0')).toBe(true);
    expect(allows('!= 1.14.0', '1.14.0')).toBe(false);
  });

  it('refuses what Elixir refuses, naming the field', () => {
    for (const bad of ['', '~>', '>= 1.14', 'latest', '~> 1', '1.14.0 and', '>=1.14.0 || <2.0.0']) {
      expect(() => parseElixirRequirement(bad, 'mix.exs')).toThrow(ValidationError);
    }
  });
});
