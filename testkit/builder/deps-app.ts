import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { childEnv } from '../../localservices/config.ts';
import { git } from '../example-repo.ts';

/**
 * A Mix archive standing in for Hex where Hex cannot be downloaded (tests): Mix finds a `Hex` module,
 * starts it, and resolves dependencies that declare Hex packages through an SCM that accepts them and
 * fetches nothing, so each must be overridden by the project (path or git). Production farms install
 * Hex itself (XAMAL_HEX_ARCHIVE or HEX_BUILDS_URL, builder/mix-tools.ts).
 */
export const HEX_STANDIN_FILES: Record<string, string> = {
  'mix.exs': `defmodule XamalHexStandin.MixProject do
  use Mix.Project
  def project, do: [app: :xamal_hex_standin, version: "0.1.0", elixir: ">= 1.10.0"]
  def application, do: []
end
`,
  'lib/hex.ex': `defmodule Hex do
  @moduledoc "xamal's test stand-in for Hex: registers an SCM for Hex-style dependencies and fetches nothing."
  def start do
    Mix.SCM.append(Hex.StandinSCM)
    :ok
  end

  # Mix checks Hex's version against its own requirement.
  def version, do: "99.0.0-xamal-standin"
end

defmodule Hex.StandinSCM do
  @moduledoc "Accepts {:app, requirement} dependencies; the project overrides each with a path or git one."
  @behaviour Mix.SCM
  def fetchable?, do: false
  def format(_opts), do: "hex stand-in (fetches nothing)"
  def format_lock(_opts), do: nil
  def accepts_options(_app, opts), do: if(Keyword.has_key?(opts, :git) or Keyword.has_key?(opts, :path), do: nil, else: opts)
  def checked_out?(_opts), do: false
  def lock_status(_opts), do: :ok
  def equal?(a, b), do: a == b
  def managers(_opts), do: []
  def checkout(_opts), do: Mix.raise("the Hex stand-in fetches nothing: override this dependency with a path or git one")
  def update(opts), do: checkout(opts)
end
`,
};

/** The stand-in's archive file name (XAMAL_HEX_ARCHIVE names a file like it). */
export const HEX_STANDIN_ARCHIVE = 'xamal_hex_standin-0.1.0.ez';

/**
 * A project with real dependency shapes, all vendored as path dependencies: `inner` declares a
 * Hex-style dependency on `leaf` (so Mix needs Hex loaded, although the project overrides it with a
 * path), and `cnif` is a C NIF compiled by make and cc from a Mix compiler of its own, the way
 * elixir_make does. Its mix.lock makes the farm prepare Hex and rebar3 (builder/mix-tools.ts); its
 * assets/ and `assets.deploy` alias make it build assets the Phoenix way.
 */
