defmodule Hello.Listener do
  @moduledoc """
  Owns the listening socket and a few acceptor processes.

  Each accepted socket is handed to a fresh `Hello.Conn` started under
  `Hello.ConnSup`. On shutdown the listening socket is closed first, so no new
  connection is accepted while the in-flight ones drain.
  """

  use GenServer

  require Logger

  @acceptors 4
  @acceptor_stop_timeout 1_000

  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)

    ip = Keyword.fetch!(opts, :ip)
    port = Keyword.fetch!(opts, :port)
    drain_timeout = Keyword.fetch!(opts, :drain_timeout)
    revision = Keyword.fetch!(opts, :revision)

    listen_opts =
      [
        :binary,
        packet: :raw,
        active: false,
        reuseaddr: true,
        nodelay: true,
        backlog: 1024,
        ip: ip
      ] ++ family(ip)

    case :gen_tcp.listen(port, listen_opts) do
      {:ok, lsock} ->
        {:ok, actual_port} = :inet.port(lsock)

        acceptors =
          for _ <- 1..@acceptors, do: spawn_link(fn -> accept_loop(lsock, drain_timeout) end)

        host = ip |> :inet.ntoa() |> to_string()
        Logger.info("hello listening on #{host}:#{actual_port} revision=#{revision}")
        {:ok, %{lsock: lsock, acceptors: acceptors, drain_timeout: drain_timeout}}

      {:error, reason} ->
        {:stop, {:listen_failed, ip, port, reason}}
    end
  end

  defp family(ip) when tuple_size(ip) == 8, do: [:inet6]
  defp family(_ip), do: [:inet]

  @impl true
  def handle_info({:EXIT, pid, reason}, state) do
    cond do
      pid not in state.acceptors -> {:noreply, state}
      reason == :normal -> {:noreply, %{state | acceptors: List.delete(state.acceptors, pid)}}
      true -> {:stop, {:acceptor_exit, reason}, state}
    end
  end

  def handle_info(_msg, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, state) do
    Hello.DrainReporter.drain_started()
    :gen_tcp.close(state.lsock)

    wait_for_acceptors(
      state.acceptors,
      System.monotonic_time(:millisecond) + @acceptor_stop_timeout
    )

    Logger.info(
      "hello draining: listener closed, #{open_connections()} open connection(s), " <>
        "timeout=#{state.drain_timeout}ms"
    )

    :ok
  end

  defp wait_for_acceptors([], _deadline), do: :ok

  defp wait_for_acceptors(pids, deadline) do
    timeout = max(deadline - System.monotonic_time(:millisecond), 0)

    receive do
      {:EXIT, pid, _reason} -> wait_for_acceptors(List.delete(pids, pid), deadline)
    after
      timeout -> :ok
    end
  end

  defp open_connections do
    DynamicSupervisor.count_children(Hello.ConnSup).active
  catch
    :exit, _ -> 0
  end

  # Acceptors: block in accept/1 until the listening socket is closed.

  defp accept_loop(lsock, drain_timeout) do
    case :gen_tcp.accept(lsock) do
      {:ok, sock} ->
        hand_off(sock, drain_timeout)
        accept_loop(lsock, drain_timeout)

      {:error, :closed} ->
        :ok

      {:error, reason} ->
        # e.g. :emfile - back off a little instead of spinning.
        Logger.error("hello accept failed: #{inspect(reason)}")
        Process.sleep(100)
        accept_loop(lsock, drain_timeout)
    end
  end

  defp hand_off(sock, drain_timeout) do
    case DynamicSupervisor.start_child(Hello.ConnSup, {Hello.Conn, drain_timeout}) do
      {:ok, pid} ->
        case :gen_tcp.controlling_process(sock, pid) do
          :ok -> send(pid, {:socket, sock})
          {:error, _} -> :gen_tcp.close(sock)
        end

      _error ->
        :gen_tcp.close(sock)
    end
  end
end
