defmodule Shop.Http.Conn do
  @moduledoc """
  One process per TCP connection: reads requests one after the other (HTTP/1.1 keep-alive),
  hands each to the router, writes the answer. Closes on `Connection: close`, HTTP/1.0 without
  keep-alive, an idle timeout, a malformed request, or when the server drains.
  """

  use GenServer, restart: :temporary

  alias Shop.Http.{Body, KeepAlive, Limits, Parser, Writer}

  def start_link(router), do: GenServer.start_link(__MODULE__, router)

  @impl true
  def init(router), do: {:ok, %{router: router, sock: nil, served: 0}}

  @impl true
  def handle_info({:socket, sock}, state) do
    {:ok, peer} = peer(sock)
    serve(%{state | sock: sock}, peer, "")
  end

  defp peer(sock) do
    case :inet.peername(sock) do
      {:ok, {ip, _port}} -> {:ok, ip |> :inet.ntoa() |> to_string()}
      _ -> {:ok, "unknown"}
    end
  end

  defp serve(state, peer, buffer) do
    case read_head(state.sock, buffer) do
      {:ok, req, rest} ->
        req = %{req | peer: peer}
        answer(state, req, rest, peer)

      {:error, status} ->
        Writer.send(state.sock, Shop.Http.Response.text(status, Shop.Http.Status.reason(status) <> "\n"), false)
        close(state)

      :closed ->
        close(state)
    end
  end

  defp answer(state, req, rest, peer) do
    case Body.read(state.sock, req, rest) do
      {:ok, req, rest} ->
        keep? = KeepAlive.keep?(req) and state.served + 1 < Limits.max_requests_per_connection() and not Shop.Http.Drain.draining?()
        resp = Shop.Http.Handler.call(state.router, req)
        Writer.send(state.sock, resp, keep?, req.method == "HEAD")
        if keep?, do: serve(%{state | served: state.served + 1}, peer, rest), else: close(state)

      {:error, status} ->
        Writer.send(state.sock, Shop.Http.Response.text(status, Shop.Http.Status.reason(status) <> "\n"), false)
        close(state)
    end
  end

  defp read_head(sock, buffer) do
    case Parser.parse(buffer) do
      :more ->
        case :gen_tcp.recv(sock, 0, Limits.idle_timeout_ms()) do
          {:ok, data} -> read_head(sock, buffer <> data)
          {:error, _} -> :closed
        end

      other ->
        other
    end
  end

  defp close(state) do
    :gen_tcp.close(state.sock)
    {:stop, :normal, state}
  end
end

defmodule Shop.Http.Body do
  @moduledoc "Reads a request body of `Content-Length` bytes (at most `Shop.Http.Limits.max_body_bytes/0`); chunked bodies are refused."

  alias Shop.Http.{Limits, Request}

  def read(sock, %Request{} = req, buffer) do
    cond do
      Request.header(req, "transfer-encoding") -> {:error, 400}
      true -> by_length(sock, req, buffer, Request.header(req, "content-length", "0"))
    end
  end

  defp by_length(sock, req, buffer, raw) do
    case Integer.parse(raw) do
      {n, ""} when n >= 0 and n <= 1_048_576 -> take(sock, req, buffer, n)
      {n, ""} when n > 0 -> if n > Limits.max_body_bytes(), do: {:error, 413}, else: {:error, 400}
      _ -> {:error, 400}
    end
  end

  defp take(_sock, req, buffer, n) when byte_size(buffer) >= n do
    <<body::binary-size(n), rest::binary>> = buffer
    {:ok, %{req | body: body}, rest}
  end

  defp take(sock, req, buffer, n) do
    case :gen_tcp.recv(sock, 0, Limits.idle_timeout_ms()) do
      {:ok, data} -> take(sock, req, buffer <> data, n)
      {:error, _} -> {:error, 400}
    end
  end
end

defmodule Shop.Http.KeepAlive do
  @moduledoc "Whether a connection stays open after this request (RFC 9112 §9.3)."

  alias Shop.Http.{Headers, Request}

  def keep?(%Request{version: version} = req) do
    tokens = Headers.tokens(Request.header(req, "connection"))

    cond do
      "close" in tokens -> false
      version == {1, 1} -> true
      true -> "keep-alive" in tokens
    end
  end
end

defmodule Shop.Http.Writer do
  @moduledoc "Serialises a response: status line, headers (date, content-length, connection) and body."

  alias Shop.Http.{Response, Status}

  def send(sock, %Response{} = resp, keep?, head? \\ false) do
    body = IO.iodata_to_binary(resp.body)

    headers =
      resp.headers
      |> Shop.Http.Headers.put("content-length", Integer.to_string(byte_size(body)))
      |> Shop.Http.Headers.put("date", Shop.Http.Date.now())
      |> Shop.Http.Headers.put("server", "shop")
      |> Shop.Http.Headers.put("connection", if(keep?, do: "keep-alive", else: "close"))

    head = ["HTTP/1.1 ", Integer.to_string(resp.status), " ", Status.reason(resp.status), "\r\n", Enum.map(headers, fn {k, v} -> [k, ": ", v, "\r\n"] end), "\r\n"]
    :gen_tcp.send(sock, if(head?, do: head, else: [head, body]))
  end
end

defmodule Shop.Http.Date do
  @moduledoc "IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for the Date header."

  @days ~w(Mon Tue Wed Thu Fri Sat Sun)
  @months ~w(Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec)

  def now, do: format(:calendar.universal_time())

  def format({{y, m, d} = date, {hh, mm, ss}}) do
    day = Enum.at(@days, :calendar.day_of_the_week(date) - 1)
    "#{day}, #{pad(d)} #{Enum.at(@months, m - 1)} #{y} #{pad(hh)}:#{pad(mm)}:#{pad(ss)} GMT"
  end

  defp pad(n), do: n |> Integer.to_string() |> String.pad_leading(2, "0")
end

defmodule Shop.Http.Drain do
  @moduledoc "A flag the listener raises on shutdown: connections answer their request in flight with `connection: close`."

  def start, do: :persistent_term.put(__MODULE__, true)
  def draining?, do: :persistent_term.get(__MODULE__, false)
  def reset, do: :persistent_term.put(__MODULE__, false)
end
