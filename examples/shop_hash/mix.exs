defmodule Mix.Tasks.Compile.ShopHash do
  @moduledoc """
  Compiles c_src/ into priv/shop_hash.so of this application (in _build) by running `make`, as
  elixir_make does. Needs `make` and a C compiler (`cc`, or the one `CC` names); without either it
  stops with an error naming the dependency and the tool. Runs make only when the .so is older than
  its sources.
  """

  use Mix.Task.Compiler

  @recursive true
  @sources ["Makefile", "c_src/shop_hash.c"]

  @impl true
  def run(_args) do
    priv = Path.join(Mix.Project.app_path(), "priv")
    so = Path.join(priv, "shop_hash.so")

    if Mix.Utils.stale?(@sources, [so]) do
      build!(priv)
      {:ok, []}
    else
      {:noop, []}
    end
  end

  defp build!(priv) do
    make = find_tool!("make", "make")
    cc = System.get_env("CC", "cc")
    find_tool!(cc |> String.split(" ") |> hd(), "a C compiler")
    args = ["PRIV=" <> priv, "ERTS_INCLUDE_DIR=" <> erts_include_dir(), "CC=" <> cc]
    Mix.shell().info("==> shop_hash: make #{Enum.join(args, " ")}")

    case System.cmd(make, args, stderr_to_stdout: true, into: IO.stream(:stdio, :line)) do
      {_, 0} -> :ok
      {_, status} -> Mix.raise("could not compile dependency :shop_hash: make exited with status #{status} (see its output above)")
    end
  end

  defp find_tool!(name, what) do
    System.find_executable(name) ||
      Mix.raise(
        ~s(could not compile dependency :shop_hash: could not find an executable "#{name}" \(#{what}\) in PATH; ) <>
          "install build tools (on Debian: apt-get install build-essential)"
      )
  end

  defp erts_include_dir do
    Path.join([:code.root_dir(), "erts-#{:erlang.system_info(:version)}", "include"])
  end

  @impl true
  def clean do
    File.rm(Path.join([Mix.Project.app_path(), "priv", "shop_hash.so"]))
    :ok
  end
end

defmodule ShopHash.MixProject do
  use Mix.Project

  # A dependency with native code, built the way elixir_make builds one: its own Mix compiler
  # (Mix.Tasks.Compile.ShopHash above, defined here since a project cannot compile its own compiler)
  # runs `make`, which compiles c_src/ into priv/shop_hash.so.
  def project do
    [
      app: :shop_hash,
      version: "0.2.0",
      elixir: "~> 1.10",
      compilers: [:shop_hash] ++ Mix.compilers(),
      deps: []
    ]
  end

  def application, do: [extra_applications: [:logger]]
end
