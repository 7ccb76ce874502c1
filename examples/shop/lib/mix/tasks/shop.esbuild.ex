defmodule Mix.Tasks.Shop.Esbuild do
  @shortdoc "Installs esbuild from the npm registry and bundles assets/js into priv/static/assets"
  @moduledoc """
  Like Phoenix's esbuild package: downloads `@esbuild/linux-x64` (or `-arm64`) of the version
  below from the npm registry (`NPM_CONFIG_REGISTRY`, default https://registry.npmjs.org; through
  `HTTPS_PROXY`/`HTTP_PROXY` when set), checks the tarball against the sha512 integrity the registry
  gives, keeps the binary in `_build/esbuild-<platform>-<version>`, then bundles
  `assets/js/app.js` into `priv/static/assets/app.js`. Extra arguments go to esbuild
  (`mix shop.esbuild --minify`).

  `SHOP_ESBUILD_VERSION` overrides the version.
  """
  use Mix.Task

  @version "0.28.2"

  @impl true
  def run(args) do
    bin = install!()
    argv = ["assets/js/app.js", "--bundle", "--target=es2017", "--outdir=priv/static/assets", "--log-level=warning" | args]
    Mix.shell().info("==> shop.esbuild: esbuild #{Enum.join(argv, " ")}")

    case System.cmd(bin, argv, stderr_to_stdout: true, into: IO.stream(:stdio, :line)) do
      {_, 0} -> :ok
      {_, status} -> Mix.raise("shop.esbuild: esbuild exited with status #{status}")
    end
  end

  @doc "The esbuild binary, downloaded and checked once."
  def install! do
    version = System.get_env("SHOP_ESBUILD_VERSION", @version)
    platform = Shop.Assets.Platform.esbuild_package()
    bin = Path.join(Mix.Project.build_path() |> Path.dirname(), "esbuild-#{platform}-#{version}")

    if File.exists?(bin) do
      bin
    else
      download!("@esbuild/#{platform}", version, bin)
    end
  end

  defp download!(name, version, bin) do
    dist = Shop.Assets.Registry.dist!(name, version)
    Mix.shell().info("==> shop.esbuild: #{name}@#{version} from #{dist.tarball}")
    tgz = Shop.Assets.Http.get!(dist.tarball)
    Shop.Assets.Integrity.check!(tgz, dist.integrity, "#{name}@#{version}")
    Mix.shell().info("==> shop.esbuild: #{dist.integrity} verified")
    content = Shop.Assets.Tarball.extract!(tgz, "package/bin/esbuild")
    File.mkdir_p!(Path.dirname(bin))
    tmp = bin <> ".tmp"
    File.write!(tmp, content)
    File.chmod!(tmp, 0o755)
    File.rename!(tmp, bin)
    bin
  end
end

defmodule Mix.Tasks.Shop.Digest do
  @shortdoc "Names priv/static files by their content and writes cache_manifest.json"
  @moduledoc "Like `mix phx.digest`: every file under priv/static gets a copy named by its FNV-1a hash (ShopHash), listed in priv/static/cache_manifest.json."
  use Mix.Task

  @impl true
  def run(_args) do
    Mix.Task.run("compile")
    Mix.Task.run("loadpaths")
    manifest = Shop.Assets.Digest.digest!(Path.expand("priv/static"))
    Mix.shell().info("==> shop.digest: #{map_size(manifest)} files: #{manifest |> Map.values() |> Enum.sort() |> Enum.join(", ")}")
  end
end
