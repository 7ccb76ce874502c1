defmodule Shop.Http.Listener do
  @moduledoc "Owns the listening socket and a few acceptors; each accepted socket goes to a new `Shop.Http.Conn`. Closing the socket first on shutdown lets in-flight requests drain."

  use GenServer

  require Logger

  @acceptors 4

  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @doc "The port actually listened on (useful with PORT=0)."
  def port, do: GenServer.call(__MODULE__, :port)

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)
    Shop.Http.Drain.reset()
    ip = Keyword.fetch!(opts, :ip)
    router = Keyword.fetch!(opts, :router)
    family = if tuple_size(ip) == 8, do: [:inet6], else: [:inet]
    listen_opts = [:binary, packet: :raw, active: false, reuseaddr: true, nodelay: true, backlog: 1024, ip: ip] ++ family

    case :gen_tcp.listen(Keyword.fetch!(opts, :port), listen_opts) do
      {:ok, lsock} ->
        {:ok, port} = :inet.port(lsock)
        acceptors = for _ <- 1..@acceptors, do: spawn_link(fn -> accept(lsock, router) end)
        Logger.info("shop listening on #{:inet.ntoa(ip)}:#{port}")
        {:ok, %{lsock: lsock, port: port, acceptors: acceptors}}

      {:error, reason} ->
        {:stop, {:listen_failed, Keyword.fetch!(opts, :port), reason}}
    end
  end

  @impl true
  def handle_call(:port, _from, state), do: {:reply, state.port, state}

  @impl true
  def handle_info({:EXIT, _pid, :normal}, state), do: {:noreply, state}
  def handle_info({:EXIT, pid, reason}, state), do: if(pid in state.acceptors, do: {:stop, reason, state}, else: {:noreply, state})

  @impl true
  def terminate(_reason, state) do
    Shop.Http.Drain.start()
    :gen_tcp.close(state.lsock)
    :ok
  end

  defp accept(lsock, router) do
    case :gen_tcp.accept(lsock) do
      {:ok, sock} ->
        hand_off(sock, router)
        accept(lsock, router)

      {:error, :closed} ->
        :ok

      {:error, reason} ->
        Logger.error("shop accept failed: #{inspect(reason)}")
        Process.sleep(100)
        accept(lsock, router)
    end
  end

  defp hand_off(sock, router) do
    with {:ok, pid} <- DynamicSupervisor.start_child(Shop.Http.ConnSup, {Shop.Http.Conn, router}),
         :ok <- :gen_tcp.controlling_process(sock, pid) do
      send(pid, {:socket, sock})
    else
      _ -> :gen_tcp.close(sock)
    end
  end
end

defmodule Shop.Http.Handler do
  @moduledoc "Calls the router for one request: timing, the access log, metrics, and a 500 (details only in the log) when a handler raises."

  require Logger

  alias Shop.Http.Response

  def call(router, req) do
    started = System.monotonic_time(:microsecond)

    resp =
      try do
        router.call(req)
      rescue
        e ->
          Logger.error("shop: #{req.method} #{req.path} failed: " <> Exception.format(:error, e, __STACKTRACE__))
          Response.text(500, "internal server error\n")
      end

    elapsed = System.monotonic_time(:microsecond) - started
    Shop.Metrics.observe(req.method, resp.status, elapsed)
    Shop.Log.Access.line(req, resp, elapsed)
    resp
  end
end

defmodule Shop.Http.Mime do
  @moduledoc "Content types of the files under priv/static, by extension."
  @types %{
    ".html" => "text/html; charset=utf-8", ".css" => "text/css; charset=utf-8", ".js" => "text/javascript; charset=utf-8",
    ".json" => "application/json", ".map" => "application/json", ".svg" => "image/svg+xml", ".png" => "image/png",
    ".ico" => "image/x-icon", ".txt" => "text/plain; charset=utf-8", ".woff2" => "font/woff2"
  }

  def for_path(path), do: Map.get(@types, path |> Path.extname() |> String.downcase(), "application/octet-stream")
end

defmodule Shop.Http.Etag do
  @moduledoc "Strong ETags from ShopHash's FNV-1a (a NIF); `If-None-Match` checks."

  def of(content), do: ~s("#{ShopHash.hex(content)}")

  def fresh?(req, etag), do: etag in Shop.Http.Headers.tokens(Shop.Http.Request.header(req, "if-none-match"))
end

defmodule Shop.Http.Static do
  @moduledoc """
  Serves files under the app's priv/static at `/static/...`: digested assets (`app-<hash>.js`) with a
  year-long cache, others with an ETag. Paths outside the directory are not found.
  """

  alias Shop.Http.{Etag, Mime, Response}

  def serve(req, parts) do
    root = root()
    path = Path.expand(Path.join([root | parts]))

    with true <- String.starts_with?(path, root <> "/"),
         {:ok, content} <- File.read(path) do
      respond(req, path, content)
    else
      _ -> Response.text(404, "not found\n")
    end
  end

  defp respond(req, path, content) do
    etag = Etag.of(content)

    if Etag.fresh?(req, etag) do
      %Response{status: 304, headers: [{"etag", etag}]}
    else
      Response.new(200, Mime.for_path(path), content)
      |> Response.put_header("etag", etag)
      |> Response.put_header("cache-control", cache_control(path))
    end
  end

  defp cache_control(path), do: if(Path.basename(path) =~ ~r/-[0-9a-f]{16,}\./, do: "public, max-age=31536000, immutable", else: "public, max-age=300")

  def root, do: :shop |> :code.priv_dir() |> to_string() |> Path.join("static") |> Path.expand()
end

defmodule Shop.Http.Cookies do
  @moduledoc "The Cookie request header to a map; Set-Cookie values."

  def parse(nil), do: %{}

  def parse(header) do
    header
    |> String.split(";")
    |> Enum.flat_map(fn pair ->
      case :binary.split(String.trim(pair), "=") do
        [k, v] when k != "" -> [{k, v}]
        _ -> []
      end
    end)
    |> Map.new()
  end

  def set(name, value, max_age), do: "#{name}=#{value}; Path=/; Max-Age=#{max_age}; HttpOnly; SameSite=Lax"
end
