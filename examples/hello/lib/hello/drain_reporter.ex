defmodule Hello.DrainReporter do
  @moduledoc """
  First child of the application supervisor, so it is the last one stopped:
  by the time its `terminate/2` runs, every connection has drained.

  `Hello.Listener` reports the start of the drain with `drain_started/0`.
  (Not through the application environment: writing it during shutdown would
  block on the application controller, which is busy stopping this app.)
  """

  use GenServer

  require Logger

  def start_link(_arg), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)

  @doc "Records that the drain has started (called by the listener)."
  def drain_started do
    case Process.whereis(__MODULE__) do
      nil -> :ok
      pid -> send(pid, {:drain_started, System.monotonic_time(:millisecond)})
    end

    :ok
  end

  @impl true
  def init(nil) do
    Process.flag(:trap_exit, true)
    {:ok, nil}
  end

  @impl true
  def handle_info({:drain_started, started}, _state), do: {:noreply, started}
  def handle_info(_msg, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, started_at) do
    case started_at do
      started when is_integer(started) ->
        elapsed = System.monotonic_time(:millisecond) - started
        Logger.info("hello drain finished in #{elapsed}ms")

      _ ->
        Logger.info("hello drain finished")
    end

    :ok
  end
end
