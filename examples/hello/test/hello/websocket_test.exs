defmodule Hello.WebSocketTest do
  use ExUnit.Case, async: false

  alias Hello.WebSocket, as: WS

  describe "SHA-1" do
    test "matches FIPS 180 vectors and OTP's crypto on inputs across block boundaries" do
      assert Base.encode16(Hello.SHA1.hash(""), case: :lower) ==
               "da39a3ee5e6b4b0d3255bfef95601890afd80709"

      assert Base.encode16(Hello.SHA1.hash("abc"), case: :lower) ==
               "a9993e364706816aba3e25717850c26c9cd0d89d"

      for n <- [55, 56, 63, 64, 65, 119, 1000] do
        data = :binary.copy("x", n)
        assert Hello.SHA1.hash(data) == :crypto.hash(:sha, data), "length #{n}"
      end
    end
  end

  describe "frames" do
    test "the accept key is RFC 6455's example" do
      assert WS.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    end

    test "a masked text frame (RFC 6455 5.7) parses to its text; a partial one asks for more" do
      frame = <<0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58>>
      assert WS.parse_frame(frame <> "x") == {:ok, {true, 1, "Hello"}, "x"}
      long = :binary.copy("0123456789", 30) <> "ab"
      assert {:ok, {false, 2, ^long}, ""} = WS.parse_frame(WS.client_frame(2, long, false))
      assert WS.parse_frame(binary_part(frame, 0, 7)) == :more
      assert WS.parse_frame(<<0x81>>) == :more
    end

    test "an unmasked frame, a reserved bit, an unknown opcode or a long control frame is a protocol error (1002)" do
      assert WS.parse_frame(<<0x81, 0x05, "Hello">>) == {:error, 1002}
      assert WS.parse_frame(<<0xC1, 0x80, 0, 0, 0, 0>>) == {:error, 1002}
      assert WS.parse_frame(<<0x83, 0x80, 0, 0, 0, 0>>) == {:error, 1002}
      assert WS.parse_frame(<<0x89, 0xFE, 0, 126>>) == {:error, 1002}
      assert WS.parse_frame(<<0x09, 0x80, 0, 0, 0, 0>>) == {:error, 1002}
    end

    test "a frame longer than the limit is refused (1009) before its payload arrives" do
      assert WS.parse_frame(<<0x82, 0xFF, 0::1, 1_000_000::63>>) == {:error, 1009}
      assert WS.parse_frame(<<0x82, 0xFE, 65_535::16>>, 1000) == {:error, 1009}
    end

    test "server frames are unmasked with 7, 16 or 64-bit lengths" do
      assert IO.iodata_to_binary(WS.frame(1, "hi")) == <<0x81, 2, "hi">>
      big = String.duplicate("a", 300)
      assert <<0x82, 126, 300::16, ^big::binary>> = IO.iodata_to_binary(WS.frame(2, big))
      assert IO.iodata_to_binary(WS.close_frame(1001, "bye")) == <<0x88, 5, 1001::16, "bye">>
    end
  end

  describe "the shutdown drain's plan" do
    alias Hello.WebSocketDrainer, as: D

    test "sockets are closed in batches of batch_size, batch_interval apart" do
      assert D.schedule(5, 2, 100, 1000) == [{0, 2}, {100, 2}, {200, 1}]
      plan = D.schedule(200, 10, 50, 2000)
      assert length(plan) == 20
      assert List.last(plan) == {950, 10}
      assert Enum.sum(for {_, n} <- plan, do: n) == 200
    end

    test "no batch starts after the timeout: the last one that fits takes the rest" do
      assert D.schedule(200, 10, 50, 120) == [{0, 10}, {50, 10}, {100, 180}]
      assert D.schedule(7, 2, 100, 0) == [{0, 7}]
    end

    test "with no interval every batch is due at once; with no socket there is nothing to do" do
      assert D.schedule(5, 2, 0, 1000) == [{0, 2}, {0, 2}, {0, 1}]
      assert D.schedule(0, 10, 50, 2000) == []
    end
  end

  describe "through the app's listener" do
    setup do
      System.put_env("PORT", "0")
      System.put_env("WS_DRAIN_BATCH_SIZE", "2")
      System.put_env("WS_DRAIN_BATCH_INTERVAL_MS", "20")
      System.put_env("DRAIN_TIMEOUT_MS", "3000")
      System.put_env("XAMAL_REVISION", "test-rev")
      {:ok, _} = Application.ensure_all_started(:hello)
      {:ok, port} = :inet.port(:sys.get_state(Hello.Listener).lsock)

      on_exit(fn ->
        Application.stop(:hello)
        for v <- ~w(WS_DRAIN_BATCH_SIZE WS_DRAIN_BATCH_INTERVAL_MS), do: System.delete_env(v)
      end)

      {:ok, port: port}
    end

    test "the handshake answers 101 with the accept key, then the app's version; messages are echoed, pings ponged",
         %{port: port} do
      sock = connect!(port)
      assert {:text, hello} = recv_frame!(sock)
      assert hello =~ ~s("revision":"test-rev")
      send_frame!(sock, 1, "ping me")
      assert recv_frame!(sock) == {:text, "ping me"}
      send_frame!(sock, 9, "beat")
      assert recv_frame!(sock) == {:pong, "beat"}
      # A message in two fragments comes back whole.
      :ok = :gen_tcp.send(sock, WS.client_frame(1, "hel", false) <> WS.client_frame(0, "lo"))
      assert recv_frame!(sock) == {:text, "hello"}
      send_frame!(sock, 8, <<1000::16>>)
      assert recv_frame!(sock) == {:close, 1000}
      assert :gen_tcp.recv(sock, 0, 2000) == {:error, :closed}
    end

    test "a plain GET /ws is refused with 426; a bad key with 400", %{port: port} do
      assert raw(port, "GET /ws HTTP/1.1\r\nhost: x\r\n\r\n") =~ ~r/^HTTP\/1.1 426 /

      head =
        "GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: short\r\n\r\n"

      assert raw(port, head) =~ ~r/^HTTP\/1.1 400 /
    end

    test "an unmasked frame closes with 1002, a message over the limit with 1009", %{port: port} do
      sock = connect!(port)
      {:text, _} = recv_frame!(sock)
      :ok = :gen_tcp.send(sock, <<0x81, 2, "hi">>)
      assert recv_frame!(sock) == {:close, 1002}
      send_frame!(sock, 8, <<1002::16>>)
      assert :gen_tcp.recv(sock, 0, 6000) == {:error, :closed}

      sock = connect!(port)
      {:text, _} = recv_frame!(sock)
      :ok = :gen_tcp.send(sock, WS.client_frame(1, String.duplicate("a", 40_000), false))
      :ok = :gen_tcp.send(sock, WS.client_frame(0, String.duplicate("a", 40_000)))
      assert recv_frame!(sock) == {:close, 1009}
    end

    test "on shutdown every open WebSocket gets a close frame 1001, and TCP closes only after the client's close frame",
         %{port: port} do
      socks = for _ <- 1..3, do: connect!(port)
      for s <- socks, do: {:text, _} = recv_frame!(s)
      stopping = Task.async(fn -> Application.stop(:hello) end)

      for s <- socks do
        assert recv_frame!(s) == {:close, 1001}
        # Still open until the client answers.
        assert :gen_tcp.recv(s, 0, 100) == {:error, :timeout}
        send_frame!(s, 8, <<1001::16>>)
        assert :gen_tcp.recv(s, 0, 2000) == {:error, :closed}
      end

      assert Task.await(stopping, 10_000) == :ok
    end

    test "on shutdown the open WebSockets are told to close in batches of WS_DRAIN_BATCH_SIZE, every one with 1001",
         %{port: port} do
      socks = for _ <- 1..5, do: connect!(port)
      for s <- socks, do: {:text, _} = recv_frame!(s)

      log =
        ExUnit.CaptureLog.capture_log([level: :debug], fn ->
          stopping = Task.async(fn -> Application.stop(:hello) end)

          for s <- socks do
            assert recv_frame!(s) == {:close, 1001}
            send_frame!(s, 8, <<1001::16>>)
            assert :gen_tcp.recv(s, 0, 2000) == {:error, :closed}
          end

          assert Task.await(stopping, 10_000) == :ok
        end)

      assert log =~ "closing 5 WebSocket(s) in 3 batch(es) (batch_size=2, batch_interval=20ms"
      assert log =~ "batch 1, 2 socket(s)"
      assert log =~ "batch 2, 2 socket(s)"
      assert log =~ "batch 3, 1 socket(s)"
    end
  end

  defp connect!(port) do
    {:ok, sock} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false, packet: :raw])
    key = Base.encode64(:binary.copy(<<:rand.uniform(255)>>, 16))

    :ok =
      :gen_tcp.send(
        sock,
        "GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: keep-alive, Upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: #{key}\r\n\r\n"
      )

    {:ok, head} = recv_head(sock, "")
    assert head =~ ~r/^HTTP\/1.1 101 /
    assert head =~ "sec-websocket-accept: #{WS.accept_key(key)}\r\n"
    sock
  end

  defp recv_head(sock, acc) do
    case :binary.match(acc, "\r\n\r\n") do
      {pos, 4} ->
        <<head::binary-size(pos), _::binary>> = acc
        {:ok, head <> "\r\n"}

      :nomatch ->
        {:ok, data} = :gen_tcp.recv(sock, 1, 2000)
        recv_head(sock, acc <> data)
    end
  end

  defp raw(port, request) do
    {:ok, sock} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false])
    :ok = :gen_tcp.send(sock, request)
    {:ok, data} = :gen_tcp.recv(sock, 0, 2000)
    :gen_tcp.close(sock)
    data
  end

  defp send_frame!(sock, op, payload), do: :ok = :gen_tcp.send(sock, WS.client_frame(op, payload))

  defp recv_frame!(sock) do
    {:ok, <<_fin::1, 0::3, op::4, 0::1, len::7>>} = :gen_tcp.recv(sock, 2, 2000)

    len =
      case len do
        126 -> (fn {:ok, <<l::16>>} -> l end).(:gen_tcp.recv(sock, 2, 2000))
        127 -> (fn {:ok, <<l::64>>} -> l end).(:gen_tcp.recv(sock, 8, 2000))
        l -> l
      end

    {:ok, payload} = if len == 0, do: {:ok, ""}, else: :gen_tcp.recv(sock, len, 2000)

    case op do
      1 -> {:text, payload}
      2 -> {:binary, payload}
      8 -> {:close, (fn <<c::16, _::binary>> -> c end).(payload)}
      10 -> {:pong, payload}
      9 -> {:ping, payload}
    end
  end
end
