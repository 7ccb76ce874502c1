defmodule Hello.WebSocket do
  @moduledoc """
  RFC 6455 WebSockets on `GET /ws`, no dependency: the opening handshake
  (`Sec-WebSocket-Accept` = Base64 of the SHA-1 of the key and the RFC's GUID),
  text and binary messages (fragmented ones reassembled), masking from
  clients, ping/pong, and the closing handshake. SHA-1 is `Hello.SHA1`, not
  `:crypto`: the app stays free of OpenSSL (only `examples/crypto-hello`
  links the host's libcrypto).

  On connect the server sends one text message, the body of `GET /up` (its
  `revision` is the deployed version); every later message is echoed back.

  Limits: a message (all its fragments) is at most #{65_536} bytes, or the
  connection is closed with 1009; an unmasked frame, a reserved bit or opcode,
  or a bad control frame closes it with 1002; a text message that is not
  UTF-8 with 1007. After #{div(60_000, 1000)} s without a byte from the client
  the server pings; after twice that it closes with 1000.

  Shutdown: when `Hello.WebSocketDrainer` says its batch is due, or at the
  latest when its supervisor stops (SIGTERM → the app's drain), the
  connection sends a close frame 1001 "going away", waits for the client's
  close frame (at most #{div(5_000, 1000)} s, within the drain), and only then
  closes the TCP connection, so neither side sees a reset.
  """

  import Bitwise, only: [bxor: 2]

  @guid "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
  @max_message 65_536
  @ping_after 60_000
  @close_wait 5_000

  @op_cont 0x0
  @op_text 0x1
  @op_binary 0x2
  @op_close 0x8
  @op_ping 0x9
  @op_pong 0xA

  def max_message, do: @max_message

  # --- handshake ----------------------------------------------------------------------------------

  @doc "`Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`."
  def accept_key(key), do: Base.encode64(Hello.SHA1.hash(key <> @guid))

  @doc """
  Checks an upgrade request: `{:ok, response}` (the 101 head) or
  `{:error, status}` (400, or 426 when it is no WebSocket upgrade at all).
  """
  def handshake(request) do
    tokens = fn name ->
      request
      |> Hello.HTTP.header_values(name)
      |> Enum.flat_map(&String.split(&1, ","))
      |> Enum.map(&(&1 |> String.trim() |> String.downcase()))
    end

    key = request |> Hello.HTTP.header_values("sec-websocket-key") |> List.first()

    cond do
      "websocket" not in tokens.("upgrade") -> {:error, 426}
      request.method != "GET" or request.version != :"1.1" -> {:error, 400}
      "upgrade" not in tokens.("connection") -> {:error, 400}
      Hello.HTTP.header_values(request, "sec-websocket-version") != ["13"] -> {:error, 426}
      not valid_key?(key) -> {:error, 400}
      true -> {:ok, switching_protocols(key)}
    end
  end

  defp valid_key?(nil), do: false

  defp valid_key?(key) do
    match?({:ok, <<_::binary-size(16)>>}, Base.decode64(key))
  end

  defp switching_protocols(key) do
    [
      "HTTP/1.1 101 Switching Protocols\r\n",
      "upgrade: websocket\r\n",
      "connection: Upgrade\r\n",
      "sec-websocket-accept: ",
      accept_key(key),
      "\r\n",
      "server: hello\r\n\r\n"
    ]
  end

  # --- frames -------------------------------------------------------------------------------------

  @doc """
  Parses one client frame at the start of `buffer`: `{:ok, {fin?, opcode,
  payload}, rest}` (payload unmasked), `:more`, or `{:error, close_code}`.
  The payload length is checked before any of it is buffered.
  """
  def parse_frame(buffer, max \\ @max_message)

  def parse_frame(<<fin::1, rsv::3, op::4, mask::1, len7::7, rest::binary>>, max) do
    cond do
      rsv != 0 -> {:error, 1002}
      op not in [@op_cont, @op_text, @op_binary, @op_close, @op_ping, @op_pong] -> {:error, 1002}
      mask == 0 -> {:error, 1002}
      op >= 0x8 and (fin == 0 or len7 > 125) -> {:error, 1002}
      true -> parse_length(len7, rest, max, {fin == 1, op})
    end
  end

  def parse_frame(_buffer, _max), do: :more

  defp parse_length(126, <<len::16, rest::binary>>, max, head),
    do: parse_payload(len, rest, max, head)

  defp parse_length(127, <<0::1, len::63, rest::binary>>, max, head),
    do: parse_payload(len, rest, max, head)

  defp parse_length(127, <<1::1, _::63, _::binary>>, _max, _head), do: {:error, 1002}
  defp parse_length(len, rest, max, head) when len < 126, do: parse_payload(len, rest, max, head)
  defp parse_length(_len, _rest, _max, _head), do: :more

  defp parse_payload(len, _rest, max, _head) when len > max, do: {:error, 1009}

  defp parse_payload(len, rest, _max, {fin, op}) do
    case rest do
      <<key::binary-size(4), masked::binary-size(len), rest::binary>> ->
        {:ok, {fin, op, unmask(masked, key)}, rest}

      _ ->
        :more
    end
  end

  # XOR with the 4-byte key, a word at a time, then the tail byte by byte.
  defp unmask(payload, <<k::32>> = key) do
    words = div(byte_size(payload), 4) * 4
    <<body::binary-size(words), tail::binary>> = payload
    head = for <<w::32 <- body>>, into: <<>>, do: <<bxor(w, k)::32>>

    rest =
      for {b, i} <- Enum.with_index(:binary.bin_to_list(tail)),
          into: <<>>,
          do: <<bxor(b, :binary.at(key, i))>>

    head <> rest
  end

  @doc "A server frame (final, unmasked)."
  def frame(op, payload) do
    len = IO.iodata_length(payload)

    head =
      cond do
        len < 126 -> <<1::1, 0::3, op::4, 0::1, len::7>>
        len < 65_536 -> <<1::1, 0::3, op::4, 0::1, 126::7, len::16>>
        true -> <<1::1, 0::3, op::4, 0::1, 127::7, len::64>>
      end

    [head, payload]
  end

  @doc "A close frame with `code` and a short reason."
  def close_frame(code, reason \\ ""), do: frame(@op_close, [<<code::16>>, reason])

  # --- the connection -----------------------------------------------------------------------------

  @doc """
  Runs the upgraded connection until it closes, then exits the calling
  process (a `Hello.Conn`, which traps its supervisor's exit). `rest` is what
  the client sent after the handshake.
  """
  def serve(sock, parent, rest) do
    :ok = Hello.WebSocketDrainer.register()
    s = %{sock: sock, parent: parent, buffer: rest, message: nil, pinged: false}
    send_frame(s, @op_text, Hello.up_json())
    frames(s)
  end

  defp loop(s) do
    case :inet.setopts(s.sock, active: :once) do
      :ok -> wait(s)
      {:error, _} -> finish(s, :normal)
    end
  end

  defp wait(%{sock: sock, parent: parent} = s) do
    receive do
      {:tcp, ^sock, data} -> frames(%{s | buffer: s.buffer <> data, pinged: false})
      {:tcp_closed, ^sock} -> finish(s, :normal)
      {:tcp_error, ^sock, _} -> finish(s, :normal)
      {:EXIT, ^parent, reason} -> close(s, 1001, "server shutting down", reason)
      {:drain, _drainer} -> close(s, 1001, "server shutting down", :normal)
      _other -> wait(s)
    after
      @ping_after ->
        if s.pinged do
          close(s, 1000, "idle", :normal)
        else
          send_frame(s, @op_ping, "")
          loop(%{s | pinged: true})
        end
    end
  end

  defp frames(s) do
    case parse_frame(s.buffer) do
      {:ok, frame, rest} -> handle(frame, %{s | buffer: rest})
      :more -> loop(s)
      {:error, code} -> close(s, code, "", :normal)
    end
  end

  defp handle({true, @op_ping, payload}, s) do
    send_frame(s, @op_pong, payload)
    frames(s)
  end

  defp handle({true, @op_pong, _payload}, s), do: frames(s)
  defp handle({true, @op_close, payload}, s), do: answer_close(s, payload)

  defp handle({fin, op, payload}, %{message: nil} = s) when op in [@op_text, @op_binary] do
    message(%{s | message: {op, [payload], byte_size(payload)}}, fin)
  end

  defp handle({fin, @op_cont, payload}, %{message: {op, parts, size}} = s) do
    size = size + byte_size(payload)

    if size > @max_message do
      close(s, 1009, "", :normal)
    else
      message(%{s | message: {op, [payload | parts], size}}, fin)
    end
  end

  # A continuation with no message begun, or a new message inside one.
  defp handle(_frame, s), do: close(s, 1002, "", :normal)

  defp message(s, false), do: frames(s)

  defp message(%{message: {op, parts, _size}} = s, true) do
    data = parts |> Enum.reverse() |> IO.iodata_to_binary()

    if op == @op_text and not String.valid?(data) do
      close(s, 1007, "", :normal)
    else
      send_frame(s, op, data)
      frames(%{s | message: nil})
    end
  end

  # The client closed: answer with its code (RFC 6455 5.5.1), then close TCP.
  defp answer_close(s, payload) do
    reply =
      case payload do
        "" -> {:ok, ""}
        <<code::16, _reason::binary>> -> if valid_code?(code), do: {:ok, <<code::16>>}, else: :bad
        _ -> :bad
      end

    case reply do
      {:ok, body} -> send_frame(s, @op_close, body)
      :bad -> :gen_tcp.send(s.sock, close_frame(1002))
    end

    finish(s, :normal)
  end

  defp valid_code?(code) do
    code in 1000..1003 or code in 1007..1011 or code in 3000..4999
  end

  # We close: our close frame, then the client's (discarding other frames),
  # then TCP. Bounded by @close_wait; exits with `reason`.
  defp close(s, code, text, reason) do
    :gen_tcp.send(s.sock, close_frame(code, text))
    deadline = System.monotonic_time(:millisecond) + @close_wait
    await_close(%{s | message: nil}, deadline, reason)
  end

  defp await_close(%{sock: sock} = s, deadline, reason) do
    case parse_frame(s.buffer) do
      {:ok, {_, @op_close, _}, _rest} ->
        finish(s, reason)

      {:ok, _frame, rest} ->
        await_close(%{s | buffer: rest}, deadline, reason)

      other ->
        # Input that is not a frame any more is dropped (but still read: closing
        # with unread input would reset the connection).
        s = if other == :more, do: s, else: %{s | buffer: ""}
        timeout = max(deadline - System.monotonic_time(:millisecond), 0)
        :inet.setopts(sock, active: :once)

        receive do
          {:tcp, ^sock, data} -> await_close(%{s | buffer: s.buffer <> data}, deadline, reason)
          {:tcp_closed, ^sock} -> finish(s, reason)
          {:tcp_error, ^sock, _} -> finish(s, reason)
          {:EXIT, _parent, new_reason} -> await_close(s, deadline, keep(reason, new_reason))
        after
          timeout -> finish(s, reason)
        end
    end
  end

  defp keep(:normal, new_reason), do: new_reason
  defp keep(reason, _new_reason), do: reason

  defp send_frame(s, op, payload) do
    :gen_tcp.send(s.sock, frame(op, payload)) == :ok
  end

  defp finish(s, reason) do
    :gen_tcp.close(s.sock)
    exit(reason)
  end

  @doc false
  # Exposed for tests: a masked client frame.
  def client_frame(op, payload, fin \\ true) do
    key = <<:rand.uniform(0xFFFFFFFF)::32>>
    len = byte_size(payload)

    len_bits =
      cond do
        len < 126 -> <<1::1, len::7>>
        len < 65_536 -> <<1::1, 126::7, len::16>>
        true -> <<1::1, 127::7, len::64>>
      end

    fin_bit = if fin, do: 1, else: 0
    masked = if len == 0, do: "", else: unmask(payload, key)
    <<fin_bit::1, 0::3, op::4, len_bits::bitstring, key::binary, masked::binary>>
  end
end
