defmodule Hello.Application do
  @moduledoc """
  Application callback. Runtime configuration comes from the environment:

    * `PORT` - TCP port to listen on (default `4000`)
    * `BIND` - IP address to bind, e.g. `127.0.0.1` or `0.0.0.0` (default `127.0.0.1`)
    * `DRAIN_TIMEOUT_MS` - how long in-flight requests may take to finish
      on shutdown (default `15000`)
    * `WS_DRAIN_BATCH_SIZE` - on shutdown, how many WebSockets are closed
      (1001) at once (default `10`)
    * `WS_DRAIN_BATCH_INTERVAL_MS` - the time between two such batches
      (default `50`)
    * `WS_DRAIN_TIMEOUT_MS` - no batch starts later than this after the
      drain began: the rest are closed at once (default `2000`, at most
      `DRAIN_TIMEOUT_MS`)
    * `XAMAL_REVISION` - revision reported by `GET /up` (default: `XAMAL_VERSION`, which
      `xamal deploy` sets to the deployed version, else `unknown`)

  Children are stopped in reverse order: the listener first (no new
  connections), then the WebSocket drainer (open WebSockets closed in
  batches, `Hello.WebSocketDrainer`), then the connection supervisor
  (in-flight requests finish, bounded by `DRAIN_TIMEOUT_MS`), then the drain
  reporter.
  """

  use Application

  @impl true
  def start(_type, _args) do
    port = int_env("PORT", 4000, 0, 65_535)
    bind = env("BIND", "127.0.0.1")
    ip = parse_ip!(bind)
    drain_timeout = int_env("DRAIN_TIMEOUT_MS", 15_000, 0, 86_400_000)
    revision = env("XAMAL_REVISION", env("XAMAL_VERSION", "unknown"))

    ws_drain = [
      batch_size: int_env("WS_DRAIN_BATCH_SIZE", 10, 1, 1_000_000),
      batch_interval: int_env("WS_DRAIN_BATCH_INTERVAL_MS", 50, 0, 60_000),
      timeout: min(int_env("WS_DRAIN_TIMEOUT_MS", 2_000, 0, 86_400_000), drain_timeout)
    ]

    Application.put_env(:hello, :revision, revision)

    children = [
      Hello.DrainReporter,
      {Registry, keys: :duplicate, name: Hello.WebSocketDrainer.registry()},
      {DynamicSupervisor, name: Hello.ConnSup, strategy: :one_for_one},
      {Hello.WebSocketDrainer, ws_drain},
      {Hello.Listener, ip: ip, port: port, drain_timeout: drain_timeout, revision: revision}
    ]

    Supervisor.start_link(children, strategy: :rest_for_one, name: Hello.Supervisor)
  end

  defp env(name, default) do
    case System.get_env(name) do
      nil -> default
      "" -> default
      value -> value
    end
  end

  defp int_env(name, default, min, max) do
    raw = env(name, nil)

    case raw && Integer.parse(String.trim(raw)) do
      nil ->
        default

      {value, ""} when value >= min and value <= max ->
        value

      _ ->
        raise ArgumentError,
              "#{name} must be an integer between #{min} and #{max}, got: #{inspect(raw)}"
    end
  end

  defp parse_ip!(bind) do
    case :inet.parse_address(String.to_charlist(String.trim(bind))) do
      {:ok, ip} -> ip
      {:error, _} -> raise ArgumentError, "BIND must be an IP address, got: #{inspect(bind)}"
    end
  end
end
