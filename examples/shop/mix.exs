defmodule Shop.MixProject do
  use Mix.Project

  @version "1.0.0"

  # Works with Elixir 1.14 / OTP 25 (Debian 12) up to Elixir 1.18 / OTP 27: no Hex packages.
  # Its one dependency, shop_hash (a C NIF built with make), comes from git: SHOP_HASH_GIT names the
  # repository (https://… through the farm's egress proxy), SHOP_HASH_REF the commit, tag or branch
  # (default main); without SHOP_HASH_GIT the checkout next to this one (../shop_hash) is used.
  def project do
    [
      app: :shop,
      version: @version,
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      deps: deps(),
      aliases: aliases(),
      # The assets tasks download esbuild with :httpc at build time only; the release needs neither.
      xref: [exclude: [:httpc, :inets, :public_key]],
      releases: [shop: [include_erts: true, include_executables_for: [:unix]]]
    ]
  end

  def application do
    [extra_applications: [:logger, :crypto, :eex], mod: {Shop.Application, []}]
  end

  defp deps do
    case System.get_env("SHOP_HASH_GIT") do
      nil -> [{:shop_hash, path: "../shop_hash"}]
      "" -> [{:shop_hash, path: "../shop_hash"}]
      url -> [{:shop_hash, git: url, ref: System.get_env("SHOP_HASH_REF", "main")}]
    end
  end

  # `mix assets.deploy`, as in a Phoenix app: esbuild (from the npm registry) bundles assets/js
  # into priv/static/assets, then the digest step names every file by its content.
  defp aliases do
    ["assets.deploy": ["shop.esbuild --minify", "shop.digest"]]
  end
end
