defmodule CryptoHello.Server do
  @moduledoc """
  A minimal HTTP/1.1 server on `:gen_tcp` (`packet: :http_bin`): one
  connection at a time, one request per connection, always
  `connection: close`. `GET /up` answers `CryptoHello.up_json/0`; anything
  else is 404.
  """

  use Task, restart: :permanent

  require Logger

  @recv_timeout 5_000

  def start_link(opts), do: Task.start_link(__MODULE__, :listen, [opts])

  @doc false
  def listen(opts) do
    ip = Keyword.fetch!(opts, :ip)
    port = Keyword.fetch!(opts, :port)
    family = if tuple_size(ip) == 8, do: [:inet6], else: [:inet]
    listen_opts = [:binary, packet: :http_bin, active: false, reuseaddr: true, ip: ip] ++ family
    {:ok, lsock} = :gen_tcp.listen(port, listen_opts)
    Logger.info("crypto_hello listening on #{:inet.ntoa(ip)}:#{port}")
    accept(lsock)
  end

  defp accept(lsock) do
    {:ok, sock} = :gen_tcp.accept(lsock)
    serve(sock)
    :gen_tcp.close(sock)
    accept(lsock)
  end

  defp serve(sock) do
    case read_request(sock) do
      {:ok, path} -> respond(sock, route(path))
      :error -> :ok
    end
  end

  defp read_request(sock) do
    case :gen_tcp.recv(sock, 0, @recv_timeout) do
      {:ok, {:http_request, _method, {:abs_path, path}, _version}} -> skip_headers(sock, path)
      _ -> :error
    end
  end

  defp skip_headers(sock, path) do
    case :gen_tcp.recv(sock, 0, @recv_timeout) do
      {:ok, :http_eoh} -> {:ok, path}
      {:ok, {:http_header, _, _, _, _}} -> skip_headers(sock, path)
      _ -> :error
    end
  end

  defp route("/up"), do: {200, "OK", "application/json", CryptoHello.up_json()}
  defp route(_path), do: {404, "Not Found", "text/plain", "not found\n"}

  defp respond(sock, {status, reason, type, body}) do
    :gen_tcp.send(sock, [
      "HTTP/1.1 ",
      Integer.to_string(status),
      " ",
      reason,
      "\r\ncontent-type: ",
      type,
      "\r\ncontent-length: ",
      Integer.to_string(byte_size(body)),
      "\r\nconnection: close\r\n\r\n",
      body
    ])
  end
end
