defmodule CryptoHello.Application do
  @moduledoc """
  Application callback. `PORT` (default `4000`) and `BIND` (default
  `127.0.0.1`) come from the environment.

  The crypto NIF is used once at start (an instance id from
  `:crypto.strong_rand_bytes/1`), so a host without the right libcrypto fails
  the boot itself, with the loader's error in the log.
  """

  use Application

  require Logger

  @impl true
  def start(_type, _args) do
    port = port_env()
    ip = bind_env()
    instance = :crypto.strong_rand_bytes(8) |> Base.encode16(case: :lower)
    Application.put_env(:crypto_hello, :instance, instance)
    Logger.info("crypto_hello instance #{instance}")

    children = [{CryptoHello.Server, ip: ip, port: port}]
    Supervisor.start_link(children, strategy: :one_for_one, name: CryptoHello.Supervisor)
  end

  defp port_env do
    case Integer.parse(System.get_env("PORT") || "4000") do
      {port, ""} when port >= 0 and port <= 65_535 -> port
      _ -> raise ArgumentError, "PORT must be an integer between 0 and 65535"
    end
  end

  defp bind_env do
    bind = System.get_env("BIND") || "127.0.0.1"

    case :inet.parse_address(String.to_charlist(bind)) do
      {:ok, ip} -> ip
      {:error, _} -> raise ArgumentError, "BIND must be an IP address, got: #{inspect(bind)}"
    end
  end
end
