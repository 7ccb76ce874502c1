defmodule Hello.WebSocketDrainer do
  @moduledoc """
  Closes the open WebSockets on shutdown in batches, so their clients do not
  all reconnect (TCP, TLS, upgrade) to the new version at the same moment.
  The idea is Phoenix's socket `drainer` (`batch_size`, `batch_interval`,
  `shutdown`); the code is this app's own.

  Every WebSocket connection registers itself here (`register/0`) once
  upgraded. The drainer sits between the connection supervisor and the
  listener, so it is stopped after the listener (no new connections) and
  before the connections: its `terminate/2` tells a batch of `batch_size`
  sockets to close with 1001, waits `batch_interval` ms, tells the next
  batch, and so on. The sockets not yet told keep being served meanwhile.

  The whole drain is bounded by `timeout` ms: batches that would start later
  are told at once at the last slot that fits (`schedule/4`), rather than
  be cut short by a kill. The connection supervisor then stops what is left;
  a socket still waiting for its client's close frame keeps waiting (at most
  `Hello.WebSocket`'s close wait).
  """

  use GenServer

  require Logger

  @registry Hello.WebSocketRegistry

  @doc "The registry the WebSocket connections register in (a child of the app)."
  def registry, do: @registry

  def child_spec(opts) do
    %{
      id: __MODULE__,
      start: {__MODULE__, :start_link, [opts]},
      # Its own bound, plus time to send the last batch and log.
      shutdown: Keyword.fetch!(opts, :timeout) + 1_000
    }
  end

  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @doc "Called by an upgraded connection: it will get `{:drain, drainer}` when its batch is due."
  def register do
    {:ok, _owner} = Registry.register(@registry, :socket, nil)
    :ok
  end

  @doc """
  The drain plan for `count` sockets: `[{at_ms, n}]`, batches of `size` every
  `interval` ms from 0, except that no batch starts after `timeout` ms: the
  last batch that fits takes all the rest. `[]` when there is nothing to close.
  """
  def schedule(count, _size, _interval, _timeout) when count <= 0, do: []

  def schedule(count, size, interval, timeout) when size > 0 do
    batches = div(count + size - 1, size)
    fitting = if interval > 0, do: min(batches, div(timeout, interval) + 1), else: batches

    for i <- 0..(fitting - 1) do
      n = if i == fitting - 1, do: count - size * (fitting - 1), else: size
      {i * interval, n}
    end
  end

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)

    {:ok,
     %{
       batch_size: Keyword.fetch!(opts, :batch_size),
       interval: Keyword.fetch!(opts, :batch_interval),
       timeout: Keyword.fetch!(opts, :timeout)
     }}
  end

  @impl true
  def handle_info(_msg, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, s) do
    pids = for {pid, _} <- Registry.lookup(@registry, :socket), do: pid
    plan = schedule(length(pids), s.batch_size, s.interval, s.timeout)

    if plan != [] do
      Logger.info(
        "hello closing #{length(pids)} WebSocket(s) in #{length(plan)} batch(es) " <>
          "(batch_size=#{s.batch_size}, batch_interval=#{s.interval}ms, timeout=#{s.timeout}ms)"
      )
    end

    drain(pids, plan, System.monotonic_time(:millisecond), 1)
  end

  defp drain(_pids, [], _started, _index), do: :ok

  defp drain(pids, [{at, n} | rest], started, index) do
    wait = started + at - System.monotonic_time(:millisecond)
    if wait > 0, do: Process.sleep(wait)
    {batch, pids} = Enum.split(pids, n)
    Enum.each(batch, &send(&1, {:drain, self()}))
    Logger.debug("hello WebSocket drain: batch #{index}, #{length(batch)} socket(s)")
    drain(pids, rest, started, index + 1)
  end
end