export const DEPS_APP_FILES: Record<string, string> = {
  'mix.exs': `defmodule DepsApp.MixProject do
  use Mix.Project

  def project do
    [app: :deps_app, version: "0.3.0", elixir: ">= 1.10.0", deps: deps(), releases: [deps_app: []], aliases: ["assets.deploy": [&deploy_assets/1]]]
  end

  def application, do: [extra_applications: [:logger]]

  defp deps do
    [{:inner, path: "vendor/inner"}, {:leaf, path: "vendor/leaf", override: true}, {:cnif, path: "vendor/cnif"}]
  end

  # Stands in for Phoenix's bundlers and phx.digest: assets/app.css, squeezed, into priv/static under its digest.
  defp deploy_assets(_args) do
    css = "assets/app.css" |> File.read!() |> String.replace(~r/\\s+/, " ")
    digest = :crypto.hash(:md5, css) |> Base.encode16(case: :lower)
    File.mkdir_p!("priv/static/assets")
    File.write!("priv/static/assets/app-#{digest}.css", css)
    File.write!("priv/static/cache_manifest.json", ~s({"app.css":"assets/app-#{digest}.css"}))
  end
end
`,
  'mix.lock': '%{}\n',
  'assets/app.css': 'body {\n  margin: 0;\n}\n',
  'lib/deps_app.ex': `defmodule DepsApp do
  @moduledoc "Calls through both kinds of dependency."
  def answer, do: {Inner.hi(), Cnif.add(40, 2)}
end
`,
  'vendor/inner/mix.exs': `defmodule Inner.MixProject do
  use Mix.Project
  def project, do: [app: :inner, version: "0.1.0", deps: [{:leaf, "~> 0.1"}]]
end
`,
  'vendor/inner/lib/inner.ex': 'defmodule Inner do\n  def hi, do: Leaf.hi()\nend\n',
  'vendor/leaf/mix.exs': `defmodule Leaf.MixProject do
  use Mix.Project
  def project, do: [app: :leaf, version: "0.1.0"]
end
`,
  'vendor/leaf/lib/leaf.ex': 'defmodule Leaf do\n  def hi, do: :hi\nend\n',
  'vendor/cnif/mix.exs': `defmodule Mix.Tasks.Compile.Cnif do
  @moduledoc "Builds priv/cnif.so with make, as elixir_make would."
  use Mix.Task.Compiler

  def run(_args) do
    make = System.find_executable("make") || Mix.raise(~s("make" not found in the path))
    priv = Path.join(Mix.Project.app_path(), "priv")
    {out, status} = System.cmd(make, ["PRIV=" <> priv], stderr_to_stdout: true)
    IO.write(out)
    if status != 0, do: Mix.raise("make exited with status #{status}")
    {:ok, []}
  end
end

defmodule Cnif.MixProject do
  use Mix.Project
  def project, do: [app: :cnif, version: "0.1.0", compilers: [:cnif] ++ Mix.compilers()]
end
`,
  'vendor/cnif/Makefile': `ERTS_INCLUDE_DIR ?= $(shell erl -noshell -eval 'io:format("~ts/erts-~ts/include", [code:root_dir(), erlang:system_info(version)]), halt().')

$(PRIV)/cnif.so: c_src/cnif.c
\tmkdir -p $(PRIV)
\t$(CC) -O2 -fPIC -shared -I$(ERTS_INCLUDE_DIR) -o $@ $<
`,
  'vendor/cnif/c_src/cnif.c': `#include <erl_nif.h>

static ERL_NIF_TERM add(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  int a, b;
  if (argc != 2 || !enif_get_int(env, argv[0], &a) || !enif_get_int(env, argv[1], &b)) return enif_make_badarg(env);
  return enif_make_int(env, a + b);
}

static ErlNifFunc funcs[] = {{"add", 2, add, 0}};

ERL_NIF_INIT(Elixir.Cnif, funcs, NULL, NULL, NULL, NULL)
`,
  'vendor/cnif/lib/cnif.ex': `defmodule Cnif do
  @moduledoc "Adds two integers in C."
  @on_load :load
  def load, do: :erlang.load_nif(String.to_charlist(Path.join(:code.priv_dir(:cnif), "cnif")), 0)
  def add(_a, _b), do: :erlang.nif_error(:not_loaded)
end
`,
};

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
}

/** Builds the Hex stand-in with this machine's Mix into `dir`; returns the archive's path. */
export async function hexStandinArchive(dir: string): Promise<string> {
  const project = join(dir, 'hex-standin');
  await writeFiles(project, HEX_STANDIN_FILES);
  const out = join(dir, HEX_STANDIN_ARCHIVE);
  execFileSync('mix', ['archive.build', '-o', out], { cwd: project, env: childEnv({ MIX_ENV: 'prod', MIX_HOME: join(dir, 'mix-home'), HOME: dir }), stdio: 'pipe' });
  return out;
}

/** A git repo holding the dependencies app (plus `extra` files) at `dir`; its file:// URL and commit. */
export async function depsAppRepo(dir: string, extra: Record<string, string> = {}): Promise<{ url: string; commit: string }> {
  await writeFiles(dir, { ...DEPS_APP_FILES, ...extra });
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'deps app');
  return { url: `file://${dir}`, commit: git(dir, 'rev-parse', 'HEAD') };
}
