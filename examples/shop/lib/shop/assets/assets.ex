defmodule Shop.Assets.Platform do
  @moduledoc "Which `@esbuild/<platform>` package fits the machine running Mix."

  def esbuild_package do
    case :erlang.system_info(:system_architecture) |> to_string() |> String.split("-") do
      ["x86_64" | rest] -> "linux-x64" |> linux!(rest)
      ["aarch64" | rest] -> "linux-arm64" |> linux!(rest)
      [arch | _] -> Mix.raise("shop.esbuild: no esbuild package for the architecture #{arch} (expected x86_64 or aarch64)")
    end
  end

  defp linux!(pkg, rest), do: if("linux" in rest, do: pkg, else: Mix.raise("shop.esbuild: only Linux is supported, this is #{Enum.join(rest, "-")}"))
end

defmodule Shop.Assets.Http do
  @moduledoc """
  GETs over `:httpc`, through the proxies the environment names (`HTTPS_PROXY`/`HTTP_PROXY`, as
  npm and Hex read them — a build farm's egress proxy), TLS verified against the system's CAs.
  """

  @profile :shop_assets

  @attempts 3

  def get!(url) do
    start!()
    get!(url, 1)
  end

  # One connection per request (`connection: close`): a proxy that closes its side after an answer
  # cannot race a reused connection. A connection closed or reset before the answer is tried again.
  defp get!(url, attempt) do
    headers = [{~c"user-agent", ~c"shop-assets (Elixir #{System.version()})"}, {~c"connection", ~c"close"}]
    http_opts = [timeout: 120_000, connect_timeout: 20_000] ++ tls(url)

    case :httpc.request(:get, {String.to_charlist(url), headers}, http_opts, [body_format: :binary], @profile) do
      {:ok, {{_, 200, _}, _headers, body}} -> body
      {:ok, {{_, status, _}, _headers, _body}} -> Mix.raise("GET #{url}: HTTP #{status}")
      {:error, reason} when attempt < @attempts and reason in [:socket_closed_remotely, :econnreset, :closed] -> retry(url, attempt, reason)
      {:error, reason} -> Mix.raise("GET #{url} failed: #{inspect(reason)}#{proxy_hint()}")
    end
  end

  defp retry(url, attempt, reason) do
    Mix.shell().info("==> shop.esbuild: GET #{url}: #{inspect(reason)}, trying again (#{attempt + 1}/#{@attempts})")
    Process.sleep(500 * attempt)
    get!(url, attempt + 1)
  end

  # OTP 27's httpc computes its default TLS options (with :public_key) even for http:// requests.
  defp start! do
    Enum.each([:inets, :public_key, :ssl], &ensure_app!/1)

    case :inets.start(:httpc, profile: @profile) do
      {:ok, _} -> :ok
      {:error, {:already_started, _}} -> :ok
    end

    :ok = :httpc.set_options(proxies(), @profile)
  end

  defp proxies do
    for {opt, vars} <- [proxy: ~w(HTTP_PROXY http_proxy), https_proxy: ~w(HTTPS_PROXY https_proxy)],
        url = Enum.find_value(vars, &System.get_env/1),
        url not in [nil, ""] do
      uri = URI.parse(url)
      {opt, {{String.to_charlist(uri.host), uri.port}, []}}
    end
  end

  defp proxy_hint do
    case proxies() do
      [] -> ""
      ps -> " (through the proxy #{ps |> Keyword.values() |> Enum.map(fn {{h, p}, _} -> "#{h}:#{p}" end) |> Enum.uniq() |> Enum.join(", ")})"
    end
  end

  defp tls("https:" <> _) do
    [ssl: [verify: :verify_peer, cacerts: :public_key.cacerts_get(), depth: 4, customize_hostname_check: [match_fun: :public_key.pkix_verify_hostname_match_fun(:https)]]]
  end

  defp tls(_), do: []

  # Mix 1.15+ prunes the code paths of OTP applications the project does not list;
  # `Mix.ensure_application!/1` (1.15+) puts one back. Older Mix keeps them all.
  defp ensure_app!(app) do
    if function_exported?(Mix, :ensure_application!, 1), do: apply(Mix, :ensure_application!, [app])
    {:ok, _} = Application.ensure_all_started(app)
  end
end

defmodule Shop.Assets.Registry do
  @moduledoc """
  The npm registry as npm uses it: `NPM_CONFIG_REGISTRY` (default https://registry.npmjs.org);
  a package version's document names its tarball and the tarball's integrity (`dist`).
  """

  @default "https://registry.npmjs.org"

  def url, do: (System.get_env("NPM_CONFIG_REGISTRY") || System.get_env("npm_config_registry") || @default) |> String.trim_trailing("/")

  @doc "`%{tarball: url, integrity: \"sha512-…\"}` of `name@version`."
  def dist!(name, version) do
    doc_url = "#{url()}/#{name}/#{version}"
    doc = doc_url |> Shop.Assets.Http.get!() |> Shop.Json.decode!()

    case doc do
      %{"dist" => %{"tarball" => tarball, "integrity" => "sha512-" <> _ = integrity}} -> %{tarball: tarball, integrity: integrity}
      %{"dist" => _} -> Mix.raise("#{doc_url}: the version has no sha512 integrity; refusing to use it unchecked")
      _ -> Mix.raise("#{doc_url}: not a package version document (no \"dist\")")
    end
  end
end

defmodule Shop.Assets.Integrity do
  @moduledoc "Subresource-integrity strings (`sha512-<base64>`) as npm's lockfiles and registry use them."

  def check!(data, "sha512-" <> b64 = integrity, what) do
    actual = "sha512-" <> Base.encode64(:crypto.hash(:sha512, data))
    if actual == integrity, do: :ok, else: Mix.raise("#{what}: integrity mismatch: the registry says #{integrity}, the download is #{actual}")
    _ = b64
  end
end

defmodule Shop.Assets.Tarball do
  @moduledoc "One file out of an npm tarball (a gzipped tar whose entries are under `package/`)."

  def extract!(tgz, path) do
    case :erl_tar.extract({:binary, tgz}, [:compressed, :memory, files: [String.to_charlist(path)]]) do
      {:ok, [{_, content}]} -> content
      {:ok, []} -> Mix.raise("the package has no #{path}")
      {:error, reason} -> Mix.raise("cannot read the package tarball: #{inspect(reason)}")
    end
  end
end

defmodule Shop.Assets.Digest do
  @moduledoc "Content-named copies of static files (`app-<fnv1a64>.js`) and their manifest, as `phx.digest` makes them."

  @digested ~r/-[0-9a-f]{16}\.[^.\/]+$/

  def digest!(root) do
    files =
      root
      |> Path.join("**")
      |> Path.wildcard()
      |> Enum.filter(&File.regular?/1)
      |> Enum.map(&Path.relative_to(&1, root))
      |> Enum.reject(&(&1 == "cache_manifest.json" or &1 =~ @digested))

    manifest = Map.new(files, fn rel -> {rel, copy!(root, rel)} end)
    File.write!(Path.join(root, "cache_manifest.json"), Shop.Json.encode!(manifest))
    manifest
  end

  defp copy!(root, rel) do
    content = File.read!(Path.join(root, rel))
    ext = Path.extname(rel)
    digested = String.trim_trailing(rel, ext) <> "-" <> ShopHash.hex(content) <> ext
    File.write!(Path.join(root, digested), content)
    digested
  end
end
