defmodule Hello.Conn do
  @moduledoc """
  One process per TCP connection (HTTP/1.1 keep-alive, pipelining tolerated).

  The process traps exits. When its supervisor asks it to stop:

    * if it is idle (waiting for the next request), it closes the socket and exits;
    * if it is handling a request, it finishes it, answers with
      `connection: close`, then exits.

  A connection upgraded to a WebSocket (`GET /ws`) is run by
  `Hello.WebSocket`, which on shutdown (in its batch, `Hello.WebSocketDrainer`)
  sends a close frame 1001 and waits for the client's before closing.

  The supervisor's `shutdown` for these children is `DRAIN_TIMEOUT_MS`, after
  which a connection that is still busy is killed.
  """

  require Logger

  alias Hello.HTTP

  # How long an idle keep-alive connection (or a slow client) is kept.
  @idle_timeout 30_000
  # How long to wait for the acceptor to hand the socket over.
  @handoff_timeout 5_000
  # After an error response: how long / how much unread input to discard
  # before closing, so the client is not reset before it reads the response.
  @linger_timeout 1_000
  @linger_bytes 1_000_000

  def child_spec(drain_timeout) do
    %{
      id: __MODULE__,
      start: {__MODULE__, :start_link, [drain_timeout]},
      restart: :temporary,
      type: :worker,
      shutdown: if(drain_timeout > 0, do: drain_timeout, else: :brutal_kill)
    }
  end

  def start_link(_drain_timeout) do
    parent = self()
    {:ok, :proc_lib.spawn_link(fn -> init(parent) end)}
  end

  defp init(parent) do
    Process.flag(:trap_exit, true)

    receive do
      {:socket, sock} ->
        state = %{sock: sock, parent: parent}
        continue(state, "")

      {:EXIT, ^parent, reason} ->
        exit(reason)
    after
      @handoff_timeout -> exit(:normal)
    end
  end

  # Wait (idle) for more bytes of the next request.
  defp continue(state, buffer) do
    case :inet.setopts(state.sock, active: :once) do
      :ok -> wait(state, buffer)
      {:error, _} -> stop(state, :normal)
    end
  end

  defp wait(%{sock: sock, parent: parent} = state, buffer) do
    receive do
      {:tcp, ^sock, data} ->
        handle_data(state, buffer <> data)

      {:tcp_closed, ^sock} ->
        stop(state, :normal)

      {:tcp_error, ^sock, _reason} ->
        stop(state, :normal)

      {:EXIT, ^parent, reason} ->
        # Idle (or only part of a request head received): just close.
        stop(state, reason)

      _other ->
        wait(state, buffer)
    after
      @idle_timeout ->
        if buffer != "", do: send_error(state, 408)
        stop(state, :normal)
    end
  end

  defp handle_data(state, buffer) do
    case HTTP.parse_head(buffer) do
      {:more, buffer} ->
        continue(state, buffer)

      {:error, status} ->
        send_error(state, status)
        stop(state, :normal)

      {:ok, request, rest} ->
        case HTTP.body_length(request) do
          {:ok, length} ->
            maybe_send_continue(state, request, length, rest)

            case skip_body(state.sock, length, rest) do
              {:ok, rest} -> respond(state, request, rest)
              {:error, _} -> stop(state, :normal)
            end

          {:error, status} ->
            send_error(state, status)
            stop(state, :normal)
        end
    end
  end

  defp maybe_send_continue(state, request, length, rest) do
    if length > byte_size(rest) and HTTP.expects_continue?(request) do
      :gen_tcp.send(state.sock, "HTTP/1.1 100 Continue\r\n\r\n")
    end
  end

  # The socket is passive here (active: :once was consumed), so read the
  # remaining body bytes with recv and throw them away.
  defp skip_body(_sock, length, buffer) when byte_size(buffer) >= length do
    <<_body::binary-size(length), rest::binary>> = buffer
    {:ok, rest}
  end

  defp skip_body(sock, length, buffer) do
    remaining = length - byte_size(buffer)

    case :gen_tcp.recv(sock, 0, @idle_timeout) do
      {:ok, data} -> skip_body(sock, remaining, data)
      {:error, _} = error -> error
    end
  end

  # `GET /ws`: the connection becomes a WebSocket (Hello.WebSocket) and
  # never returns to HTTP. A shutdown already pending is seen by its loop,
  # which closes with 1001 at once.
  defp respond(state, %{path: "/ws"} = request, rest) do
    case Hello.WebSocket.handshake(request) do
      {:ok, response} ->
        case :gen_tcp.send(state.sock, response) do
          :ok -> Hello.WebSocket.serve(state.sock, state.parent, rest)
          {:error, _} -> stop(state, :normal)
        end

      {:error, status} ->
        send_error(state, status)
        stop(state, :normal)
    end
  end

  defp respond(state, request, rest) do
    {status, headers, body} = dispatch(request)

    # A shutdown request that arrived while we were busy: answer, then stop.
    shutdown = pending_shutdown(state.parent)
    keep_alive? = shutdown == nil and HTTP.keep_alive?(request)
    response = HTTP.encode_response(status, headers, body, keep_alive?, request.method != "HEAD")

    case {:gen_tcp.send(state.sock, response), keep_alive?} do
      {:ok, true} when rest == "" -> continue(state, "")
      {:ok, true} -> handle_data(state, rest)
      _ -> stop(state, shutdown || :normal)
    end
  end

  defp dispatch(request) do
    Hello.Router.handle(request)
  rescue
    exception ->
      Logger.error(
        "hello request #{request.method} #{request.target} failed: " <>
          Exception.format(:error, exception, __STACKTRACE__)
      )

      {500, [{"content-type", "text/plain; charset=utf-8"}], "internal server error"}
  end

  defp pending_shutdown(parent) do
    receive do
      {:EXIT, ^parent, reason} -> reason
    after
      0 -> nil
    end
  end

  # Answers with an error and closes the connection. Unread input is
  # discarded for a short while first: closing a socket with unread data makes
  # the kernel send a reset, which can destroy the response in flight.
  defp send_error(state, status) do
    body = "error #{status}"
    headers = [{"content-type", "text/plain; charset=utf-8"}]

    with :ok <-
           :gen_tcp.send(state.sock, HTTP.encode_response(status, headers, body, false, true)),
         :ok <- :gen_tcp.shutdown(state.sock, :write),
         :ok <- :inet.setopts(state.sock, active: false) do
      deadline = System.monotonic_time(:millisecond) + @linger_timeout
      discard_input(state.sock, deadline, @linger_bytes)
    end

    :ok
  end

  defp discard_input(sock, deadline, budget) do
    timeout = deadline - System.monotonic_time(:millisecond)

    if timeout > 0 and budget > 0 do
      case :gen_tcp.recv(sock, 0, timeout) do
        {:ok, data} -> discard_input(sock, deadline, budget - byte_size(data))
        {:error, _} -> :ok
      end
    end
  end

  defp stop(state, reason) do
    :gen_tcp.close(state.sock)
    exit(reason)
  end
end
